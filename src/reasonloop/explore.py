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
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine
from reasonloop.errors import ConfigError
from reasonloop.generate import (
    Chunk,
    Cluster,
    DrawJob,
    Executor,
    Inputs,
    Sampling,
    SamplingSettings,
    executor_of,
    generator_for,
    held,
    load_inputs,
    sampling_of,
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
@include(Cluster)
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
    engine: Engine | None,
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
    executor: Executor | None = None,
) -> ExploreSummary:
    """Explore ``problems``; returns a record per problem (in input order).

    The unfinished problems wait in a queue: a chunk (one engine call) takes the first
    ``batch_problems`` of them and draws each one's next ``batch`` rollouts, and a problem still
    unsolved with budget left goes back to the end of the queue. Every full chunk the queue holds
    is drawn at once (on Ray, in parallel), a partial one only when nothing else is in flight: in
    one process, the very chunks of a chunk-by-chunk loop. ``executor`` draws elsewhere (Ray's:
    ``engine`` is then unused and may be None); a problem's rollouts are the same wherever they
    are drawn (its ``i``-th rollout has seed ``seed + i``), and this process alone writes the
    store."""
    if batch < 1 or max_rollouts < 1:
        raise ConfigError(
            f"batch and max_rollouts must be >= 1, got {batch}, {max_rollouts}", field="batch"
        )
    t0 = time.perf_counter()
    executor = executor_of(engine, executor, "explore")
    gen = generator_for(executor, s, role="explore", round=round)
    store.add_problems(problems)
    flags: dict[str, list[bool]] = {p.id: [] for p in problems}
    for t in store.trajectories(stage=stage):
        if t.problem_id in flags and t.generator == gen:
            flags[t.problem_id].append(bool(t.verdict and t.verdict.correct))
    summary = ExploreSummary()
    records: dict[str, ProblemExploration] = {}
    queue: deque[Problem] = deque()
    for p in problems:
        rec = classify(flags[p.id], batch, max_rollouts)
        if rec is None:
            queue.append(p)
        else:
            records[p.id] = _named(rec, p.id)
    if on_progress:
        on_progress(len(records), 0)
    job = DrawJob(s, gen)
    size = max(1, batch_problems)
    k = 0
    while queue:
        chunks = []
        while queue and (len(queue) >= size or not chunks):
            group = [queue.popleft() for _ in range(min(size, len(queue)))]
            work = tuple(
                (p, ((len(flags[p.id]), min(batch, max_rollouts - len(flags[p.id]))),))
                for p in group
            )
            chunks.append(Chunk(index=k, work=work))
            k += 1
        for drawn in executor.run(chunks, job):
            summary.new_tokens += drawn.tokens
            for trajs, idxs in drawn.rows:
                pid = trajs[0].problem_id
                flags[pid] += [bool(t.verdict and t.verdict.correct) for t in trajs]
                rec = classify(flags[pid], batch, max_rollouts)
                done = {pid: _named(rec, pid).as_dict()} if rec else {}
                # a batch's rollouts and, when it ends the problem, its record: one transaction
                added = store.add_trajectories(trajs, stage=stage, sample_indices=idxs, done=done)
                summary.new_rollouts += added.inserted
                if rec:
                    records[pid] = _named(rec, pid)
            # the chunk's unfinished problems go back to the queue (in the chunk's order)
            for p, _ in chunks[drawn.index - chunks[0].index].work:
                if p.id not in records:
                    queue.append(p)
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
    executor: Executor | None = None,
) -> ExploreSummary:
    """The ``explore`` stage. An orchestrator that holds the engine, store or problems already
    passes them (they are then neither opened nor closed here). With ``executor`` (e.g. Ray's) no
    engine is loaded here: the executor's engines draw."""

    reporter = reporter or LogReporter()
    probs = list(problems) if problems is not None else load_inputs(config, config.problems)
    with ExitStack() as stack:
        eng = None if executor else held(stack, engine, lambda: load_engine(config.engine))
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
                executor=executor,
            )
