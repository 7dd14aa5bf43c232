"""The sympy side of :mod:`reasonloop.verify.math`: parsing with Math-Verify's LaTeX parser and
proving equality with sympy. Runs in a worker process of :mod:`reasonloop.verify.pool` under its
wall-time limit (never ``signal.alarm``); :func:`_full_compare` is the worker's entry point.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from reasonloop.verify.math.compare import _cmp, _fast_atom, _gold_form
from reasonloop.verify.math.normalize import normalize_answer
from reasonloop.verify.math.structure import _parse_node

logger = logging.getLogger(__name__)


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


def _full_compare(gold: str, pred: str) -> str:
    """Worker entry point: ``correct`` / ``wrong`` / ``unparseable`` for two answers."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    atoms = _SympyAtoms()
    g, p = _parse_node(_gold_form(normalize_answer(gold))), _parse_node(normalize_answer(pred))
    r = _cmp(g, p, atoms)
    if r:
        return "correct"
    return "unparseable" if atoms.unparseable else "wrong"
