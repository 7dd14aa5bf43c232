"""Exploration (STILL-2): sample each hard problem in batches until a rollout is correct or the
budget is spent, keeping every rollout — correct or not — in the store's global pool.

Per problem it records attempts, the first correct attempt, the empirical pass rate, and a
difficulty bucket: ``solved_at_once`` (the first batch had a correct rollout), ``solved_with_search``
(a later batch did) or ``unsolved``. Resumable like ``generate``: a batch's rollouts and the
problem's record are committed together, and a rerun continues after the last stored rollout.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine
from reasonloop.errors import ConfigError
from reasonloop.generate import (
    Inputs,
    Sampling,
    SamplingSettings,
    generator_for,
    held,
    load_inputs,
    sampling_of,
    to_trajectory,
)
from reasonloop.options import check_options, include, option
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import Problem
from reasonloop.store import open_store

BUCKETS = ("solved_at_once", "solved_with_search", "unsolved")


@dataclass(frozen=True, slots=True)
class ProblemExploration:
    problem_id: str
    attempts: int
    correct: int
    first_correct: int | None  # 1-based attempt number
    bucket: str

    @property
    def pass_rate(self) -> float:
        return self.correct / self.attempts if self.attempts else 0.0

    def as_dict(self) -> dict[str, object]:
        """The record less its problem id, with the pass rate (a row of the explore report)."""
        row = {
            k: v for k, v in dataclasses.asdict(self).items() if k not in ("problem_id", "bucket")
        }
        return {**row, "pass_rate": self.pass_rate, "bucket": self.bucket}  # the order stored


@dataclass
class ExploreSummary:
    results: list[ProblemExploration] = field(default_factory=list)
    new_rollouts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def buckets(self) -> Counter:
        return Counter(r.bucket for r in self.results)

    @property
    def solved(self) -> int:
        return sum(r.first_correct is not None for r in self.results)


@dataclass(frozen=True, slots=True, kw_only=True)
@include(Sampling, exclude=("n",), temperature=1.0)  # exploring wants diverse rollouts
@include(Inputs)
class ExploreConfig:
    """``reasonloop explore`` and a recipe's ``explore:`` section (which leaves the store, engine,
    stage and seed to the run)."""

    problems: str = option(cli="--problems", help="A benchmark name or a problems file.")
    max_rollouts: int = option(20, min=1, help="Budget of rollouts per problem.")
    batch: int = option(4, min=1, help="Rollouts drawn per problem at a time.")
    stage: str = option("explore", help="A tag that separates runs in the store.")

    def __post_init__(self) -> None:
        check_options(self)

    def sampling(self, **extra: object) -> SamplingSettings:
        return sampling_of(self, **extra)


def classify(
    correct_flags: Sequence[bool], batch: int, max_rollouts: int
) -> ProblemExploration | None:
    """The record of a problem from its rollouts' verdicts in order; None while unfinished (no
    correct rollout yet and budget left)."""
    first = next((i + 1 for i, c in enumerate(correct_flags) if c), None)
    n = len(correct_flags)
    if first is None and n < max_rollouts:
        return None
    if first is None:
        bucket = "unsolved"
    elif first <= batch:
        bucket = "solved_at_once"
    else:
        bucket = "solved_with_search"
    return ProblemExploration("", n, sum(correct_flags), first, bucket)


def explore(
    engine: Engine,
    problems: Sequence[Problem],
    store,
    s: SamplingSettings = SamplingSettings(temperature=1.0),
    *,
    max_rollouts: int = 20,
    batch: int = 4,
    stage: str = "explore",
    round: int = 0,
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExploreSummary:
    """Explore ``problems``; returns a record per problem (in input order)."""
    if batch < 1 or max_rollouts < 1:
        raise ConfigError(
            f"batch and max_rollouts must be >= 1, got {batch}, {max_rollouts}", field="batch"
        )
    t0 = time.perf_counter()
    gen = generator_for(engine, s, role="explore", round=round)
    store.add_problems(problems)
    flags: dict[str, list[bool]] = {p.id: [] for p in problems}
    for t in store.trajectories(stage=stage):
        if t.problem_id in flags and t.generator == gen:
            flags[t.problem_id].append(bool(t.verdict and t.verdict.correct))
    summary = ExploreSummary()
    records: dict[str, ProblemExploration] = {}
    active = []
    for p in problems:
        rec = classify(flags[p.id], batch, max_rollouts)
        if rec is None:
            active.append(p)
        else:
            records[p.id] = _named(rec, p.id)
    if on_progress:
        on_progress(len(records), 0)
    while active:
        chunk, active = active[:batch_problems], active[batch_problems:]
        requests = []
        for p in chunk:
            start = len(flags[p.id])
            k = min(batch, max_rollouts - start)
            requests.append(s.request(p, k, start))
        results = engine.generate(requests)
        for p, result in zip(chunk, results, strict=True):
            start = len(flags[p.id])
            trajs = [to_trajectory(p, sample, gen) for sample in result.samples]
            flags[p.id] += [bool(t.verdict and t.verdict.correct) for t in trajs]
            summary.new_tokens += sum(sample.tokens for sample in result.samples)
            rec = classify(flags[p.id], batch, max_rollouts)
            done = {p.id: _named(rec, p.id).as_dict()} if rec else {}
            added = store.add_trajectories(
                trajs, stage=stage, sample_indices=range(start, start + len(trajs)), done=done
            )
            summary.new_rollouts += added.inserted
            if rec:
                records[p.id] = _named(rec, p.id)
            else:
                active.append(p)  # another batch later
        if on_progress:
            on_progress(len(records), summary.new_tokens)
    summary.results = [records[p.id] for p in problems]
    summary.seconds = time.perf_counter() - t0
    return summary


def _named(rec: ProblemExploration, pid: str) -> ProblemExploration:
    return ProblemExploration(pid, rec.attempts, rec.correct, rec.first_correct, rec.bucket)


def run_explore(
    config: ExploreConfig,
    reporter: Reporter | None = None,
    *,
    engine: Engine | None = None,
    store=None,
    problems: Sequence[Problem] | None = None,
    system_prompt: bool = True,
    logprobs: bool = False,
    batch_problems: int = 4,
) -> ExploreSummary:
    """The ``explore`` stage. An orchestrator that holds the engine, store or problems already
    passes them (they are then neither opened nor closed here)."""

    reporter = reporter or LogReporter()
    probs = list(problems) if problems is not None else load_inputs(config, config.problems)
    with ExitStack() as stack:
        eng = held(stack, engine, lambda: load_engine(config.engine))
        st = held(stack, store, lambda: open_store(config.store))
        with reporter.task(config.stage, len(probs)) as update:
            return explore(
                eng,
                probs,
                st,
                config.sampling(system_prompt=system_prompt, logprobs=logprobs),
                max_rollouts=config.max_rollouts,
                batch=config.batch,
                stage=config.stage,
                batch_problems=batch_problems,
                on_progress=update,
            )
