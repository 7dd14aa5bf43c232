"""The Marco-o1 token-confidence reward, as pure math over log-probs an engine returned.

For generated token ``i`` with log-prob ``l_i`` and the log-probs ``a_i1 >= ... >= a_ik`` of the
``k`` most likely tokens at that position (the engine's ``top_logprobs``, ``k = 5`` in Marco-o1;
more than ``k`` given: the ``k`` largest are kept), Marco-o1's confidence is the softmax of the
chosen token's log-prob over those ``k`` alternatives:

    c_i = exp(l_i) / sum_{j=1..k} exp(a_ij)                       (form "top-k", the default)

and the response's confidence is the mean of ``c_i`` over its tokens. ``c_i`` is in [0, 1]: 1 when
every other alternative is negligible, ``1/k`` when the top k are equally likely, and below
``exp(a_ik)/sum`` when a sampled token is outside the top k (it is then in no term of the sum).

Named variant, form ``"top-k+chosen"`` (what reasonloop computed before): the chosen token is added
to the sum as a ``k+1``-th term when it is not among the top ``k``. The chosen token counts as
among them when some ``a_ij`` lies within ``tol`` of ``l_i`` (engines report both from the same
distribution, so its own entry matches); that entry then stands for it, counted once. The two forms
agree whenever the chosen token is in the top ``k`` (always under greedy decoding); they differ
only for a sampled token outside it, which the variant scores slightly higher.

Positions with no alternatives at all are skipped (there is nothing to compare with); a response
with no scorable position has no confidence (``None``). What it does not do: ask an engine for
log-probs (:class:`reasonloop.search.scorers.TokenConfidence` does), or weight tokens unequally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

TOP_K = 5
TOLERANCE = 1e-5
FORMS = ("top-k", "top-k+chosen")  # the first is Marco-o1's and the default


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(x - m) for x in xs))


def token_confidence(
    logprob: float,
    alternatives: Sequence[float],
    *,
    k: int = TOP_K,
    tol: float = TOLERANCE,
    form: str = "top-k",
) -> float | None:
    """``c_i`` for one position (see the module docstring); None when ``alternatives`` is empty.
    ValueError for a ``form`` not in :data:`FORMS` (a caller's bug, not model output)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    top = sorted((float(a) for a in alternatives), reverse=True)[:k]
    if not top:
        return None
    if logprob == -math.inf:
        return 0.0
    if form == "top-k+chosen":
        nearest = min(range(len(top)), key=lambda j: abs(top[j] - logprob))
        if abs(top[nearest] - logprob) <= tol:
            top[nearest] = logprob
        else:
            top.append(logprob)
    # min(): with "top-k" a chosen token in the top k is its own term, so the ratio is at most 1
    # up to the engine's rounding of its two reports of one log-prob
    return min(1.0, math.exp(logprob - _logsumexp(top)))


def token_confidences(
    logprobs: Sequence[float],
    top_logprobs: Sequence[Sequence[float]],
    *,
    k: int = TOP_K,
    tol: float = TOLERANCE,
    form: str = "top-k",
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
        c = token_confidence(lp, alts, k=k, tol=tol, form=form)
        if c is not None:
            out.append(c)
    return tuple(out)


def mean_confidence(
    logprobs: Sequence[float], top_logprobs: Sequence[Sequence[float]], **options: Any
) -> float | None:
    """The mean of ``c_i`` over the scorable positions; None when there are none. ``options``:
    those of :func:`token_confidences` (``k``, ``tol``, ``form``)."""
    cs = token_confidences(logprobs, top_logprobs, **options)
    return sum(cs) / len(cs) if cs else None
