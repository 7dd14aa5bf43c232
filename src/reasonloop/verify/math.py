"""Math answer grading: is a response's final answer equivalent to the gold answer?

Built on Math-Verify's parser (LaTeX -> sympy) and extended for the answer shapes of MATH, GSM8K,
AIME and real model outputs, with **no false positives** as the bar: equality is claimed only
when it is proven (same spelling, exact arithmetic, or a sympy proof), never from numbers that
merely agree to many digits. When in doubt the verdict is "not correct".

How a pair is decided:

1. *Normalise* both strings: ``\\$``, ``\\%``, degrees, ``\\left``/``\\right``, spacing commands,
   ``\\dfrac``, thousands separators (``10,\\!080``, ``58,500``, ``\\$1,000``), trailing units
   (``\\mbox{ cm}^2``, ``\\text{ cents}``, ``1000 dollars``), trailing punctuation, ``x \\in``,
   plain-text ``sqrt(2)`` / ``pi`` / ``2**10``.
2. *Read the structure*: unordered answer lists and sets, compared as sets (``1,-2`` =
   ``-2, 1``, ``\\{1\\pm\\sqrt5,-2\\}``, ``2, 3, 3`` = ``3, 2``), ``\\pm`` expanded, intervals and
   tuples (brackets must match: ``(1,2)`` != ``[1,2]``, ``(-\\infty,0]`` != ``(-\\infty,0)``;
   ``(0;-2;6)`` is a tuple), unions, matrices, equations (``x=5`` = ``5``; ``y=2x+3`` =
   ``2x-y+3=0``), labelled values (``(p,q)=(3,2)`` = ``(3,2)``, ``AB=4, CD=5`` = ``4, 5``,
   ``V_1:V_2=11:21`` = ``11:21``), one-variable inequalities as intervals (``-793 < a < 10`` =
   ``(-793, 10)``), ratios, numbers in a base (``4210_{5}``), multiple-choice letters
   (``\\text{(C)}``) and words (``\\text{odd}`` = ``odd``, compared as text, never as a product
   of variables).
3. *Compare atoms* in-process first, without sympy: identical spellings; an exact evaluator of
   LaTeX arithmetic in (Gaussian) rationals (integers, decimals, ``\\frac43``, mixed numbers
   ``1\\frac{4}{5}``, powers, perfect-power roots, ``i``, factorials, binomials), which proves
   equality or difference; and a 50-digit evaluation (``\\pi``, radicals, trig, logs; variables
   at fixed rational points) that can only prove two answers *different*. Decimals are exact:
   ``0.333`` != ``1/3``, ``2`` != ``2.0001``, ``1.41421356`` != ``\\sqrt2``. Numbers too large to
   compute (``10^{10^{10^{10}}}``) are known only to be huge, so never equal to a finite value.
   Items of unordered lists that have an exact value are matched by hashing that value, so a
   list of 1,500 numbers costs milliseconds; a list whose items need more than a few thousand
   pairwise comparisons goes to a worker like anything else undecided.
4. Only what step 3 cannot settle goes to a worker process (:mod:`reasonloop.verify.pool`) that
   parses with ``math_verify.parse`` and looks for a proof with sympy (``simplify(a - b) == 0``;
   for algebraic constants, a minimal polynomial of ``t``) under a wall-time limit. A call that
   runs past it is killed: the verdict is ``timeout``, never a hang.

One answer: an answer that hedges is wrong, whatever it contains. Text that offers another
value or retracts this one (``6\\text{ (or 7)}``, ``6 \\quad \\text{(or 7, 8, 9)}``, ``6\\text{ is
wrong, the answer is 7}``, ``about 6``), ``\\approx 6`` (an approximation is no exact answer;
``\\frac23 \\approx 0.67`` is, when the decimal is the exact value rounded), an equation chain
whose parts disagree (``x = 7 = 6``) and alternatives of which one is wrong (``6, 7`` against
``6``). Units and labels that do not change the value stay (``5\\text{ cm}``, ``x = 3``,
``15 apples``); words that change it do not (``6 million``).

Policies (MATH conventions): units, ``\\$``, ``\\%`` and degree marks are ignored (``25\\%`` =
``25``, not ``0.25``); a bare comma list is an unordered list of solutions; a bare pair ``a, b``
never equals ``(a, b)`` (that may be an open interval), while a bare triple equals the tuple in
order; a base subscript may be dropped (``52`` = ``52_8``) but not changed.

What it does not do: read the problem text; accept approximate decimals for exact values; credit
equivalent but differently-shaped sets (unions that merge, ``\\sqrt{x}=2`` vs ``x=4``), or
identities sympy cannot prove: those are counted wrong.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.format import parse as parse_response
from reasonloop.records import Verdict
from reasonloop.verify.extract import extract_from_solution
from reasonloop.verify.pool import WorkerPool
from reasonloop.verify.textspan import brace_end

logger = logging.getLogger(__name__)

__all__ = [
    "MathGrader",
    "MathGraderConfig",
    "answers_equal",
    "compare_answers",
    "grade_math",
    "normalize_answer",
]

_MAX_FAST_LEN = 600  # longer answers skip the in-process evaluator
_MAX_BITS = 60_000  # exact numbers larger than this are left to sympy
_MAX_DEPTH = 60
_MAX_ANSWER_LEN = 100_000  # longer answers are cut (normalisation and matching are linear)

# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

_UNIT_TEXT = """
    dollar dollars cent cents usd euro euros pound pounds penny pennies
    cm centimeter centimeters centimetre centimetres mm millimeter millimeters meter meters metre
    metres km kilometer kilometers kilometres inch inches ft foot feet yd yard yards mile miles
    mph kph kmh
    sec secs second seconds min mins minute minutes hr hrs hour hours day days week weeks month
    months year years
    degree degrees deg radian radians
    unit units square sq cubic cu
    kg kilogram kilograms gram grams mg lb lbs ounce ounces oz ton tons
    liter liters litre litres ml milliliter milliliters gallon gallons quart quarts cup cups
    percent percentage pct
    people persons students children kids items pieces times ways
    """
_UNIT_WORDS = frozenset(_UNIT_TEXT.split())
# Words that hedge, retract or qualify a value: an answer carrying them next to a number is not
# one answer ("6 (or 7)", "6 is wrong, the answer is 7", "about 6", "6 or more").
_HEDGE_TEXT = """
    or nor is are was were isn't not no wrong incorrect answer answers maybe perhaps possibly
    probably likely either approximately approx about around roughly nearly almost unless if but
    also alternatively otherwise else could might should would instead actually rather depending
    assuming than more less least most to between equals equal other another guess unsure
    uncertain wait except
    """
_HEDGE_WORDS = frozenset(_HEDGE_TEXT.split())
# Words after a number that change its value: never dropped as a unit ("5 million", "3 halves").
_NUMBER_TEXT = """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
    hundred hundreds thousand thousands million millions billion billions trillion trillions
    dozen dozens half halves third thirds quarter quarters fourth fourths fifth fifths tenth
    tenths hundredth hundredths squared cubed factorial
    """
_NOT_UNIT = _HEDGE_WORDS | frozenset(_NUMBER_TEXT.split())
# As written in prose ("or", "Or"): "NO" in \frac{NO}{BO} is a segment, not a word.
_HEDGE = re.compile(
    r"(?<![\\A-Za-z0-9_^])(?:"
    + "|".join(
        sorted((re.escape(v) for w in _HEDGE_WORDS for v in {w, w.capitalize()}), key=len)[::-1]
    )
    + r")(?![A-Za-z])"
)

_WRAP_CMDS = r"text|textbf|textit|textrm|textsf|texttt|textnormal|mbox|mathrm|mathbf|mathit|mathsf|mathtt|emph|rm|bf|boldsymbol"

_SUBS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\\(?:left|right)\.", ""),
        (
            r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![a-zA-Z])",
            "",
        ),
        (r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])", ""),
        (r"\\[dtc]frac(?![a-zA-Z])", r"\\frac"),
        (r"\\[dt]binom(?![a-zA-Z])", r"\\binom"),
        (r"\\(?:lvert|rvert|vert)(?![a-zA-Z])", "|"),
        (r"\\(?:lbrace)(?![a-zA-Z])", r"\\{"),
        (r"\\(?:rbrace)(?![a-zA-Z])", r"\\}"),
        (r"\\(?:le|leqslant|leq)(?![a-zA-Z])", r"\\le "),
        (r"\\(?:ge|geqslant|geq)(?![a-zA-Z])", r"\\ge "),
        (r"\\(?:ne|neq)(?![a-zA-Z])", r"\\ne "),
        (r"<=|≤", r"\\le "),
        (r">=|≥", r"\\ge "),
        (r"!=|≠", r"\\ne "),
        (r"\\lt(?![a-zA-Z])", "<"),
        (r"\\gt(?![a-zA-Z])", ">"),
        (r"\\(?:infin|inf)(?![a-zA-Z])", r"\\infty"),
        (r"≈|\\(?:thickapprox|simeq|sim)(?![a-zA-Z])", r"\\approx "),
        (r"\\(?:varnothing)(?![a-zA-Z])", r"\\emptyset"),
        (r"\\mathbb\{R\}|\\R(?![a-zA-Z])", r"(-\\infty,\\infty)"),
        (r"\\(?:dots|ldots|cdots)(?![a-zA-Z])", r"\\ldots"),
        (r"\\(?:ast|star)(?![a-zA-Z])", "*"),
        (r"\\(?:colon)(?![a-zA-Z])", ":"),
        (r"\\(?:quad|qquad|enspace|thinspace|medspace|thickspace|hfill)(?![a-zA-Z])", " "),
        (r"\\q?quad(?=[a-zA-Z])", " "),  # "\quadx_2 = 1": a space lost in the source
        (r"(?<!\\)\\[,;:> ]", " "),
        (r"(?<!\\)~", " "),
        (r"(?<!\\)\\!", ""),
        # degrees: 90^\circ, 90^{\circ}, 90°, 90\degree
        (r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![a-zA-Z])|\^\s*\{\s*o\s*\}", ""),
        (r"\\%|%", ""),
        (r"\\\$|\$", ""),
        (r"\\(?:text|mbox|textrm|mathrm)\s*\{\s*(?:and|or)\s*\}", ","),
        (r"(?<=[\s}\d)])(?:and|or)(?=[\s{\\\d(-])", ","),
        (r"\\(?:mathbb|mathcal)\{C\}", "C"),
    )
)


def _unwrap_cmd(s: str, cmds: str, keep: Callable[[str], str] = lambda x: x) -> str:
    """Replace ``\\cmd{X}`` by ``keep(X)`` for every command in ``cmds`` (balanced braces)."""
    pat = re.compile(r"\\(?:" + cmds + r")\s*\{")
    out = []
    pos = 0
    for _ in range(200):
        m = pat.search(s, pos)
        if not m:
            break
        end = brace_end(s, m.end() - 1)
        if end < 0:
            break
        out.append(s[pos : m.start()])
        out.append(keep(s[m.end() : end - 1]))
        pos = end
    out.append(s[pos:])
    return "".join(out)


_POWER_END = re.compile(r"\^\s*\{?\s*[23]\s*\}?$")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _trailing_words(s: str) -> int | None:
    """Where the trailing words of ``s`` start: the leftmost ``i`` after a digit, ``}`` or space
    such that ``s[i:]`` is words (ASCII letters, each maybe followed by a ``.`` and spaces), then
    maybe a ``^2`` / ``^{3}``, then spaces; None if there is none. Walks back from the end once:
    linear time (a regular expression for this backtracks exponentially on a long word that
    does not reach the end, as in model output)."""
    t = s.rstrip()
    power = _POWER_END.search(t)
    k = power.start() if power else len(t)
    found = None
    while True:  # one word (and its dot and spaces) further left per turn
        j = k
        while j > 0 and s[j - 1].isspace():
            j -= 1
        if j > 0 and s[j - 1] == ".":
            j -= 1
        k = j
        while k > 0 and s[k - 1] in _LETTERS:
            k -= 1
        if k == j:
            return found
        if k > 0 and (s[k - 1].isdecimal() or s[k - 1] == "}" or s[k - 1].isspace()):
            found = k


_UNIT_SHAPE = re.compile(r"[A-Za-z][A-Za-z .'/\-]*")
# Only a plain number, set off by a space, counts things: "15 apples", not "6ab" or "2^3 ab".
_PLAIN_NUMBER = re.compile(r"\s*[-+]?(?:\d+(?:\.\d+)?|\.\d+)\s+")


def _unit_like(text: str) -> bool:
    """Whether ``text`` (a ``\\text{}`` body or trailing words) names a unit or the things
    counted ("cm", "sq. units", "children tickets"): at most four words, none that hedges or
    changes the value ("or 7", "is wrong", "million")."""
    text = text.strip()
    if not _UNIT_SHAPE.fullmatch(text):
        return False
    words = re.findall(r"[A-Za-z']+", text)
    return 0 < len(words) <= 4 and not any(w.lower() in _NOT_UNIT for w in words)


def _strip_units(s: str) -> str:
    """Drop trailing units: ``5.4 \\text{ cents}``, ``864 \\mbox{ inches}^2``, ``1000 dollars``,
    and the things a plain number counts (``15 apples``). Not text that hedges the value
    (``6\\text{ (or 7)}``, ``6 or more``): that stays, and the answer is then no single value."""
    for _ in range(4):
        before = s
        m = re.search(
            r"\\(?:text|mbox|textrm|mathrm|textnormal)\s*\{([^{}]*)\}\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*$",
            s,
        )
        if m and _unit_like(m.group(1)) and re.search(r"[\d}]", s[: m.start()]):
            s = s[: m.start()].rstrip()
        tail = _trailing_words(s)
        if tail is not None:
            words = re.findall(r"[A-Za-z]+", s[tail:])
            units = (
                words
                and all(w.lower() in _UNIT_WORDS for w in words)
                and (len(words) > 1 or len(words[0]) > 1)
                and re.search(r"\d", s[:tail])
            )
            counted = (
                0 < len(words) <= 3
                and all(len(w) >= 3 for w in words)
                and _unit_like(s[tail:])
                and _PLAIN_NUMBER.fullmatch(s[:tail])
            )
            if units or counted:
                s = s[:tail].rstrip()
        if s == before:
            break
    return s


def _rstrip_punctuation(s: str) -> str:
    """``s`` without trailing spaces and sentence punctuation (not "!": ``5!`` is a factorial).
    Linear: a regular expression anchored at the end tries every start of a long run."""
    while True:
        t = s.rstrip().rstrip(".;:?,")
        if t == s:
            return s
        s = t


_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def normalize_answer(s: str) -> str:
    """A canonical spelling of an answer string (see the module docstring); pure, never raises."""
    if not isinstance(s, str):
        return ""
    s = s.strip()
    if len(s) > _MAX_ANSWER_LEN:
        s = s[:_MAX_ANSWER_LEN]
    # A gold or prediction may still carry its box.
    m = re.fullmatch(r"\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*", s, re.DOTALL)
    if m and brace_end(s, s.index("{")) == len(s.rstrip()):
        s = m.group(1)
    if "box" in s:  # "\\boxed{1} and \\boxed{2}" as a gold: the boxes' contents
        s = _unwrap_cmd(s, "boxed|fbox")
    s = s.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ")
    s = s.replace("\n", " ").replace("\t", " ")
    # Thousands separators written the LaTeX way: 10,\!080  1{,}000
    s = re.sub(r"(?<=\d)\s*(?:,\\!|\{,\})\s*(?=\d{3}(?!\d))", "", s)
    s = re.sub(r"(?<=\d)\\!\s*(?=\d{3}(?!\d))", "", s)
    for pat, rep in _SUBS:
        s = pat.sub(rep, s)
    # One space for any run: the patterns below read "\s*" next to optional parts, which on a
    # long run of spaces would take quadratic time.
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"\\(?:rm|bf|it)\s+", "", s)
    # Plain-text math from chat answers: sqrt(2), pi, 2**10.
    s = re.sub(
        r"(?<![\\A-Za-z])(sqrt|sin|cos|tan|cot|sec|csc|ln|log|exp|pi|infty)(?![A-Za-z])", r"\\\1", s
    )
    s = re.sub(r"\*\*\s*(\d+|[A-Za-z])", r"^{\1}", s)
    # Strip trailing punctuation (repeat: "7\text{ hours}." -> "7\text{ hours}" -> "7").
    for _ in range(3):
        s = _rstrip_punctuation(s)
        s = _strip_units(s)
    s = re.sub(r"^[A-Za-z]\s*\\in\s*", "", s)
    s = re.sub(r"\+\s*\\infty", r"\\infty", s)
    s = re.sub(r"(\d)_\{\s*(\d+)\s*\}", r"\1_\2", s)
    # One spelling for one-token arguments: \frac43, \frac 4{3}, \sqrt2 -> \frac{4}{3}, \sqrt{2}
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*(\d)", r"\\frac\1{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"\s+", " ", s).strip()
    body = s.lstrip("+")
    if _THOUSANDS.fullmatch(body):
        s = body.replace(",", "")
    return s


# ---------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    """A parsed answer: ``kind`` and its parts.

    kinds: ``expr`` (src), ``text`` (src), ``choice`` (src = letter), ``base`` (src = digits,
    base), ``list`` / ``set`` (items), ``bracket`` (left, right, items), ``union`` (items),
    ``matrix`` (rows of items), ``eq`` (lhs, rhs, var), ``rel`` (src), ``aside`` (src: a hedged
    answer, equal to nothing).
    """

    kind: str
    src: str = ""
    items: tuple[_Node, ...] = ()
    left: str = ""
    right: str = ""
    var: str = ""
    lhs: str = ""
    rhs: str = ""
    rows: int = 0
    base: int = 0


_OPEN = "([{"
_CLOSE = ")]}"


def _split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` at occurrences of ``sep`` outside any bracket or brace group."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(s)
    ls = len(sep)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            if s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
                i += 2
                continue
            if (
                depth == 0
                and s.startswith(sep, i)
                and not (sep[0] == "\\" and i + ls < n and s[i + ls].isalpha())
            ):
                parts.append(s[start:i])
                i += ls
                start = i
                continue
            j = i + 1
            while j < n and s[j].isalpha():
                j += 1
            i = max(j, i + 2) if j == i + 1 else j
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += ls
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _group_spans(s: str) -> bool:
    """True when the bracket opening at ``s[0]`` closes at the last character."""
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            if s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
                if depth == 0:
                    return i + 2 == n
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == n - 1
        i += 1
    return False


_REL = re.compile(r"\\le |\\ge |<|>|\\ne ")
_GREEK_TEXT = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Upsilon Phi "
    "Psi Omega"
)
_GREEK = _GREEK_TEXT.split()


def _flat_text(s: str) -> str:
    """Words for comparison: wrappers, spaces and sentence punctuation dropped, case folded.
    Anything else stays (``Satu^rday`` is not ``Saturday``, ``\\{frac`` is not ``frac``)."""
    s = _unwrap_cmd(s, _WRAP_CMDS)
    s = re.sub(r"[\s.,;:!?'\"()\-]+", "", s)
    return s.lower()


_PLAIN = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _parse_node(s: str, depth: int = 0, top: bool = True) -> _Node:
    s = s.strip()
    if depth > 12 or _PLAIN.fullmatch(s):  # plain numbers: the items of long lists
        return _Node("expr", s)
    if top:
        whole = re.fullmatch(r"\\(?:" + _WRAP_CMDS + r")\s*\{(.*)\}", s)
        if whole and brace_end(s, s.index("{")) == len(s):
            inner = whole.group(1).strip()
            c = re.fullmatch(r"\(\s*([A-J])\s*\)", inner)
            if c:
                return _Node("choice", c.group(1))
            if re.search(r"[A-Za-z]{2,}", inner) and "\\" not in inner:
                return _Node("text", inner)
            s = inner
        c = re.fullmatch(r"\(\s*([A-J])\s*\)", s)
        if c:
            return _Node("choice", c.group(1))
        if _is_aside(s):
            return _Node("aside", s)
    # Remaining \text{...} wrappers are just spelling.
    s = _unwrap_cmd(s, _WRAP_CMDS).strip()
    if "\\approx" in s:
        exact = _approx_value(s)
        if exact is None:
            return _Node("aside", s)
        s = exact
    parts = _split_top(s, "\\cup")
    if len(parts) > 1:
        return _Node("union", items=tuple(_parse_node(p, depth + 1, False) for p in parts))
    if s.startswith("\\{") and s.endswith("\\}") and _group_spans(s):
        inner = s[2:-2].strip()
        items = [p for p in _split_top(inner, ",") if p.strip()] if inner else []
        return _Node("set", items=_expand_items(items, depth))
    if s in ("\\emptyset", "\\{\\}", "{}"):
        return _Node("set")
    if len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _group_spans(s):
        inner = s[1:-1]
        items = [p for p in _split_top(inner, ",") if p.strip()]
        if len(items) >= 2:  # {1, 2} typed without backslashes: a set
            return _Node("set", items=_expand_items(items, depth))
        return _parse_node(inner, depth + 1, top)
    m = re.fullmatch(
        r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}", s, re.DOTALL
    )
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        cells = [[c for c in r.split("&")] for r in rows]
        width = len(cells[0]) if cells else 0
        if cells and all(len(r) == width for r in cells):
            items = tuple(_parse_node(c, depth + 1, False) for r in cells for c in r)
            return _Node("matrix", items=items, rows=len(cells))
        return _Node("expr", s)
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _group_spans(s):
        inner = s[1:-1]
        items = _split_top(inner, ",")
        if len(items) < 2:  # tuples written with semicolons: (0;-2;6)
            items = _split_top(inner, ";")
        if len(items) >= 2:
            return _Node(
                "bracket",
                left=s[0],
                right=s[-1],
                items=tuple(_parse_node(p, depth + 1, False) for p in items),
            )
        if s[0] == "(" and s[-1] == ")":
            return _parse_node(inner, depth + 1, top)
    if ";" in s:
        groups = _assignment_groups(s, depth)
        if groups is not None:
            return groups
    items = _split_top(s, ",")
    if len(items) >= 2:
        items = [p for p in items if p.strip()]
        if len(items) >= 2:
            return _Node("list", items=_expand_items(items, depth))
        s = items[0].strip() if items else ""
    items = [p for p in _split_top(s, ";") if p.strip()]
    if len(items) >= 2:
        return _Node("list", items=_expand_items(items, depth))
    eq = _split_top(s, "=")
    if len(eq) >= 2 and all(p.strip() for p in eq) and ":" in eq[0] and _label(eq[0]):
        return _equation(eq)  # V_1:V_2 = 11:21, a labelled ratio
    items = _split_top(s, ":")
    if len(items) >= 2 and all(p.strip() for p in items):  # a ratio or a time: ordered parts
        return _Node(
            "bracket",
            left=":",
            right=":",
            items=tuple(_parse_node(p, depth + 1, False) for p in items),
        )
    if _REL.search(s):
        return _relation(s)
    eq = _split_top(s, "=")
    if len(eq) >= 2 and all(p.strip() for p in eq):
        return _equation(eq, depth)
    if "\\pm" in s or "\\mp" in s:
        expanded = _expand_pm(s)
        if len(expanded) > 1:
            return _Node("list", items=tuple(_Node("expr", e) for e in expanded))
    m = re.fullmatch(r"(-?)([0-9A-Fa-f]+)_(\d+)", s)
    if m:
        digits = m.group(2).upper().lstrip("0") or "0"
        return _Node("base", m.group(1) + digits, base=int(m.group(3)))
    return _Node("expr", s)


def _assignment_groups(s: str, depth: int) -> _Node | None:
    """``p=5, q=2; p=7, q=2``: solutions given as groups of assignments to the same variables,
    read as the tuples ``(5, 2), (7, 2)``; None for anything else."""
    groups = [g for g in _split_top(s, ";") if g.strip()]
    if len(groups) < 2:
        return None
    names: list[str] | None = None
    tuples = []
    for group in groups:
        pairs = [_split_top(a, "=") for a in _split_top(group, ",")]
        if len(pairs) < 2 or any(len(p) != 2 or not _is_variable(p[0]) for p in pairs):
            return None
        these = [p[0].strip() for p in pairs]
        if len(set(these)) != len(these) or (names is not None and these != names):
            return None
        names = these
        values = tuple(_parse_node(p[1], depth + 1, False) for p in pairs)
        tuples.append(_Node("bracket", left="(", right=")", items=values))
    return _Node("list", items=tuple(tuples))


def _expand_items(items: Sequence[str], depth: int) -> tuple[_Node, ...]:
    out: list[_Node] = []
    for p in items:
        node = _parse_node(_strip_units(p), depth + 1, True)  # "1 paper, 2 bins"
        if node.kind == "list":
            out.extend(node.items)
        else:
            out.append(node)
    return tuple(out)


def _expand_pm(s: str, limit: int = 3) -> list[str]:
    m = re.search(r"\\(pm|mp)(?![a-zA-Z])", s)
    if not m or limit == 0:
        return [s]
    head, tail = s[: m.start()], s[m.end() :]
    first, second = ("+", "-") if m.group(1) == "pm" else ("-", "+")
    if not head.strip():
        first = ""
    return _expand_pm(head + first + tail, limit - 1) + _expand_pm(head + second + tail, limit - 1)


def _equation(parts: Sequence[str], depth: int = 0) -> _Node:
    """``lhs = ... = rhs``: an assignment to a label (``x = 5``, ``(p,q) = (3,2)``, ``AB = 4``),
    a computation whose value is its last part (``10/2 = 5``), or a general equation. A chain
    is one answer only when its parts agree where that can be checked: ``x = 7 = 6`` and
    ``1.56 = 56`` are no answer of 6 or 56."""
    parts = [p.strip() for p in parts]
    lhs, rhs = parts[0], parts[-1]
    var = _label(lhs)
    for part in parts[1:-1] if var else parts[:-1]:
        if _is_constant(part) and _fast_atoms_equal(part, rhs) is False:
            return _Node("aside", "=".join(parts))
    if var:
        return _Node("eq", lhs=lhs, rhs=rhs, var=var)
    if len(parts) > 2 or _is_constant(lhs):
        return _parse_node(rhs, depth + 1, False)
    return _Node("eq", lhs=lhs, rhs=rhs)


_NAME = r"(?:[A-Za-z]|\\(?:" + "|".join(_GREEK) + r"))(?:_\{?[A-Za-z0-9]+\}?)?'?"
# Named quantities of geometry and probability: AB, |AB|, \overline{AB}, \angle ABC, m\angle A,
# S_{MBCN}, P(A).
_SEGMENT = (
    r"(?:m\s*)?(?:\\(?:angle|overline|triangle|arc|overarc)\s*\{?\s*[A-Z]{1,4}\s*\}?"
    r"|\|\s*[A-Z]{2,4}\s*\||[A-Z]{2,4}(?:_\{?[A-Za-z0-9]+\}?)?|P\s*\(\s*[A-Z]\s*\))"
)
_ONE_LABEL = rf"(?:{_SEGMENT}|{_NAME})"
_LABEL = re.compile(
    rf"{_ONE_LABEL}"  # x, a_3, AB
    rf"|\(\s*{_NAME}(?:\s*,\s*{_NAME})+\s*\)"  # (p, q)
    rf"|{_ONE_LABEL}(?:\s*:\s*{_ONE_LABEL})+"  # V_1 : V_2
    rf"|\\frac\s*\{{\s*{_ONE_LABEL}\s*\}}\s*\{{\s*{_ONE_LABEL}\s*\}}"  # \frac{NO}{BO}
)


def _label(s: str) -> str:
    """The label of a labelled answer, spaces removed (``(p, q)`` -> ``(p,q)``), or ``""``."""
    s = s.strip()
    if len(s) > 80:  # labels are short; and the pattern need not walk a long answer
        return ""
    if _is_variable(s) or _LABEL.fullmatch(s):
        return re.sub(r"\s+", "", s)
    return ""


def _is_aside(s: str) -> bool:
    """A value carrying words that hedge or retract it: ``6\\text{ (or 7)}``,
    ``6 \\quad \\text{(or 7, 8, 9)}``, ``6 is wrong, the answer is 7``, ``about 6``."""
    return bool(re.search(r"\d", s)) and bool(_HEDGE.search(s))


def _approx_value(s: str) -> str | None:
    """``A \\approx B`` is the answer A when B is A rounded or cut to B's decimals
    (``\\frac{2}{3} \\approx 0.67``); None for anything else: ``\\approx 6`` alone is not an exact
    answer, and ``6 \\approx 7`` offers two."""
    parts = [p.strip() for p in s.split("\\approx")]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    left, right = parts
    digits = re.fullmatch(r"[-+]?\d*(?:\.(\d+))?", right.replace(" ", ""))
    if not digits or not re.search(r"\d", right):
        return None
    a, b = _evaluate(left, 0), _evaluate(right, 0)
    if a is None or b is None or a.has_vars or a.special or b.special:
        return None
    ctx = _mp()
    places = len(digits.group(1) or "")
    if not abs(a.mp() - b.mp()) < ctx.mpf(10) ** -places:  # rounded, or cut
        return None
    return left


def _is_variable(s: str) -> bool:
    s = s.strip()
    if re.fullmatch(r"[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?'?", s):
        return True
    if re.fullmatch(r"\\(?:" + "|".join(_GREEK) + r")(?:_\{?[A-Za-z0-9]+\}?)?", s):
        return True
    # f(x), P(2), a_n: a function value is named by what it applies to
    return bool(re.fullmatch(r"[A-Za-z]\s*\([^()]*\)", s))


def _is_constant(s: str) -> bool:
    v = _evaluate(s, 0)
    return isinstance(v, _Value) and not v.has_vars


def _relation(s: str) -> _Node:
    """Simple one-variable inequalities as intervals: ``x > 3`` = ``(3,\\infty)``."""
    tokens = [t for t in re.split(r"(\\le |\\ge |<|>|\\ne )", s)]
    parts = [t.strip() for t in tokens[0::2]]
    ops = [t.strip() for t in tokens[1::2]]
    if "\\ne" in ops or not all(parts):
        return _Node("rel", re.sub(r"\s+", "", s))
    var_at = [i for i, p in enumerate(parts) if _is_variable(p) and not _is_constant(p)]
    if len(var_at) != 1 or len(parts) not in (2, 3):
        return _Node("rel", re.sub(r"\s+", "", s))
    strict = {"<": True, ">": True, "\\le": False, "\\ge": False}
    lo, hi, lo_open, hi_open = "-\\infty", "\\infty", True, True
    k = var_at[0]
    for j, op in enumerate(ops):
        a, b = j, j + 1  # parts[a] op parts[b]
        less = op in ("<", "\\le")
        if b == k:  # bound op x
            if less:
                lo, lo_open = parts[a], strict[op]
            else:
                hi, hi_open = parts[a], strict[op]
        elif a == k:  # x op bound
            if less:
                hi, hi_open = parts[b], strict[op]
            else:
                lo, lo_open = parts[b], strict[op]
        else:
            return _Node("rel", re.sub(r"\s+", "", s))
    return _Node(
        "bracket",
        left="(" if lo_open else "[",
        right=")" if hi_open else "]",
        items=(_Node("expr", lo), _Node("expr", hi)),
    )


# ---------------------------------------------------------------------------------------------
# The in-process evaluator: LaTeX arithmetic in exact (Gaussian) rationals or 50-digit floats
# ---------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """The fast evaluator cannot read or safely compute this; sympy decides."""


_MP: Any = None


def _mp() -> Any:
    global _MP
    if _MP is None:
        from mpmath.ctx_mp import MPContext

        ctx = MPContext()
        ctx.dps = 50
        _MP = ctx
    return _MP


class _Value:
    """A value: exact ``(re, im)`` Fractions, or an approximate 50-digit ``mpc``; or +-infinity
    / a number too large to hold (``huge``: sign only)."""

    __slots__ = ("approx", "has_vars", "huge", "im", "inf", "re", "tiny")

    def __init__(self, re_: Fraction | None = None, im: Fraction | None = None, approx: Any = None):
        self.re = re_
        self.im = im if im is not None else (Fraction(0) if re_ is not None else None)
        self.approx = approx
        self.inf = 0
        self.huge = 0
        self.tiny = 0
        self.has_vars = False

    @property
    def exact(self) -> bool:
        return self.re is not None and not self.inf and not self.huge and not self.tiny

    @property
    def special(self) -> bool:
        return bool(self.inf or self.huge or self.tiny)

    def mp(self) -> Any:
        if self.special:
            raise _Unsupported("infinite")
        if self.exact:
            ctx = _mp()
            return ctx.mpc(
                ctx.mpf(self.re.numerator) / self.re.denominator,
                ctx.mpf(self.im.numerator) / self.im.denominator,
            )
        return self.approx


def _special(inf: int = 0, huge: int = 0, tiny: int = 0) -> _Value:
    """+-infinity, a number too large to hold (sign only), or one too close to 0 to hold."""
    v = _Value()
    v.inf, v.huge, v.tiny = inf, huge, tiny
    return v


def _check_size(v: _Value) -> _Value:
    if v.exact:
        for q in (v.re, v.im):
            if q.numerator.bit_length() > _MAX_BITS or q.denominator.bit_length() > _MAX_BITS:
                raise _Unsupported("too large")
        return v
    ctx = _mp()
    a = v.approx
    if not (ctx.isfinite(a.real) and ctx.isfinite(a.imag)):
        raise _Unsupported("not finite")
    if a != 0 and abs(ctx.mag(a)) > _MAX_BITS - 10_000:  # stays clear of "huge" / "tiny"
        raise _Unsupported("magnitude")
    return v


def _approx_of(x: Any) -> _Value:
    return _check_size(_Value(approx=_mp().mpc(x)))


def _add(a: _Value, b: _Value, sign: int = 1) -> _Value:
    if a.special or b.special:
        # inf + x and huge + x keep their sign: |huge| > 2^60000 > any finite value here.
        if (a.huge or a.inf) and b.exact:
            return a
        if (b.huge or b.inf) and a.exact:
            return _special(inf=b.inf * sign, huge=b.huge * sign)
        raise _Unsupported("inf arithmetic")
    if a.exact and b.exact:
        return _check_size(_Value(a.re + sign * b.re, a.im + sign * b.im))
    return _approx_of(a.mp() + sign * b.mp())


def _mul(a: _Value, b: _Value) -> _Value:
    if a.special or b.special:
        raise _Unsupported("inf arithmetic")
    if a.exact and b.exact:
        return _check_size(_Value(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re))
    return _approx_of(a.mp() * b.mp())


def _div(a: _Value, b: _Value) -> _Value:
    if a.special or b.special:
        raise _Unsupported("inf arithmetic")
    if b.exact:
        den = b.re * b.re + b.im * b.im
        if den == 0:
            raise _Unsupported("division by zero")
        if a.exact:
            return _check_size(
                _Value((a.re * b.re + a.im * b.im) / den, (a.im * b.re - a.re * b.im) / den)
            )
    bm = b.mp()
    if bm == 0:
        raise _Unsupported("division by zero")
    return _approx_of(a.mp() / bm)


def _neg(a: _Value) -> _Value:
    if a.special:
        return _special(inf=-a.inf, huge=-a.huge, tiny=-a.tiny)
    if a.exact:
        return _Value(-a.re, -a.im)
    return _Value(approx=-a.approx)


def _iroot(n: int, k: int) -> int | None:
    """The exact integer k-th root of n >= 0, or None."""
    if n < 2:
        return n
    if k == 2:
        r = math.isqrt(n)
    else:
        r = int(round(n ** (1.0 / k))) if n.bit_length() < 1000 else None
        if r is None:
            return None
        for cand in (r - 1, r, r + 1):
            if cand >= 0 and cand**k == n:
                return cand
        return None
    return r if r * r == n else None


def _exact_root(q: Fraction, k: int) -> Fraction | None:
    if q < 0 or k < 1 or k > 64:
        return None
    num, den = _iroot(q.numerator, k), _iroot(q.denominator, k)
    if num is None or den is None:
        return None
    return Fraction(num, den)


def _pow(a: _Value, b: _Value) -> _Value:
    if b.huge and a.exact and a.im == 0 and a.re >= 2:
        return _special(huge=1) if b.huge > 0 else _special(tiny=1)
    if a.inf or a.tiny or b.special:
        raise _Unsupported("inf power")
    if a.huge:
        if b.exact and b.im == 0 and b.re.denominator == 1 and b.re >= 1:
            return _special(huge=1 if a.huge > 0 or b.re.numerator % 2 == 0 else -1)
        raise _Unsupported("huge power")
    if b.exact and b.im == 0 and b.re.denominator == 1:
        n = b.re.numerator
        if a.exact:
            if a.re == 0 and a.im == 0:
                if n < 0:
                    raise _Unsupported("0 to a negative power")
                return _Value(Fraction(1 if n == 0 else 0))
            size = max(
                abs(a.re.numerator).bit_length() + a.re.denominator.bit_length(),
                abs(a.im.numerator).bit_length() + a.im.denominator.bit_length(),
                1,
            )
            if abs(n) * size > _MAX_BITS:
                # Too big to compute exactly: keep only "beyond 2^+-60000" when it truly is.
                if a.im == 0:
                    ctx = _mp()
                    bits = n * ctx.log(ctx.mpf(abs(a.re.numerator)) / a.re.denominator, 2)
                    sign = 1 if a.re > 0 or n % 2 == 0 else -1
                    if bits > _MAX_BITS:
                        return _special(huge=sign)
                    if bits < -_MAX_BITS:
                        return _special(tiny=sign)
                raise _Unsupported("power too large")
            if a.im == 0:
                return _check_size(_Value(a.re**n))
            result = _Value(Fraction(1))
            base = a
            k = abs(n)
            while k:
                if k & 1:
                    result = _mul(result, base)
                base = _mul(base, base)
                k >>= 1
            return _div(_Value(Fraction(1)), result) if n < 0 else result
        if abs(n) > 10_000:
            raise _Unsupported("power too large")
        return _approx_of(a.mp() ** n)
    if a.exact and a.im == 0 and a.re > 0 and b.exact and b.im == 0:
        p, q = b.re.numerator, b.re.denominator
        root = _exact_root(a.re, q)
        if root is not None:
            return _pow(_Value(root), _Value(Fraction(p)))
    ctx = _mp()
    bm = b.mp()
    if abs(bm) > 10_000:
        raise _Unsupported("power too large")
    return _approx_of(ctx.power(a.mp(), bm))


def _root(a: _Value, k: int) -> _Value:
    """Principal square root; real odd roots of negative reals (``\\sqrt[3]{-8} = -2``)."""
    if a.special:
        raise _Unsupported("root of inf")
    if a.exact and a.im == 0:
        r = _exact_root(abs(a.re), k)
        if a.re >= 0:
            if r is not None:
                return _Value(r)
        elif k == 2:
            if r is not None:
                return _Value(Fraction(0), r)
        elif k % 2 == 1:
            if r is not None:
                return _Value(-r)
            return _approx_of(-_mp().root(_mp().mpf(abs(a.re.numerator)) / a.re.denominator, k))
    ctx = _mp()
    return _approx_of(ctx.sqrt(a.mp()) if k == 2 else ctx.root(a.mp(), k))


_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "ln": "ln", "log": "log10", "exp": "exp",
}  # fmt: skip

_TOKEN = re.compile(
    r"\\[A-Za-z]+|\\[{}|]|\d+(?:\.\d+)?|\.\d+|[A-Za-z]|\S",
)


class _Eval:
    """Recursive-descent evaluation of a LaTeX arithmetic expression at one variable sample."""

    def __init__(self, src: str, sample: int):
        self.toks = _TOKEN.findall(src)
        self.pos = 0
        self.sample = sample
        self.vars: set[str] = set()
        self.decimal = False
        self.depth = 0

    # token helpers
    def peek(self, k: int = 0) -> str | None:
        j = self.pos + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> str:
        if self.pos >= len(self.toks):
            raise _Unsupported("unexpected end")
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def expect(self, t: str) -> None:
        if self.take() != t:
            raise _Unsupported(f"expected {t}")

    def run(self) -> _Value:
        v = self.expr()
        if self.pos != len(self.toks):
            raise _Unsupported(f"trailing {self.toks[self.pos]!r}")
        return v

    def expr(self) -> _Value:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Unsupported("too deep")
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            v = _add(v, self.term(), 1 if op == "+" else -1)
        self.depth -= 1
        return v

    def _mixed(self) -> _Value | None:
        """``1\\frac{4}{5}`` = 9/5, ``-2\\frac12`` = -5/2 (a whole number then a simple fraction)."""
        j = self.pos
        sign = 1
        if self.peek() in ("-", "+"):
            sign = -1 if self.peek() == "-" else 1
            j += 1
        toks = self.toks
        if j + 1 < len(toks) and toks[j].isdigit() and toks[j + 1] == "\\frac":
            save, saved_toks = self.pos, list(toks)
            self.pos = j + 2
            try:
                num = self.simple_int_arg()
                den = self.simple_int_arg()
            except _Unsupported:
                num = den = None
            ends = (None, "+", "-", ")", "}", "]", ",", "=")
            if num is not None and den is not None and den != 0 and self.peek() in ends:
                return _Value(sign * (Fraction(int(toks[j])) + Fraction(num, den)))
            self.pos, self.toks = save, saved_toks
        return None

    def simple_int_arg(self) -> int | None:
        t = self.peek()
        if t == "{":
            self.take()
            neg = self.peek() == "-"
            if neg:
                return None
            t2 = self.take()
            if not t2.isdigit() or self.take() != "}":
                return None
            return int(t2)
        if t is not None and t.isdigit():
            self.take()
            if len(t) > 1:
                self.pos -= 1
                self.toks[self.pos] = t[1:]
                return int(t[0])
            return int(t)
        return None

    def term(self) -> _Value:
        mixed = self._mixed()
        if mixed is not None:
            v = mixed
        else:
            v = self.unary()
        while True:
            t = self.peek()
            if t in ("*", "\\cdot", "\\times"):
                self.take()
                v = _mul(v, self.unary())
            elif t in ("/", "\\div"):
                self.take()
                v = _div(v, self.unary())
            elif t is not None and self.starts_primary(t):
                if t[0].isdigit() or t[0] == ".":
                    raise _Unsupported("two numbers side by side")
                v = _mul(v, self.power())
            else:
                return v

    def starts_primary(self, t: str) -> bool:
        if t in ("(", "{", "\\{"):
            return True
        if t[0].isdigit() or t[0] == "." or (len(t) == 1 and t.isalpha()):
            return True
        return t.startswith("\\") and t not in ("\\cdot", "\\times", "\\div", "\\}", "\\le", "\\ge")

    def unary(self) -> _Value:
        t = self.peek()
        if t == "-":
            self.take()
            return _neg(self.unary())
        if t == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> _Value:
        base = self.postfix()
        if self.peek() == "^":
            self.take()
            exp = self.script()
            base = _pow(base, exp)
            if self.peek() == "^":
                raise _Unsupported("double exponent")
        return base

    def script(self) -> _Value:
        """An exponent: a group, or one token. A digit run is taken whole (``2^10`` = 1024, as
        a model typing it means, not TeX's 2^1 0)."""
        t = self.peek()
        if t == "{":
            return self.primary()
        if t == "-":
            self.take()
            return _neg(self.script())
        if t is not None and (t[0].isdigit() or t[0] == "."):
            return self.primary()
        return self.single()

    def single(self) -> _Value:
        """One-token argument of \\frac / \\sqrt / ^: splits a digit run (``\\frac43``)."""
        t = self.peek()
        if t is None:
            raise _Unsupported("missing argument")
        if t.isdigit() and len(t) > 1:
            self.toks[self.pos] = t[1:]
            return _Value(Fraction(int(t[0])))
        if t == "{":
            return self.primary()
        return self.primary()

    def postfix(self) -> _Value:
        v = self.primary()
        while self.peek() == "!":
            self.take()
            if not (v.exact and v.im == 0 and v.re.denominator == 1 and 0 <= v.re <= 3000):
                raise _Unsupported("factorial")
            v = _Value(Fraction(math.factorial(int(v.re))))
        return v

    def group(self, close: str) -> _Value:
        v = self.expr()
        self.expect(close)
        return v

    def primary(self) -> _Value:
        t = self.take()
        if t == "{":
            return self.group("}")
        if t == "(":
            return self.group(")")
        if t == "[":
            return self.group("]")
        if t == "|":
            v = self.group("|")
            return _approx_of(abs(v.mp())) if not v.exact else _abs_exact(v)
        if t[0].isdigit() or t[0] == ".":
            if "." in t:
                self.decimal = True
            return _Value(Fraction(t))
        if len(t) == 1 and t.isalpha():
            if t == "i":
                return _Value(Fraction(0), Fraction(1))
            if t == "e":
                return _approx_of(_mp().e)
            return self.variable(t)
        if t == "\\frac":
            num = self.single()
            den = self.single()
            return _div(num, den)
        if t == "\\sqrt":
            k = 2
            if self.peek() == "[":
                self.take()
                idx = self.group("]")
                if not (
                    idx.exact and idx.im == 0 and idx.re.denominator == 1 and 2 <= idx.re <= 64
                ):
                    raise _Unsupported("root index")
                k = int(idx.re)
            return _root(self.single(), k)
        if t == "\\binom":
            n, k = self.single(), self.single()
            if not (n.exact and k.exact and n.im == 0 and k.im == 0):
                raise _Unsupported("binom")
            if n.re.denominator != 1 or k.re.denominator != 1 or not 0 <= n.re <= 5000:
                raise _Unsupported("binom")
            return _Value(Fraction(math.comb(int(n.re), int(k.re)) if k.re >= 0 else 0))
        if t == "\\pi":
            return _approx_of(_mp().pi)
        if t == "\\infty":
            return _special(inf=1)
        if t[1:] in _FUNCS:
            return self.function(_FUNCS[t[1:]])
        if t[1:] in _GREEK:
            return self.variable(t)
        raise _Unsupported(f"token {t!r}")

    def variable(self, name: str) -> _Value:
        if self.peek() == "_":
            self.take()
            sub = self.take()
            if sub == "{":
                parts = []
                while self.peek() not in ("}", None):
                    parts.append(self.take())
                self.expect("}")
                sub = "".join(parts)
            name = f"{name}_{sub}"
        self.vars.add(name)
        h = zlib.crc32(name.encode())
        # Fixed, unremarkable rational points (negative ones too, so that sqrt(x^2) != x).
        samples = (
            Fraction(1000 + h % 997, 613),
            Fraction(-(500 + h % 389), 1009),
            Fraction(2000 + h % 211, 1601),
        )
        v = _Value(samples[self.sample % 3])
        v.has_vars = True
        return v

    def function(self, name: str) -> _Value:
        power = None
        if self.peek() == "^":
            self.take()
            power = self.script()
        base = None
        if name == "log10" and self.peek() == "_":
            self.take()
            base = self.script()
        if self.peek() in ("(", "{"):
            arg = self.primary()
        else:
            arg = self.power()
            nxt = self.peek()
            if nxt is not None and self.starts_primary(nxt):
                raise _Unsupported("ambiguous function argument")
        ctx = _mp()
        a = arg.mp()
        if abs(a) > 10**6:
            raise _Unsupported("function argument too large")
        try:
            if base is not None:
                val = ctx.log(a) / ctx.log(base.mp())
            elif name == "log10":
                val = ctx.log(a, 10)
            elif name == "ln":
                val = ctx.log(a)
            else:
                val = getattr(ctx, name)(a)
        except (ValueError, ZeroDivisionError) as exc:
            raise _Unsupported(str(exc)) from None
        v = _approx_of(val)
        if power is not None:
            v = _pow(v, power)
        return v


def _abs_exact(v: _Value) -> _Value:
    if v.im == 0:
        return _Value(abs(v.re))
    sq = v.re * v.re + v.im * v.im
    return _root(_Value(sq), 2)


@functools.lru_cache(maxsize=8192)
def _evaluate(src: str, sample: int) -> _Value | None:
    """The value of ``src`` at variable sample ``sample`` (0..2), or None if unsupported.
    Remembered: the list matcher asks for one item's value once per partner. Callers must
    not change the value returned."""
    if not src or len(src) > _MAX_FAST_LEN:
        return None
    try:
        ev = _Eval(src, sample)
        v = ev.run()
    except (_Unsupported, ZeroDivisionError, OverflowError, ValueError, TypeError, RecursionError):
        return None
    except Exception:  # the evaluator must never take the grader down
        logger.debug("fast evaluator failed on %r", src, exc_info=True)
        return None
    v.has_vars = bool(ev.vars)
    return v


def _values_equal(a: _Value, b: _Value) -> bool | None:
    """True / False when certain, None when only sympy can tell.

    Equality is only ever claimed for exact values: numbers that agree to 30 digits are not
    thereby equal (``\\sqrt7`` vs ``\\sqrt7 (1 + 10^{-40})``). A clear numeric difference
    does prove them different.
    """
    if a.inf or b.inf:
        if a.inf and b.inf:
            return a.inf == b.inf
        return False if (a.exact or not (a.huge or b.huge)) else None
    if a.tiny or b.tiny:
        other = b if a.tiny else a
        if other.exact and other.re == 0 and other.im == 0:
            return False  # nonzero, however small
        return None
    if a.huge or b.huge:
        if a.huge and b.huge:
            return None
        return False
    if a.exact and b.exact:
        return a.re == b.re and a.im == b.im
    ctx = _mp()
    x, y = a.mp(), b.mp()
    diff = abs(x - y)
    scale = max(abs(x), abs(y))
    # 50-digit arithmetic: a gap this wide is not rounding (short of cancellation of 25+
    # digits, which can only make us say "different" wrongly, never "equal").
    if diff > ctx.mpf(10) ** -15 * scale and diff > ctx.mpf(10) ** -25:
        return False
    return None


def _squeeze(s: str) -> str:
    """``s`` without spaces that carry no meaning (kept between two letters or digits:
    ``2 3`` is not ``23``, ``\\pi x`` is not ``\\pix``)."""
    return re.sub(r"(?<![0-9A-Za-z.])\s+|\s+(?![0-9A-Za-z.])", "", s)


def _fast_atoms_equal(a: str, b: str) -> bool | None:
    """Compare two atom expressions without sympy: True / False when certain, else None.

    True only for the same spelling or equal exact constants. With variables, the two sides
    are evaluated at fixed rational points: a point where they differ proves them different;
    agreeing at the points proves nothing, so sympy decides.
    """
    if a == b:
        return True
    if _squeeze(a) == _squeeze(b):
        return True
    for k in range(3):
        va, vb = _evaluate(a, k), _evaluate(b, k)
        if va is None or vb is None:
            return None
        r = _values_equal(va, vb)
        if r is False:
            return False
        if not va.has_vars and not vb.has_vars:
            return r
    return None


# ---------------------------------------------------------------------------------------------
# Comparison of structures (tri-state: True, False, None = undecided)
# ---------------------------------------------------------------------------------------------

AtomCmp = Callable[[str, str], "bool | None"]


# In-process item comparisons one unordered list may cost; a list that needs more (long lists of
# items without an exact value) goes to a worker, under the same time limit as everything else.
_PAIR_BUDGET = 4096


def _match(gs: Sequence[_Node], ps: Sequence[_Node], cmp: AtomCmp, ordered: bool) -> bool | None:
    if not ordered:
        return _match_unordered(gs, ps, cmp)
    if len(gs) != len(ps):
        return False
    unknown = False
    for g, p in zip(gs, ps, strict=True):
        r = _cmp(g, p, cmp)
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def _exact_key(n: _Node) -> tuple[Any, ...] | None:
    """A hashable exact value of a plain number or a tuple of them (``\\frac12`` and ``0.5``
    share one), or None. Two keyed items are equal exactly when their keys are."""
    if n.kind == "expr":
        if _PLAIN.fullmatch(n.src):
            return ("num", Fraction(n.src.rstrip(".")), Fraction(0))
        if _has_word(n.src):
            return None
        v = _evaluate(n.src, 0)
        if v is None or not v.exact or v.has_vars:
            return None
        return ("num", v.re, v.im)
    if n.kind == "bracket":
        keys = tuple(_exact_key(x) for x in n.items)
        if all(k is not None for k in keys):
            return ("bracket", n.left, n.right, keys)
    return None


def _match_unordered(gs: Sequence[_Node], ps: Sequence[_Node], cmp: AtomCmp) -> bool | None:
    """Two unordered lists or sets name the same set: each item of either has an equal item in
    the other (``1, 2, 2`` = ``2, 1``). Items with an exact value are matched by hashing, so a
    list of plain numbers costs O(n log n); only the rest is compared pair by pair, within
    ``_PAIR_BUDGET`` in-process (a worker's comparator has no budget: it runs under the pool's
    time limit)."""
    gkeys = [_exact_key(g) for g in gs]
    pkeys = [_exact_key(p) for p in ps]
    # Items spelled the same are equal too (x, y and x, y): one more key, by spelling.
    gsame = {g for g in gs if g.kind != "aside"}
    psame = {p for p in ps if p.kind != "aside"}
    gset = {k for k in gkeys if k is not None}
    pset = {k for k in pkeys if k is not None}
    g_open = [i for i, k in enumerate(gkeys) if k not in pset and gs[i] not in psame]
    p_open = [j for j, k in enumerate(pkeys) if k not in gset and ps[j] not in gsame]
    if not g_open and not p_open:
        return True
    # An open item with an exact value can only be matched by an item without one (keyed
    # items with different keys differ); an item without one may match anything.
    g_loose = [i for i, k in enumerate(gkeys) if k is None]
    p_loose = [j for j, k in enumerate(pkeys) if k is None]

    def partners(keyed: bool, loose: list[int], n: int) -> Sequence[int]:
        return loose if keyed else range(n)

    todo = [(i, True, partners(gkeys[i] is not None, p_loose, len(ps))) for i in g_open]
    todo += [(j, False, partners(pkeys[j] is not None, g_loose, len(gs))) for j in p_open]
    cost = sum(len(others) for _, _, others in todo)
    if cost > _PAIR_BUDGET and not getattr(cmp, "unbounded", False):
        return None
    result: bool | None = True
    for k, is_gold, others in todo:
        found: bool | None = False
        for o in others:
            r = _cmp(gs[k], ps[o], cmp) if is_gold else _cmp(gs[o], ps[k], cmp)
            if r is True:
                found = True
                break
            if r is None:
                found = None
        if found is False:
            return False
        if found is None:
            result = None
    return result


def _cmp(g: _Node, p: _Node, cmp: AtomCmp) -> bool | None:
    gk, pk = g.kind, p.kind
    if gk == "aside" or pk == "aside":  # a hedged answer is no answer (see _is_aside)
        return False
    if gk == "text" or pk == "text":
        gt = _flat_text(g.src if gk in ("text", "expr") else "")
        pt = _flat_text(p.src if pk in ("text", "expr") else "")
        return bool(gt) and gt == pt
    if gk == "choice" or pk == "choice":
        if gk == pk:
            return g.src == p.src
        other = p if gk == "choice" else g
        letter = g.src if gk == "choice" else p.src
        if other.kind == "expr":
            m = re.fullmatch(r"\(?\s*([A-J])\s*\)?(?:\s.*)?", other.src)
            return bool(m) and m.group(1) == letter
        return False
    # equations and assignments
    if gk == "eq" or pk == "eq":
        return _cmp_eq(g, p, cmp)
    if gk in ("list", "set") and pk in ("list", "set"):
        return _match(g.items, p.items, cmp, ordered=False)
    if gk == "bracket" and pk == "bracket":
        if g.left != p.left or g.right != p.right:
            return False
        return _match(g.items, p.items, cmp, ordered=True)
    if gk == "bracket" and pk == "list" or gk == "list" and pk == "bracket":
        br = g if gk == "bracket" else p
        lst = p if gk == "bracket" else g
        values = _assigned_values(lst)
        if values is not None and br.left == "(" and br.right == ")":
            # "x=4, y=-1" is the pair (4, -1): assignments to distinct variables, in order.
            return _match(br.items, values, cmp, ordered=True)
        # "(6,31,-1)" written "6, 31, -1": same tuple. A 2-item "(a,b)" may be an open interval,
        # which a bare pair of numbers is not: never equal.
        if br.left == "(" and br.right == ")" and len(br.items) >= 3:
            return _match(br.items, lst.items, cmp, ordered=True)
        return False
    if gk == "union" or pk == "union":
        gi = g.items if gk == "union" else (g,)
        pi = p.items if pk == "union" else (p,)
        if len(gi) == 1 and len(pi) == 1:
            return _cmp(gi[0], pi[0], cmp)
        return _match(gi, pi, cmp, ordered=False)
    if gk == "matrix" and pk == "matrix":
        if g.rows != p.rows or len(g.items) != len(p.items):
            return False
        return _match(g.items, p.items, cmp, ordered=True)
    if {gk, pk} == {"matrix", "bracket"}:
        mat, br = (g, p) if gk == "matrix" else (p, g)
        vector = mat.rows == len(mat.items) or mat.rows == 1
        if vector and br.left == "(" and br.right == ")":
            return _match(mat.items, br.items, cmp, ordered=True)
        return False
    if gk == "base" or pk == "base":
        if gk == pk:
            if g.base == p.base:
                return g.src == p.src
            try:
                return int(g.src, g.base) == int(p.src, p.base)
            except ValueError:
                return False
        other, b = (p, g) if gk == "base" else (g, p)
        m = re.fullmatch(r"(-?)([0-9A-Fa-f]+)", other.src) if other.kind == "expr" else None
        if m:
            return m.group(1) + (m.group(2).upper().lstrip("0") or "0") == b.src
        return False
    if gk == "rel" or pk == "rel":
        return gk == pk and g.src == p.src
    if gk == "expr" and pk == "expr":
        return cmp(g.src, p.src)
    # One value against a list or set: the same set only if every item is that value. "5" =
    # "\{5\}" = "5, 5"; "\boxed{\frac{639}{40}} or \boxed{15.975}" offers one value twice, while
    # "6, 7" offers a second answer.
    if gk in ("list", "set") and g.items:
        return _all_equal([(item, p) for item in g.items], cmp)
    if pk in ("list", "set") and p.items:
        return _all_equal([(g, item) for item in p.items], cmp)
    return False


def _all_equal(pairs: Sequence[tuple[_Node, _Node]], cmp: AtomCmp) -> bool | None:
    """True when every (gold, prediction) pair is equal; False when one is proven unequal."""
    result: bool | None = True
    for g, p in pairs:
        r = _cmp(g, p, cmp)
        if r is False:
            return False
        if r is None:
            result = None
    return result


def _assigned_values(n: _Node) -> tuple[_Node, ...] | None:
    """The values of a list of assignments to distinct single variables (``x=4, y=-1``), in
    the order written; None for any other list."""
    names = [i.var for i in n.items if i.kind == "eq" and _is_variable(i.var)]
    if len(names) != len(n.items) or len(set(names)) != len(names):
        return None
    return tuple(_parse_node(i.rhs, 1, False) for i in n.items)


def _same_label(a: str, b: str) -> bool:
    """One label: the same name, or a name and its numbered copies (``x`` and ``x_1``: roots
    listed as ``x_1 = -3, x_2 = 1/2`` and as ``x = -3, x = 1/2``)."""
    if a == b:
        return True
    base = re.compile(r"([A-Za-z])(?:_\{?\d+\}?)?")
    ma, mb = base.fullmatch(a), base.fullmatch(b)
    return bool(ma and mb and ma.group(1) == mb.group(1))


def _cmp_eq(g: _Node, p: _Node, cmp: AtomCmp) -> bool | None:
    """Equations: same assignment, or the same equation up to a nonzero factor."""
    gv, pv = g.kind == "eq" and g.var, p.kind == "eq" and p.var
    if g.kind == "eq" and p.kind == "eq":
        if gv and pv and _same_label(gv, pv):
            return _cmp(_parse_node(g.rhs, 1, False), _parse_node(p.rhs, 1, False), cmp)
        return cmp(f"\\EQ{{{_eq_src(g)}}}", f"\\EQ{{{_eq_src(p)}}}")
    if g.kind == "eq":
        if not gv:
            return False
        return _cmp(_parse_node(g.rhs, 1, False), p, cmp)
    if not pv:
        return False
    return _cmp(g, _parse_node(p.rhs, 1, False), cmp)


def _eq_src(n: _Node) -> str:
    return f"{n.lhs}={n.rhs}"


def _fast_eq_equal(a: str, b: str) -> bool | None:
    """``lhs=rhs`` pairs: the same equation when ``lhs - rhs`` are proportional. The sample
    points can only prove that they are *not* (False); otherwise sympy decides (None)."""
    ga, gb = a.split("=", 1)
    pa, pb = b.split("=", 1)
    ratio = None
    for k in range(3):
        vals = [_evaluate(x, k) for x in (ga, gb, pa, pb)]
        if any(v is None for v in vals):
            return None
        if not all(v.exact for v in vals):
            return None
        fg = _add(vals[0], vals[1], -1)
        fp = _add(vals[2], vals[3], -1)
        if fp.re == 0 and fp.im == 0:
            if fg.re != 0 or fg.im != 0:
                return False
            continue
        r = _div(fg, fp)
        if r.re == 0 and r.im == 0:
            return False
        if ratio is None:
            ratio = r
        elif (r.re, r.im) != (ratio.re, ratio.im):
            return False
    return None


_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z]{3,}")


def _has_word(src: str) -> bool:
    """A run of 3+ plain letters ("east", "seat"): read as a word, not a product of variables."""
    src = re.sub(r"\\operatorname\s*\{[^{}]*\}", " ", src)
    return bool(_WORD.search(re.sub(r"\\[A-Za-z]+", " ", src)))


def _fast_atom(a: str, b: str) -> bool | None:
    if _has_word(a) or _has_word(b):  # words are compared as spelled, never as math
        return _squeeze(a).lower() == _squeeze(b).lower()
    if a.startswith("\\EQ{") and b.startswith("\\EQ{"):
        return _fast_eq_equal(a[4:-1], b[4:-1])
    if a.startswith("\\EQ{") or b.startswith("\\EQ{"):
        return False
    return _fast_atoms_equal(a, b)


# ---------------------------------------------------------------------------------------------
# The sympy side (runs in a worker process)
# ---------------------------------------------------------------------------------------------


def _sympy_parse(src: str) -> Any:
    """Math-Verify's LaTeX normalisation and parser (latex2sympy) on one atom, or None.

    Not ``math_verify.parse``: its extraction regexes read the longest *prefix* that parses, so
    ``\\frac{2}{5}+`` or ``\\frac{2}{5}r\\ight`` would count as 2/5. Here the whole atom must
    parse. No ``signal.alarm``: the pool enforces time.
    """
    from latex2sympy2_extended.latex2sympy2 import normalize_latex
    from math_verify.parser import LatexExtractionConfig, parse_latex_cached

    try:
        latex = normalize_latex(src, LatexExtractionConfig().normalization_config)
        expr = parse_latex_cached(latex)
    except Exception:
        return None
    return None if isinstance(expr, str) else expr


def _rationalize(expr: Any) -> Any:
    import sympy

    floats = expr.atoms(sympy.Float)
    if not floats:
        return expr
    return expr.xreplace({f: sympy.Rational(str(f)) for f in floats})


def _braces_balanced(src: str) -> bool:
    if "\\\\" in src:
        return False
    depth = 0
    for c in re.sub(r"\\[{}]", "", src):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


class _SympyAtoms:
    """Atom comparison with sympy, remembering whether something could not be parsed."""

    unbounded = True  # runs in a worker under the pool's time limit: no pair budget

    def __init__(self) -> None:
        self.unparseable = False

    def __call__(self, a: str, b: str) -> bool | None:
        fast = _fast_atom(a, b)
        if fast is not None:
            return fast
        try:
            return self._sympy(a, b)
        except Exception:
            logger.debug("sympy comparison failed for %r vs %r", a, b, exc_info=True)
            self.unparseable = True
            return False

    def _sympy(self, a: str, b: str) -> bool:
        import sympy

        if a.startswith("\\EQ{") and b.startswith("\\EQ{"):
            ga, gb = (self._parse(x) for x in a[4:-1].split("=", 1))
            pa, pb = (self._parse(x) for x in b[4:-1].split("=", 1))
            if any(x is None for x in (ga, gb, pa, pb)):
                return False
            fg, fp = sympy.simplify(ga - gb), sympy.simplify(pa - pb)
            if fp == 0 or fg == 0:
                return bool(fg == fp)
            ratio = sympy.simplify(fg / fp)
            return bool(ratio.free_symbols == set() and ratio != 0 and ratio.is_finite)
        x, y = self._parse(a), self._parse(b)
        if x is None or y is None:
            return False
        if not isinstance(x, sympy.Expr) or not isinstance(y, sympy.Expr):
            try:
                return bool(x == y)
            except Exception:
                return False
        x, y = _rationalize(x), _rationalize(y)
        d = x - y
        if d == 0:
            return True
        if sympy.expand(d) == 0 or sympy.simplify(d) == 0:
            return True
        if d.free_symbols:
            return False
        # Algebraic constants simplify cannot settle: their difference is 0 exactly when its
        # minimal polynomial is t. Never a numeric tolerance: sqrt(7) and sqrt(7)(1+10^-40)
        # agree to 40 digits and still differ.
        try:
            t = sympy.Dummy("t")
            return bool(sympy.minimal_polynomial(d, t) == t)
        except Exception:  # not algebraic (pi, e, logs): unproven, so not equal
            return False

    def _parse(self, src: str) -> Any:
        import sympy

        # Malformed input gets no value, though the parser would repair it into one: two
        # numbers side by side ("1 2 3" -> 6), unbalanced braces ("\\frac{1}{57"), "\\\\".
        adjacent = re.search(r"(?:^|[^_^\d.])\d+(?:\.\d+)?\s+\.?\d", src)  # not \log_2 8
        expr = None if adjacent or not _braces_balanced(src) else _sympy_parse(src)
        if expr is None or isinstance(expr, str):
            self.unparseable = True
            return None
        # As in the fast evaluator, i is the imaginary unit (the parser sometimes keeps a symbol).
        unit = [v for v in getattr(expr, "free_symbols", ()) if v.name == "i"]
        if unit:
            expr = expr.xreplace({unit[0]: sympy.I})
        return expr


def _warm_worker() -> None:
    """Run in each new worker before it reports ready: the LaTeX parser's first use costs a
    second or more, which must not count against the first call's time limit."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for src in (r"\frac{1}{2}", r"3\sqrt{13}", r"7\pi", "x^2+2x+1", r"(a+5)(b+2)", r"\sin x"):
        _sympy_parse(src)
    _full_compare(r"\sqrt{8}", r"2\sqrt{2}")
    _full_compare(r"\cos 2x", r"\cos^2 x - \sin^2 x")  # the first trig simplification: ~1 s


def _gold_form(gold: str) -> str:
    """A gold answer that is itself approximate (``\\approx 8.24``) is read as its value; a
    prediction that says "approximately" is not an exact answer (see ``_approx_value``)."""
    return re.sub(r"^\\approx\s*", "", gold)


def _full_compare(gold: str, pred: str) -> str:
    """Worker entry point: ``correct`` / ``wrong`` / ``unparseable`` for two answers."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    atoms = _SympyAtoms()
    g, p = _parse_node(_gold_form(normalize_answer(gold))), _parse_node(normalize_answer(pred))
    r = _cmp(g, p, atoms)
    if r:
        return "correct"
    return "unparseable" if atoms.unparseable else "wrong"


def _fast_compare(gold: str, pred: str) -> str | None:
    """In-process decision: ``correct`` / ``wrong``, or None when the worker must decide."""
    ng, np_ = _gold_form(normalize_answer(gold)), normalize_answer(pred)
    if not np_:
        return "wrong"
    if ng == np_:
        return "correct"
    g, p = _parse_node(ng), _parse_node(np_)
    r = _cmp(g, p, _fast_atom)
    if r is None:
        return None
    return "correct" if r else "wrong"


def compare_answers(gold: str, pred: str, *, timeout: float = 3.0) -> str:
    """``correct`` / ``wrong`` / ``unparseable`` / ``timeout`` / ``error`` for two extracted
    answers (gold first). Uses the shared default grader."""
    return _default_grader().compare(gold, pred, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# The grader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MathGraderConfig:
    """How :class:`MathGrader` runs.

    ``timeout``: seconds one sympy comparison may take in a worker before it is killed (verdict
    ``timeout``). ``workers``: worker processes for what the in-process fast path cannot decide
    (0: one per CPU, at most 4). ``cache_size``: remembered (gold, prediction) decisions (0: no
    cache). ``memory_mb``: address-space cap per worker (0: none).
    """

    timeout: float = 3.0
    workers: int = 0
    cache_size: int = 65_536
    memory_mb: int = 2048

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise ConfigError(f"MathGraderConfig.timeout must be > 0 seconds, got {self.timeout!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(
                f"MathGraderConfig.workers must be an integer >= 0, got {self.workers!r}"
            )
        if not isinstance(self.cache_size, int) or self.cache_size < 0:
            raise ConfigError(
                f"MathGraderConfig.cache_size must be an integer >= 0, got {self.cache_size!r}"
            )
        if not isinstance(self.memory_mb, int) or self.memory_mb < 0:
            raise ConfigError(
                f"MathGraderConfig.memory_mb must be an integer >= 0, got {self.memory_mb!r}"
            )


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(4, n))


class MathGrader:
    """Grades math responses against gold answers: fast path in-process, sympy in workers.

    >>> with MathGrader() as g:
    ...     g.grade("\\\\frac{1}{2}", "so $\\\\boxed{0.5}$").correct
    True

    Thread-safe. ``close()`` stops the workers (also done at interpreter exit).
    """

    def __init__(self, config: MathGraderConfig | None = None):
        self.config = config or MathGraderConfig()
        self._pool: Any = None
        self._cache: OrderedDict[tuple[str, str, float], str] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"fast": 0, "worker": 0, "cached": 0, "timeout": 0}

    # -- workers -----------------------------------------------------------------------------
    def _get_pool(self) -> Any:
        if self._pool is None:
            self._pool = WorkerPool(
                self.config.workers or _default_workers(),
                timeout=self.config.timeout,
                preload=("sympy", "math_verify", "reasonloop.verify.math"),
                init="reasonloop.verify.math:_warm_worker",
                memory_mb=self.config.memory_mb or None,
            )
            _LIVE.add(self)
        return self._pool

    def warm(self) -> None:
        """Start the worker processes now and wait until they are ready."""
        self._get_pool().start(wait_ready=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        _LIVE.discard(self)

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache -------------------------------------------------------------------------------
    def _cached(self, key: tuple[str, str, float]) -> str | None:
        with self._lock:
            r = self._cache.get(key)
            if r is not None:
                self._cache.move_to_end(key)
            return r

    def _store(self, key: tuple[str, str, float], reason: str) -> None:
        if self.config.cache_size <= 0:
            return
        with self._lock:
            self._cache[key] = reason
            self._cache.move_to_end(key)
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)

    # -- comparing answers -------------------------------------------------------------------
    def compare(self, gold: str, pred: str, *, timeout: float | None = None) -> str:
        """The reason for an already-extracted prediction: ``correct``, ``wrong``,
        ``unparseable``, ``timeout`` or ``error``. Never raises."""
        return self.compare_many([(gold, pred)], timeout=timeout)[0]

    def compare_many(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> list[str]:
        limit = self.config.timeout if timeout is None else float(timeout)
        out: list[str | None] = [None] * len(pairs)
        pending: dict[tuple[str, str, float], list[int]] = {}
        for i, (gold, pred) in enumerate(pairs):
            gold = gold if isinstance(gold, str) else ""
            pred = pred if isinstance(pred, str) else ""
            key = (gold, pred, limit)
            hit = self._cached(key)
            if hit is not None:
                out[i] = hit
                self.stats["cached"] += 1
                continue
            if key in pending:
                pending[key].append(i)
                continue
            try:
                fast = _fast_compare(gold, pred)
            except Exception:  # never let a normaliser bug become a raised error
                logger.debug("fast path failed on %r vs %r", gold, pred, exc_info=True)
                fast = None
            if fast is not None:
                self.stats["fast"] += 1
                out[i] = fast
                self._store(key, fast)
            else:
                pending[key] = [i]
        if pending:
            keys = list(pending)
            try:
                results = self._get_pool().map(_full_compare, [k[:2] for k in keys], timeout=limit)
            except Exception as exc:
                logger.warning("math grading workers failed: %s", exc)
                results = None
            for j, key in enumerate(keys):
                if results is None:
                    reason = "error"
                else:
                    res = results[j]
                    if res.ok and res.value in ("correct", "wrong", "unparseable"):
                        reason = res.value
                    elif res.timed_out:
                        reason = "timeout"
                        self.stats["timeout"] += 1
                    else:
                        reason = "error"
                        logger.debug("worker error on %r: %s", key[:2], res.error)
                self.stats["worker"] += 1
                if reason != "error":
                    self._store(key, reason)
                for i in pending[key]:
                    out[i] = reason
        return [r if r is not None else "error" for r in out]

    # -- grading responses -------------------------------------------------------------------
    def grade(self, gold: str, response: str, *, timeout: float | None = None) -> Verdict:
        """The verdict of one response against a gold answer. Never raises, never hangs."""
        return self.grade_many([(gold, response)], timeout=timeout)[0]

    def grade_many(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> list[Verdict]:
        """Verdicts for ``(gold, response)`` pairs, in input order; undecided pairs are
        compared in parallel worker processes."""
        verdicts: list[Verdict | None] = [None] * len(pairs)
        todo: list[int] = []
        extracted: list[str | None] = [None] * len(pairs)
        golds: list[str] = [""] * len(pairs)
        for i, pair in enumerate(pairs):
            try:
                gold, response = pair
            except (TypeError, ValueError):
                verdicts[i] = Verdict(False, None, "bad_gold")
                continue
            if isinstance(gold, int) and not isinstance(gold, bool):
                gold = str(gold)  # AMC/AIME answers read from JSON as numbers
            if not isinstance(gold, str) or not gold.strip():
                verdicts[i] = Verdict(False, None, "bad_gold")
                continue
            parsed = parse_response(response if isinstance(response, str) else "")
            if parsed.solution is None:
                verdicts[i] = Verdict(False, None, "thought_unfinished")
                continue
            try:
                pred = extract_from_solution(parsed.solution)
            except Exception:
                logger.debug("extraction failed", exc_info=True)
                pred = None
            if pred is None:
                verdicts[i] = Verdict(False, None, "no_answer")
                continue
            extracted[i], golds[i] = pred, gold
            todo.append(i)
        reasons = self.compare_many([(golds[i], extracted[i] or "") for i in todo], timeout=timeout)
        for i, reason in zip(todo, reasons, strict=True):
            verdicts[i] = Verdict(reason == "correct", extracted[i], reason)
        return [v if v is not None else Verdict(False, None, "error") for v in verdicts]


_LIVE: set[MathGrader] = set()
_DEFAULT: MathGrader | None = None
_DEFAULT_LOCK = threading.Lock()


def _default_grader() -> MathGrader:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MathGrader()
        return _DEFAULT


@atexit.register
def _close_all() -> None:
    for grader in list(_LIVE):
        with contextlib.suppress(Exception):
            grader.close()


def grade_math(gold: str, response: str, *, timeout: float = 3.0) -> Verdict:
    """Grade one math response against its gold answer (see the module docstring).

    Reasons: ``correct``, ``wrong``, ``no_answer``, ``thought_unfinished``, ``unparseable``,
    ``timeout`` (and ``bad_gold`` / ``error`` for an empty gold or a failed worker). Never
    raises, never hangs.
    """
    try:
        return _default_grader().grade(gold, response, timeout=timeout)
    except Exception:  # the contract is "never raises"
        logger.exception("grade_math failed")
        return Verdict(False, None, "error")


def answers_equal(a: str, b: str, *, timeout: float = 3.0) -> bool:
    """Whether two already-extracted answers are equivalent (``a`` is read as the reference).

    Used to group answers for majority voting; symmetric for everything but equations, where
    ``x=5`` vs ``5`` is equal both ways but a general equation never equals a bare value.
    """
    try:
        return compare_answers(a, b, timeout=timeout) == "correct"
    except Exception:
        logger.exception("answers_equal failed")
        return False
