"""Preference pairs chosen the STILL-2 way.

For each problem with at least one correct and one incorrect trajectory: the **chosen** response is
a correct trajectory with *high* perplexity under the current model (hard positives: what the model
does not yet find likely), the **rejected** one an incorrect trajectory with *low* perplexity (the
confident mistakes). ``pairs_per_problem`` > 1 pairs the next-highest with the next-lowest, never
reusing a trajectory. Trajectories without a perplexity are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from reasonloop.records import PreferencePair, Problem, Trajectory


def select_pairs(
    trajectories: Iterable[Trajectory],
    problems: Mapping[str, Problem],
    *,
    prompt: Callable[[Problem], str],
    pairs_per_problem: int = 1,
) -> list[PreferencePair]:
    """Build pairs per problem, in the order problems first appear."""
    by_problem: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        if t.verdict is not None and t.perplexity is not None and t.problem_id in problems:
            by_problem[t.problem_id].append(t)
    pairs: list[PreferencePair] = []
    for pid, ts in by_problem.items():
        good = sorted((t for t in ts if t.verdict.correct), key=lambda t: -t.perplexity)  # type: ignore[union-attr,operator]
        bad = sorted((t for t in ts if not t.verdict.correct), key=lambda t: t.perplexity)  # type: ignore[union-attr,arg-type]
        for chosen, rejected in list(zip(good, bad, strict=False))[:pairs_per_problem]:
            pairs.append(
                PreferencePair(
                    problem_id=pid,
                    prompt=prompt(problems[pid]),
                    chosen=chosen.text,
                    rejected=rejected.text,
                    chosen_id=chosen.id,
                    rejected_id=rejected.id,
                    chosen_perplexity=chosen.perplexity,
                    rejected_perplexity=rejected.perplexity,
                )
            )
    return pairs
