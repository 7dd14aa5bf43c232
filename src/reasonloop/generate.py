"""Sample K responses per problem, grade them, and keep them in the store — resumably.

Every sample has a deterministic id (problem, stage, engine, model, sampling settings, sample index),
and the samples of a problem are committed in one transaction, so a run killed at any moment and
started again with the same arguments draws only what is missing: the store ends up with exactly the
rows of an uninterrupted run. Sample ``i`` of a problem is drawn with seed ``seed + i``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from reasonloop.engines.base import Engine, Request, Sample, user_messages
from reasonloop.format import SYSTEM_PROMPT, parse
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import Generator, Problem, Trajectory
from reasonloop.verify import grade

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int = 0
    system_prompt: bool = True
    logprobs: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass
class GenerateSummary:
    problems: int = 0
    samples: int = 0  # all samples of these problems and settings now in the store
    new_samples: int = 0
    correct: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


class Sampling(Protocol):
    """The sampling settings a :class:`Generator` records (any settings object that has them)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None


def generator_for(
    engine: Engine, s: Sampling, *, role: str = "sample", round: int = 0
) -> Generator:
    """The provenance of samples ``engine`` drew with the settings ``s``, in ``role``."""
    return Generator(
        engine=engine.spec,
        model=engine.model,
        round=round,
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        seed=s.seed,
        role=role,
    )


def messages_for(problem: Problem, *, system_prompt: bool = True):
    return user_messages(prompt_for(problem), SYSTEM_PROMPT if system_prompt else None)


def to_trajectory(problem: Problem, sample: Sample, generator: Generator) -> Trajectory:
    """Grade a sample and wrap it as a trajectory."""
    verdict = grade(problem, sample.text)
    parsed = parse(sample.text)
    lp = sample.mean_logprob
    return Trajectory(
        problem_id=problem.id,
        text=sample.text,
        thought=parsed.thought,
        solution=parsed.solution,
        extracted=verdict.extracted,
        verdict=verdict,
        tokens=sample.tokens,
        mean_logprob=lp,
        perplexity=None if lp is None else math.exp(-lp),
        finish_reason=sample.finish_reason,
        generator=generator,
    )


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(start, length)`` of sorted indices."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indices):
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def generate(
    engine: Engine,
    problems: Sequence[Problem],
    store,
    s: SamplingSettings = SamplingSettings(),
    *,
    stage: str = "generate",
    role: str = "sample",
    round: int = 0,
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
    postprocess: Callable[[list[tuple[Problem, Sample]]], list[str]] | None = None,
) -> GenerateSummary:
    """Draw what is missing of ``s.n`` samples per problem into ``store``.

    ``on_progress(problems_finished, new_tokens)`` is called after each committed batch.
    ``postprocess`` maps a batch's raw samples to the texts to store (``distill`` converts teacher
    styles there); the token counts stay those of the raw samples.
    """
    t0 = time.perf_counter()
    gen = generator_for(engine, s, role=role, round=round)
    store.add_problems(problems)
    have = store.existing_keys(stage, gen, [p.id for p in problems])
    todo: list[tuple[Problem, list[tuple[int, int]]]] = []
    finished = 0
    for p in problems:
        missing = [i for i in range(s.n) if (p.id, i) not in have]
        if missing:
            todo.append((p, _runs(missing)))
        else:
            finished += 1
    summary = GenerateSummary(problems=len(problems))
    if on_progress:
        on_progress(finished, 0)
    for start in range(0, len(todo), max(1, batch_problems)):
        chunk = todo[start : start + batch_problems]
        requests, owners = [], []
        for p, runs in chunk:
            for first, count in runs:
                requests.append(
                    Request(
                        messages=messages_for(p, system_prompt=s.system_prompt),
                        n=count,
                        temperature=s.temperature,
                        top_p=s.top_p,
                        max_tokens=s.max_tokens,
                        seed=s.seed + first,
                        logprobs=s.logprobs,
                    )
                )
                owners.append((p, first))
        results = engine.generate(requests)
        drawn = [
            (p, first + k, sample)
            for (p, first), r in zip(owners, results, strict=True)
            for k, sample in enumerate(r.samples)
        ]
        summary.new_tokens += sum(sample.tokens for _, _, sample in drawn)
        if postprocess is not None:
            texts = postprocess([(p, sample) for p, _, sample in drawn])
            drawn = [
                (p, i, replace(sample, text=text))
                for (p, i, sample), text in zip(drawn, texts, strict=True)
            ]
        by_problem: dict[str, tuple[list[Trajectory], list[int]]] = {}
        for p, i, sample in drawn:
            trajs, idxs = by_problem.setdefault(p.id, ([], []))
            trajs.append(to_trajectory(p, sample, gen))
            idxs.append(i)
        for trajs, idxs in by_problem.values():
            # one transaction per problem: its samples exist entirely or not at all
            added = store.add_trajectories(trajs, stage=stage, sample_indices=idxs)
            summary.new_samples += added.inserted
        finished += len(chunk)
        if on_progress:
            on_progress(finished, summary.new_tokens)
    summary.seconds = time.perf_counter() - t0
    wanted = {p.id for p in problems}
    for t in store.trajectories(stage=stage):
        if t.problem_id in wanted and t.generator == gen:
            summary.samples += 1
            summary.correct += bool(t.verdict and t.verdict.correct)
            reason = t.verdict.reason if t.verdict else "ungraded"
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
    return summary
