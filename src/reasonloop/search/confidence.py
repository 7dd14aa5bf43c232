"""The Marco-o1 token-confidence reward, as pure math over log-probs an engine returned.

For generated token ``i`` with log-prob ``l_i`` and the log-probs ``a_i1 >= a_i2 >= ...`` of the
``k`` most likely tokens at that position (the engine's ``top_logprobs``; more than ``k`` given:
the ``k`` largest are kept), let ``S_i`` be those ``k`` values with the chosen token added when it
is not among them. The chosen token counts as among them when some ``a_ij`` lies within ``tol``
of ``l_i`` (engines report both from the same distribution, so the chosen token's own entry
matches); that entry then stands for the chosen token (its value is replaced by ``l_i``, so it is
counted once). Then

    c_i = exp(l_i) / sum_{s in S_i} exp(s)            (a softmax over S_i, computed stably)

and the response's confidence is the mean of ``c_i`` over its tokens. ``c_i`` is in (0, 1]:
1 when every alternative is negligible, ``1/k`` when the top k are equally likely.

Positions with no alternatives at all are skipped (there is nothing to compare with); a response
with no scorable position has no confidence (``None``). What it does not do: ask an engine for
log-probs (:class:`reasonloop.search.scorers.TokenConfidence` does), or weight tokens unequally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TOP_K = 5
TOLERANCE = 1e-5


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(x - m) for x in xs))


def token_confidence(
    logprob: float, alternatives: Sequence[float], *, k: int = TOP_K, tol: float = TOLERANCE
) -> float | None:
    """``c_i`` for one position (see the module docstring); None when ``alternatives`` is empty."""
    top = sorted((float(a) for a in alternatives), reverse=True)[:k]
    if not top:
        return None
    nearest = min(range(len(top)), key=lambda j: abs(top[j] - logprob))
    if abs(top[nearest] - logprob) <= tol:
        top[nearest] = logprob
    else:
        top.append(logprob)
    if logprob == -math.inf:
        return 0.0
    return math.exp(logprob - _logsumexp(top))


def token_confidences(
    logprobs: Sequence[float],
    top_logprobs: Sequence[Sequence[float]],
    *,
    k: int = TOP_K,
    tol: float = TOLERANCE,
) -> tuple[float, ...]:
    """``c_i`` for every position that has alternatives, in order.

    Raises ValueError when the two sequences differ in length (an engine bug, not model output).
    """
    if len(logprobs) != len(top_logprobs):
        raise ValueError(
            f"logprobs has {len(logprobs)} positions but top_logprobs has {len(top_logprobs)}"
        )
    out = []
    for lp, alts in zip(logprobs, top_logprobs, strict=True):
        c = token_confidence(lp, alts, k=k, tol=tol)
        if c is not None:
            out.append(c)
    return tuple(out)


def mean_confidence(
    logprobs: Sequence[float],
    top_logprobs: Sequence[Sequence[float]],
    *,
    k: int = TOP_K,
    tol: float = TOLERANCE,
) -> float | None:
    """The mean of ``c_i`` over the scorable positions; None when there are none."""
    cs = token_confidences(logprobs, top_logprobs, k=k, tol=tol)
    return sum(cs) / len(cs) if cs else None
