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

Where each step lives: :mod:`~reasonloop.verify.math.normalize` (1),
:mod:`~reasonloop.verify.math.structure` (2), :mod:`~reasonloop.verify.math.exact` and
:mod:`~reasonloop.verify.math.compare` (3), :mod:`~reasonloop.verify.math.sympy_worker` (4), and
:mod:`~reasonloop.verify.math.grader` (the grader that runs them, its worker pool and cache).
"""

from __future__ import annotations

from reasonloop.verify.math.grader import (
    MathGrader,
    MathGraderConfig,
    answers_equal,
    compare_answers,
    grade_math,
)
from reasonloop.verify.math.normalize import normalize_answer

__all__ = [
    "MathGrader",
    "MathGraderConfig",
    "answers_equal",
    "compare_answers",
    "grade_math",
    "normalize_answer",
]
