"""Token masks for training: which completion tokens belong to the thought.

STILL-2 aligns preferences on the **thought** only: the DPO log-ratio sums over the chosen and
rejected responses' thought tokens (up to and including ``<|end_of_thought|>``), while the solution
tokens are left out of it. These are pure functions over token ids, with exact-tensor tests.
"""

from __future__ import annotations

from collections.abc import Sequence


def thought_mask(completion_ids: Sequence[int], end_thought_id: int) -> list[int]:
    """1 for each completion token up to and including the first ``end_thought_id``, 0 after.

    A completion whose thought never ends is all thought (all ones): there is no solution part to
    mask out.
    """
    ids = list(completion_ids)
    try:
        cut = ids.index(end_thought_id) + 1
    except ValueError:
        return [1] * len(ids)
    return [1] * cut + [0] * (len(ids) - cut)


def solution_mask(completion_ids: Sequence[int], end_thought_id: int) -> list[int]:
    """The complement of :func:`thought_mask` within the completion."""
    return [1 - m for m in thought_mask(completion_ids, end_thought_id)]


def prompt_and_completion_mask(prompt_len: int, completion_mask: Sequence[int]) -> list[int]:
    """A mask over ``prompt + completion`` that is zero on the prompt."""
    return [0] * prompt_len + list(completion_mask)
