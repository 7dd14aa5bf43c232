"""The in-process evaluator (step 3 of :mod:`reasonloop.verify.math`): LaTeX arithmetic in exact
(Gaussian) rationals, or 50-digit floats that can only prove two answers different.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import zlib
from fractions import Fraction
from typing import Any

from reasonloop.verify.math.normalize import _GREEK

logger = logging.getLogger(__name__)


_MAX_FAST_LEN = 600  # longer answers skip the in-process evaluator
_MAX_BITS = 60_000  # exact numbers larger than this are left to sympy
_MAX_DEPTH = 60


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
