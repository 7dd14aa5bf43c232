"""Normalisation of a math answer's spelling (step 1 of :mod:`reasonloop.verify.math`): money, percent
and degree marks, spacing commands, thousands separators, trailing units and punctuation, plain-
text functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reasonloop.verify.textspan import brace_end

_MAX_ANSWER_LEN = 100_000  # longer answers are cut (normalisation and matching are linear)


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


# Greek letter names (structure reads them as variables, the evaluator as symbols)
_GREEK_TEXT = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Upsilon Phi "
    "Psi Omega"
)
_GREEK = _GREEK_TEXT.split()
