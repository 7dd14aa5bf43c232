"""Final-answer extraction: find the answer a math response committed to.

:func:`extract_answer` reads only the *solution* part of a response (see
:func:`reasonloop.format.parse`); a response whose thought never ended has no answer. In the
solution it looks, strongest shape first, for:

1. the last ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed 5`` (braces balanced; boxes side by side
   or separated only by a comma, "and", "or", ``\\quad`` or part labels, as in
   ``\\boxed{1}, \\boxed{-2}`` or ``\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}``,
   are joined into one list answer, and so is a value offered right after the last box
   (``\\boxed{6} (or 7)``); a last box that never closes means no answer, not the draft before
   it);
2. GSM8K's ``#### X`` line;
3. ``Final Answer: X`` / ``The final answer is X. I hope it is correct.`` (Minerva style), or a
   ``**Final Answer**`` header followed by the answer on the next line;
4. ``the answer is X`` / ``Answer: X`` in plain text;
5. with none of those markers, the last mathematical expression, as Math-Verify reads it: the
   last ``$...$`` / ``$$...$$`` / ``\\[...\\]`` / ``\\(...\\)`` span (``Answer $ 9 $``), or a bold
   value written after it (``The total is **24**.``).

Otherwise there is no answer (``None``): numbers in plain prose ("she has 5 apples left") are
not guessed, which would reward responses that never committed to anything.

What it does not do: decide whether two answers are equal (that is :mod:`reasonloop.verify.math`),
or strip units and thousands separators (the grader normalises those, so that ``extracted``
keeps what the model wrote). Every function here is pure and total: it never raises on model
output.
"""

from __future__ import annotations

import re

from reasonloop.format import parse
from reasonloop.verify.textspan import BOX, boxed_contents, brace_end

__all__ = [
    "boxed_contents",
    "clean_answer",
    "extract_answer",
    "extract_boxed",
    "extract_from_solution",
    "last_boxed_only",
    "last_expression",
]

# What may sit between two boxes that together form one answer: "\boxed{1}, \boxed{-2}",
# "$\boxed{3}$ and $\boxed{5}$", "\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}" and
# alternatives ("\boxed{6} or \boxed{7}", "\boxed{6} \boxed{7}": the grader then needs every one
# of them right; "\boxed{5}\n\n\boxed{5}" is one answer written twice). Not prose
# ("\boxed{1} no no no \boxed{2}"), where the last box stands alone.
_GAP_NOISE = re.compile(
    r"\\(?:text|mbox|textrm|mathrm|textbf)\s*\{([^{}]*)\}|\\(?:quad|qquad)(?![A-Za-z])|\\[(),;:\[\] ]|[$*]"
)
_GAP_WORDS = re.compile(
    r"(?:\s|[,;:.]|\b(?:and|or|for|in|part|parts|case|cases|respectively)\b"
    r"|\(\s*(?:[a-h]|i{1,3}|iv|vi{0,3}|\d)\s*\)|\b[a-h]\)"
    r"|\b[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=)*",  # the next box's label: "and y_2 = \boxed{..}"
    re.IGNORECASE,
)
_GAP_JOINER = re.compile(
    r"[,;]|\b(?:and|or)\b|\(\s*(?:[a-h]|i{1,3}|iv|vi{0,3}|\d)\s*\)|\b[a-h]\)|\\q?quad",
    re.IGNORECASE,
)
# A value offered right after the last box: "\boxed{6} (or 7)", "\boxed{6}, or possibly $7$".
_ALTERNATIVE = re.compile(  # each part starts with its own characters: no backtracking
    r"(?:[\s$,;(]|\\q?quad(?![A-Za-z])|\\[,;]|\\text\s*\{)*"
    r"or\b(?:\s+(?:possibly|maybe|perhaps|equivalently)\b)?[\s}]*"
    r"(?:\$([^$\n]{1,80})\$|\\\((.{1,80}?)\\\)|([-+]?\d[\d.,/]*\d|[-+]?\d))",
    re.IGNORECASE,
)
_GSM8K = re.compile(r"####\s*([^\n]*)")
_FINAL = re.compile(
    r"final\s+answer\**\s*(?:(?:is\b|:)\s*\**\s*:?|\**\s*(?=\n|$))",
    re.IGNORECASE,
)
_THE_ANSWER = re.compile(r"\bthe\s+(?:final\s+|correct\s+)?answer\s+(?:is|=)\s*:?", re.IGNORECASE)
_ANSWER_COLON = re.compile(r"\banswer\s*\**\s*[:：]\s*\**", re.IGNORECASE)
_HOPE = re.compile(r"\.?\s*I hope it is correct.*$", re.IGNORECASE | re.DOTALL)
_WRAPPERS = ("\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\textit", "\\mbox", "\\textrm")
_MAX_LEN = 200_000  # responses longer than this are cut to their last part


def _joins(gap: str, *, space: bool = False) -> bool:
    """Whether the text between two boxes (or math spans) makes them one answer (see
    ``_GAP_WORDS``). ``space``: whitespace alone joins too (boxes side by side are offered
    together; display lines side by side are steps of a derivation)."""
    if len(gap) > 120:
        return False
    cleaned = _GAP_NOISE.sub(lambda m: f" {m.group(1) or ''} ", gap)
    if space and not cleaned.strip():
        return True
    if not _GAP_JOINER.search(gap):
        return False
    return bool(_GAP_WORDS.fullmatch(cleaned))


def extract_boxed(text: str) -> str | None:
    """The content of the last box in ``text`` (nested boxes unwrapped), or None.

    A last box that never closes, or an empty one, gives None: an earlier box is *not* used
    instead, since a truncated final answer must not borrow a draft answer.
    """
    boxes = boxed_contents(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    # Join boxes forming one list answer: \boxed{1}, \boxed{-2}.
    for prev in reversed(boxes[:-1]):
        if prev[1] > group[0][0]:  # nested in the box after it
            break
        gap = text[prev[1] : group[0][0]]
        if prev[2] is None or not _joins(gap, space=True):
            break
        group.insert(0, prev)
    parts = []
    for _, _, content in group:
        for _ in range(100):  # \boxed{\boxed{8}}: unwrap, without recursion
            if content is None or not BOX.search(content):
                break
            inner = boxed_contents(content)
            content = inner[-1][2] if inner else content
        if content is None or not content.strip():
            return None
        parts.append(content.strip())
    after = group[-1][1]
    other = _ALTERNATIVE.match(text[after : after + 300])
    if other:  # "\boxed{6} (or 7)": an alternative outside the box is offered all the same
        parts.append(next(g for g in other.groups() if g is not None).strip())
    if len(set(parts)) == 1:
        return parts[0]
    return ", ".join(parts)


def last_boxed_only(text: str) -> str | None:
    """The last ``\\boxed{...}`` including the command itself (as MATH's ``last_boxed_only_string``)."""
    boxes = boxed_contents(text)
    if not boxes or boxes[-1][2] is None:
        return None
    start, end, _ = boxes[-1]
    return text[start:end]


def _strip_delims(s: str) -> str:
    s = s.strip()
    changed = True
    for _ in range(10):
        if not (changed and s):
            break
        changed = False
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
        for junk in ("**", "$", "\\(", "\\["):
            if s.startswith(junk) and junk not in s[len(junk) :]:
                s = s[len(junk) :].strip()
                changed = True
        for junk in ("**", "$", "\\)", "\\]"):
            if s.endswith(junk) and junk not in s[: -len(junk)]:
                s = s[: -len(junk)].strip()
                changed = True
    return s


def _unwrap_whole(s: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn`` when the wrapper spans the whole answer."""
    for w in _WRAPPERS:
        if s.startswith(w):
            i = len(w)
            while i < len(s) and s[i] == " ":
                i += 1
            if i < len(s) and s[i] == "{" and brace_end(s, i) == len(s):
                return _unwrap_whole(s[i + 1 : -1].strip())
    return s


# Sentence ends after an answer; longest first, so that "\\." goes whole. Not "!": in
# "\\boxed{5!}" it is a factorial.
_TRAILING = ("\\.", "\\,", "\\;", "\\!", "\\ ", ".", ",", ";", ":", "?", "。")


def _strip_trailing(s: str) -> str:
    """``s`` without trailing punctuation and spacing commands, in linear time (a regular
    expression anchored at the end tries every start of a long run of dots)."""
    end = len(s)
    while True:
        for junk in _TRAILING:
            if s.endswith(junk, 0, end):
                end -= len(junk)
                break
        else:
            return s[:end]


def clean_answer(s: str | None) -> str | None:
    """Light cleanup of an extracted answer: math delimiters, bold markers, trailing
    punctuation and a ``\\text{}`` wrapper spanning the whole answer. None when nothing is left."""
    if s is None:
        return None
    s = s.strip()
    for _ in range(4):
        before = s
        s = _strip_delims(s)
        s = _strip_trailing(s).strip()
        s = _unwrap_whole(s)
        if s == before:
            break
    return s or None


def _sentence(rest: str) -> str:
    """The answer text right after an anchor: up to the end of its sentence or line."""
    rest = rest.lstrip(" \t")
    if rest.startswith("\n"):  # "**Final Answer**\n\n 5": the answer is on the next line
        rest = rest.lstrip()
    rest = _HOPE.sub("", rest)
    lines = rest.split("\n")
    line = lines[0]
    # "The last three digits are:\n 009": an introducing line hands over to the next one.
    if line.rstrip().endswith(":") and len(lines) > 1:
        following = [x for x in lines[1:] if x.strip()]
        if following:
            rest = rest[rest.index(following[0]) :]
            line = following[0]
    # Display math opened on this line and closed later: take the whole block.
    if line.strip() in ("$$", "\\["):
        close = "$$" if line.strip() == "$$" else "\\]"
        j = rest.find(close, rest.find(line.strip()) + len(line.strip()))
        if j > 0:
            line = rest[: j + len(close)]
    # A sentence ends at a period that is not a decimal point and not inside $...$.
    in_math = False
    for i, c in enumerate(line):
        if c == "$":
            in_math = not in_math
        elif c == "." and not in_math:
            nxt = line[i + 1 : i + 2]
            prv = line[i - 1 : i] if i else ""
            if not (nxt.isdigit() or (prv.isdigit() and nxt.isdigit())) and (
                nxt == "" or nxt.isspace()
            ):
                return line[:i]
    return line


_MATH_OPEN = re.compile(r"\$\$|\$|\\\[|\\\(|\*\*")
_MATH_CLOSE = {"$$": "$$", "$": "$", "\\[": "\\]", "\\(": "\\)", "**": "**"}
# A bold span is an answer only when it reads as a value ("**24**", "**$18.90**", "**-3/4**"),
# never a header ("**Step 2:**").
# "$5 and then $" is two amounts of money in prose, not a math span.
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}(?![A-Za-z])")
_TEXT_GROUP = re.compile(r"\\(?:text|mbox|textrm|mathrm|textbf|operatorname)\s*\{[^{}]*\}")
_BOLD_VALUE = re.compile(
    r"[-+]?\\?\$?\s*[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?(?:\s*[A-Za-z%]+)?"
)


def last_expression(solution: str) -> str | None:
    """The last mathematical expression of a solution without an answer marker: the last
    ``$...$`` / ``$$...$$`` / ``\\[...\\]`` / ``\\(...\\)`` span, or a later bold value
    (``The total is **24**.``). Spans joined as boxes are (``for $x=-1$ or $x=3$``) form one
    list answer. None when there is none. Linear in the length of the text.

    What it does not do: pick numbers out of plain prose ("she has 15 apples" has no answer).
    """
    if not isinstance(solution, str):
        return None
    group: list[str] = []
    group_end = 0
    i = 0
    n = len(solution)
    while i < n:
        m = _MATH_OPEN.search(solution, i)
        if m is None:
            break
        opener = m.group(0)
        if opener == "$" and m.start() > 0 and solution[m.start() - 1] == "\\":  # \$ is money
            i = m.end()
            continue
        close = _MATH_CLOSE[opener]
        j = m.end()
        while True:
            j = solution.find(close, j)
            if j < 0 or close != "$" or solution[j - 1] != "\\":
                break
            j += 1  # \$ inside math is a dollar sign
        if j < 0:
            break  # an unclosed span: what came before stands
        body = solution[m.end() : j].strip()
        if opener == "**":
            ok = bool(_BOLD_VALUE.fullmatch(body.strip("$ ")))
        else:
            ok = bool(body) and not _PROSE.search(_TEXT_GROUP.sub(" ", body))
        if ok:
            if not (group and _joins(solution[group_end : m.start()])):
                group = []
            if body not in group:
                group.append(body)
            group_end = j + len(close)
        i = j + len(close)
    return ", ".join(group) if group else None


def extract_from_solution(solution: str) -> str | None:
    """The final answer of an already-split solution part (see :func:`extract_answer`)."""
    if not isinstance(solution, str) or not solution.strip():
        return None
    text = solution[-_MAX_LEN:]
    if BOX.search(text):
        return clean_answer(extract_boxed(text))
    hits = list(_GSM8K.finditer(text))
    if hits:
        return clean_answer(hits[-1].group(1))
    for pattern in (_FINAL, _THE_ANSWER, _ANSWER_COLON):
        hits = list(pattern.finditer(text))
        for m in reversed(hits):
            found = clean_answer(_sentence(text[m.end() : m.end() + 4000]))
            if found:
                # "\[Answer: 009\]" found under a "Final Answer:" header: read it once more.
                inner = _ANSWER_COLON.search(found)
                if inner:
                    again = clean_answer(_sentence(found[inner.end() :]))
                    if again:
                        return again
                return found
    return clean_answer(last_expression(text))


def extract_answer(text: str) -> str | None:
    """The final answer of a response, or None (see the module docstring for the shapes).

    >>> extract_answer("so it is $\\\\boxed{\\\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    """
    if not isinstance(text, str):
        return None
    parsed = parse(text)
    if parsed.solution is None:
        return None
    return extract_from_solution(parsed.solution)
