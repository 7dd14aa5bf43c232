"""The structure of a normalised answer (step 2 of :mod:`reasonloop.verify.math`): lists and sets,
intervals and tuples, equations, labelled values, inequalities, ratios, bases, choice letters and
words, as a tree of nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reasonloop.verify.math.exact import _evaluate, _fast_atoms_equal, _mp, _Value
from reasonloop.verify.math.normalize import _GREEK, _HEDGE, _WRAP_CMDS, _strip_units, _unwrap_cmd
from reasonloop.verify.textspan import brace_end


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


def _units(s: str) -> Iterator[tuple[int, int, int]]:
    """``(start, end, depth change)`` of each unit of ``s``: a set brace ``\\{`` / ``\\}`` or a
    bracket opens (+1) or closes (-1) a group; a command (``\\cup``), an escaped character or any
    other character changes nothing. The one scanner of the helpers below."""
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            if s[i + 1] in "{}":
                yield i, i + 2, 1 if s[i + 1] == "{" else -1
                i += 2
                continue
            j = i + 1
            while j < n and s[j].isalpha():
                j += 1
            end = max(j, i + 2)
            yield i, end, 0
            i = end
            continue
        yield i, i + 1, 1 if c in _OPEN else -1 if c in _CLOSE else 0
        i += 1


def _split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` at occurrences of ``sep`` outside any bracket or brace group (a command
    separator such as ``\\cup`` only where the command ends: not inside ``\\cupcake``)."""
    parts: list[str] = []
    depth = start = skip = 0
    ls = len(sep)
    for i, _end, delta in _units(s):
        if i < skip:  # inside a separator just split at
            continue
        depth += delta
        if (
            delta == 0
            and depth == 0
            and s.startswith(sep, i)
            and not (sep[0] == "\\" and i + ls < len(s) and s[i + ls].isalpha())
        ):
            parts.append(s[start:i])
            start = skip = i + ls
    parts.append(s[start:])
    return parts


def _group_spans(s: str) -> bool:
    """True when the bracket opening at ``s[0]`` closes at the last character."""
    depth = 0
    for _start, end, delta in _units(s):
        depth += delta
        if delta < 0 and depth == 0:
            return end == len(s)
    return False


_REL = re.compile(r"\\le |\\ge |<|>|\\ne ")


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
