"""Accuracy metrics over sampled responses: pass@1, the unbiased pass@k estimator, maj@k.

All functions are pure. The vote itself is :func:`reasonloop.verify.answers.majority_vote`;
``answers_equal`` decides when two extracted answers count as the same vote
(the math grader's equivalence, so ``\\frac12`` and ``0.5`` vote together).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reasonloop.verify.answers import Equal, majority_vote


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n} c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k} n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_accuracy(correct: Sequence[bool]) -> float:
    return sum(correct) / len(correct) if correct else 0.0


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    k: int,
    *,
    equal: Equal | None = None,
) -> float:
    """maj@k over the first ``k`` samples: 1.0 if the majority answer is correct, else 0.0."""
    if k < 1 or k > len(answers):
        raise ValueError(f"need 1 <= k <= {len(answers)}, got k={k}")
    return float(majority_vote(answers[:k], correct[:k], equal=equal).correct)


def ks_for(n: int) -> list[int]:
    """The k values to report for ``n`` samples: powers of two up to n, and n itself."""
    ks = [1]
    while ks[-1] * 2 <= n:
        ks.append(ks[-1] * 2)
    if ks[-1] != n:
        ks.append(n)
    return ks


def stderr(p: float, n: int) -> float:
    """The binomial standard error of an accuracy ``p`` over ``n`` problems."""
    return math.sqrt(p * (1 - p) / n) if n else 0.0


__all__ = [
    "ks_for",
    "maj_at_k",
    "mean_accuracy",
    "pass_at_k",
    "stderr",
]
