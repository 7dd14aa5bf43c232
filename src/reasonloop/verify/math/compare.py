"""Comparison of two answer structures (tri-state: True, False, None = undecided) and the in-process
decision :func:`_fast_compare` that settles a pair without sympy when it can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from reasonloop.verify.math.exact import _add, _div, _evaluate, _fast_atoms_equal, _squeeze
from reasonloop.verify.math.normalize import normalize_answer
from reasonloop.verify.math.structure import _PLAIN, _flat_text, _is_variable, _Node, _parse_node

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


def _gold_form(gold: str) -> str:
    """A gold answer that is itself approximate (``\\approx 8.24``) is read as its value; a
    prediction that says "approximately" is not an exact answer (see ``_approx_value``)."""
    return re.sub(r"^\\approx\s*", "", gold)


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
