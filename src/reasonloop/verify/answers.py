"""Comparing extracted answers: when two answers are the same vote, and the majority vote.

Pure functions over answers already extracted (no grading here): ``answer_equality`` picks the
equivalence for a set of problems (math equivalence for math, string equality otherwise) and
``majority_vote`` groups equivalent answers and picks the biggest group. Both the evaluator's maj@k
and the search strategies' votes use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reasonloop.records import Problem
from reasonloop.verify.math import answers_equal

Equal = Callable[[str, str], bool]


def answer_equality(problems: Sequence[Problem]) -> Equal:
    """How two extracted answers are compared for voting: math equivalence for math problems,
    string equality otherwise (choice letters, Countdown expressions)."""
    if any(p.domain == "math" for p in problems):
        return answers_equal
    return lambda a, b: a == b


@dataclass(frozen=True, slots=True)
class Vote:
    """The outcome of a majority vote: the winning answer, its votes, whether it is correct."""

    answer: str | None
    votes: int
    total: int
    correct: bool


def majority_vote(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    *,
    equal: Equal | None = None,
    weights: Sequence[float] | None = None,
) -> Vote:
    """Group equivalent answers (``None`` never votes), pick the group with the most (weighted)
    votes; ties go to the group whose first member came first. The group is correct when its
    members were graded correct (they are equivalent, so they share a verdict; we take the first).
    """
    if len(answers) != len(correct):
        raise ValueError("answers and correct must have the same length")
    w = list(weights) if weights is not None else [1.0] * len(answers)
    eq = equal or (lambda a, b: a == b)
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if answers[g[0]] == a or eq(answers[g[0]], a):  # type: ignore[arg-type]
                g.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return Vote(None, 0, len(answers), False)
    best = max(groups, key=lambda g: (sum(w[i] for i in g), -g[0]))
    return Vote(answers[best[0]], len(best), len(answers), bool(correct[best[0]]))


__all__ = ["Equal", "Vote", "answer_equality", "majority_vote"]
