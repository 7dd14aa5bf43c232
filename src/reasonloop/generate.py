"""Sample K responses per problem, grade them, and keep them in the store — resumably.

Every sample has a deterministic id (problem, stage, engine, model, sampling settings, sample index),
and the samples of a problem are committed in one transaction, so a run killed at any moment and
started again with the same arguments draws only what is missing: the store ends up with exactly the
rows of an uninterrupted run. Sample ``i`` of a problem is drawn with seed ``seed + i``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine, Request, Sample, user_messages
from reasonloop.format import SYSTEM_PROMPT, parse
from reasonloop.options import check_options, include, option
from reasonloop.problems import resolve_problems
from reasonloop.problems.prompt import prompt_for
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import Generator, Problem, Trajectory
from reasonloop.store import open_store
from reasonloop.verify import grade
from reasonloop.verify.sandbox import UNSAFE_ENV, allow_unsafe_exec, resolve_boundary

T = TypeVar("T")
U = TypeVar("U")
R = TypeVar("R")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sampling:
    """The sampling block: declared once here, included by every stage that samples (generate,
    explore, distill, eval, REL) with :func:`~reasonloop.options.include`.

    Defaults, one per option: ``max_tokens`` 2048 (room for a worked thought; the search strategies
    use the same), ``top_p`` 1.0 (sampling from the temperature alone, what the engines do when
    unset). ``temperature`` is the one default a stage may change: exploring wants 1.0, a teacher
    0.6 (R1's advice); the stage's config says so where it includes the block."""

    n: int = option(1, cli="-n", min=1, help="Samples per problem.")
    temperature: float = option(0.7, min=0, help="Sampling temperature (0: greedy).")
    top_p: float = option(1.0, above=0, max=1, help="Nucleus sampling: keep the top_p mass.")
    max_tokens: int = option(2048, min=1, help="Tokens per response at most.")
    seed: int = option(0, help="Sample i of a problem uses seed + i.")


@dataclass(frozen=True, slots=True)
@include(Sampling)
class SamplingSettings:
    """What :func:`generate` and :func:`reasonloop.explore.explore` draw with: the sampling block
    plus how the prompt is sent and whether log-probs come back (no flags: the stages set them)."""

    system_prompt: bool = option(True, cli=None, help="Send the format's system prompt.")
    logprobs: bool = option(False, cli=None, help="Keep each sample's token log-probs.")

    def __post_init__(self) -> None:
        check_options(self)

    def request(self, problem: Problem, n: int, first: int) -> Request:
        """``n`` samples of ``problem``'s prompt; sample ``first + i`` uses ``seed + first + i``."""
        return Request(
            messages=messages_for(problem, system_prompt=self.system_prompt),
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed + first,
            logprobs=self.logprobs,
        )


@dataclass(frozen=True, slots=True)
class Inputs:
    """Where a stage reads problems and writes, and what it may run: declared once, included by
    the stages' configs (each leaves out what it does not use)."""

    store: str = option(
        cli="--store", path=True, help="The trajectory store (SQLite; created if missing)."
    )
    engine: str = option(
        "default", help="default | llamacpp:PATH.gguf | hf:PATH | openai:URL#MODEL[,URL#MODEL]"
    )
    limit: int | None = option(None, min=0, help="Only the first N problems.")
    data_dir: str | None = option(
        None,
        path=True,
        envvar="REASONLOOP_DATA",
        help="Benchmark data directory (else the HF hub).",
    )
    gpqa_password: str | None = option(
        None, envvar="REASONLOOP_GPQA_PASSWORD", help="Password of GPQA's zip."
    )
    unsafe_code_exec: bool = option(
        False,
        envvar=UNSAFE_ENV,
        help="Where no OS sandbox (bubblewrap) can run, run model-written code unconfined instead "
        "of refusing. Only on a machine that is itself the boundary (a throwaway VM or container).",
    )


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where the sampling and grading run: here (the default), or on Ray (``--ray``; the Ray
    executor is :mod:`reasonloop.scale.ray`, an optional extra). Declared once, included by the
    stages that can run there."""

    ray: str | None = option(
        None,
        help="Run on Ray: 'local' (or --ray alone) starts a cluster on this machine for the run; "
        "'auto' joins the one RAY_ADDRESS names (or the one running here); HOST:PORT or "
        "ray://HOST:PORT joins that one. Needs Ray (reasonloop's 'ray' extra).",
    )
    ray_actors: int = option(2, min=1, help="Engine actors on Ray (one engine each).")
    ray_cpus: float = option(1.0, above=0, help="CPUs each Ray actor reserves.")


@dataclass(frozen=True, slots=True, kw_only=True)
@include(Sampling)
@include(Inputs)
@include(Cluster)
class GenerateConfig:
    """``reasonloop generate``: K samples per problem, graded, stored."""

    problems: str = option(cli="--problems", help="A benchmark name or a problems file.")
    stage: str = option("generate", help="A tag that separates runs in the store.")
    batch: int = option(4, min=1, help="Problems sampled together (one engine call).")

    def __post_init__(self) -> None:
        check_options(self)

    def sampling(self, **extra: object) -> SamplingSettings:
        return sampling_of(self, **extra)


def sampling_of(config: object, **extra: object) -> SamplingSettings:
    """The :class:`SamplingSettings` of a stage config that includes the sampling block (a block
    field it leaves out keeps the block's default); ``extra``: ``system_prompt``, ``logprobs``."""
    names = [f.name for f in dataclasses.fields(Sampling)]
    values = {n: getattr(config, n) for n in names if hasattr(config, n)}
    return SamplingSettings(**values, **extra)  # type: ignore[arg-type]


def code_boundary(domains: Iterable[str], unsafe: bool) -> None:
    """Before any work: refuse (ConfigError) when code must be graded and cannot be safely."""

    if unsafe:
        allow_unsafe_exec()
    if "code" in set(domains):
        resolve_boundary()


def held(stack: ExitStack, given: T | None, open_: Callable[[], T]) -> T:
    """What a stage runs on: ``given`` when its caller holds it already (an orchestrator's engine
    or store), else ``open_()``, closed when ``stack`` closes."""
    if given is not None:
        return given
    thing = open_()
    stack.callback(thing.close)  # type: ignore[attr-defined]
    return thing


def load_inputs(config: object, spec: str) -> list[Problem]:
    """The problems of ``spec`` under a config that includes :class:`Inputs`, the code boundary
    checked for them (before any store or output is created)."""

    probs = resolve_problems(
        spec,
        data_dir=getattr(config, "data_dir", None),
        limit=getattr(config, "limit", None),
        gpqa_password=getattr(config, "gpqa_password", None),
    )
    code_boundary((p.domain for p in probs), getattr(config, "unsafe_code_exec", False))
    return probs


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


class SampledWith(Protocol):
    """The sampling settings a :class:`Generator` records (any settings object that has them)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None


class Named(Protocol):
    """What names an engine in a :class:`Generator`: an engine, or an executor of one."""

    @property
    def spec(self) -> str: ...

    @property
    def model(self) -> str: ...


def generator_for(
    engine: Named, s: SampledWith, *, role: str = "sample", round: int = 0
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


def perplexity_scorer(
    engine: Engine | Callable[[], Engine], *, system_prompt: bool = True
) -> Callable[[Problem, Trajectory], float | None]:
    """``score(problem, trajectory)``: the perplexity of the trajectory's text after the problem's
    prompt under ``engine`` (or under the engine a zero-argument callable returns, fetched at each
    call, so that it is loaded only once a score is needed). Selection and DPO pairs use it for
    rows stored without one."""

    def score(problem: Problem, t: Trajectory) -> float | None:
        eng = engine() if callable(engine) and not hasattr(engine, "score") else engine
        return eng.score(messages_for(problem, system_prompt=system_prompt), t.text).perplexity  # type: ignore[union-attr]

    return score


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


@dataclass(frozen=True, slots=True)
class Chunk:
    """One engine call's worth of work: the problems of a batch, each with the runs
    ``(first, count)`` of its missing sample indices. ``index`` orders the chunks of a run."""

    index: int
    work: tuple[tuple[Problem, tuple[tuple[int, int], ...]], ...]


@dataclass(frozen=True, slots=True)
class Drawn:
    """A chunk drawn and graded: per problem, its trajectories and their sample indices (one
    store transaction each), and the tokens the engine generated."""

    index: int
    problems: int
    rows: tuple[tuple[tuple[Trajectory, ...], tuple[int, ...]], ...]
    tokens: int


Postprocess = Callable[[Engine, list[tuple[Problem, Sample]]], list[str]]


@dataclass(frozen=True, slots=True)
class DrawJob:
    """What every chunk of a run is drawn with (the same on the driver and on a worker).
    ``postprocess(engine, batch)``: the texts to store for a batch's raw samples, given the engine
    that drew them (picklable, e.g. a frozen dataclass, when the chunks are drawn on Ray)."""

    settings: SamplingSettings
    generator: Generator
    postprocess: Postprocess | None = None


def draw(engine: Engine, chunk: Chunk, job: DrawJob) -> Drawn:
    """Sample and grade one chunk (no store: the caller writes). Code is graded here, in this
    process's sandbox, so a worker that draws also grades."""
    s = job.settings
    requests, owners = [], []
    for p, runs in chunk.work:
        for first, count in runs:
            requests.append(s.request(p, count, first))
            owners.append((p, first))
    results = engine.generate(requests)
    drawn = [
        (p, first + k, sample)
        for (p, first), r in zip(owners, results, strict=True)
        for k, sample in enumerate(r.samples)
    ]
    tokens = sum(sample.tokens for _, _, sample in drawn)
    if job.postprocess is not None:
        texts = job.postprocess(engine, [(p, sample) for p, _, sample in drawn])
        drawn = [
            (p, i, replace(sample, text=text))
            for (p, i, sample), text in zip(drawn, texts, strict=True)
        ]
    by_problem: dict[str, tuple[list[Trajectory], list[int]]] = {}
    for p, i, sample in drawn:
        trajs, idxs = by_problem.setdefault(p.id, ([], []))
        trajs.append(to_trajectory(p, sample, job.generator))
        idxs.append(i)
    rows = tuple((tuple(t), tuple(i)) for t, i in by_problem.values())
    return Drawn(index=chunk.index, problems=len(chunk.work), rows=rows, tokens=tokens)


class Executor(Protocol):
    """Where the engine work of a stage runs: :class:`InProcess` (the engine of this process, in
    order) or :class:`reasonloop.scale.ray.RayExecutor` (engines in Ray actors; results in any
    order). ``spec`` and ``model`` name the engine, as the samples' :class:`Generator` records
    them. ``run`` draws the chunks of a sampling stage (``generate``, ``explore``, ``distill``,
    ``eval``'s samples); ``map`` is for work that is not a chunk (a search strategy on a problem,
    a trajectory's step labels): ``fn(engine, unit)`` for each unit, yielded as ``(index,
    result)``. Neither touches a store: the caller, the one writer, stores what comes back."""

    @property
    def spec(self) -> str: ...

    @property
    def model(self) -> str: ...

    def run(self, chunks: Sequence[Chunk], job: DrawJob) -> Iterable[Drawn]: ...

    def map(self, fn: Callable[[Engine, U], R], units: Sequence[U]) -> Iterable[tuple[int, R]]: ...


class InProcess:
    """The default executor: ``engine`` draws the chunks one after another, here."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def spec(self) -> str:
        return self.engine.spec

    @property
    def model(self) -> str:
        return self.engine.model

    def run(self, chunks: Sequence[Chunk], job: DrawJob) -> Iterator[Drawn]:
        for chunk in chunks:
            yield draw(self.engine, chunk, job)

    def map(self, fn: Callable[[Engine, U], R], units: Sequence[U]) -> Iterator[tuple[int, R]]:
        for i, unit in enumerate(units):
            yield i, fn(self.engine, unit)


def executor_of(engine: Engine | None, executor: Executor | None, what: str) -> Executor:
    """``executor``, else :class:`InProcess` on ``engine`` (a stage given neither is a bug)."""
    if executor is not None:
        return executor
    if engine is None:
        raise TypeError(f"{what}: pass an engine or an executor")
    return InProcess(engine)


def generate(
    engine: Engine | None,
    problems: Sequence[Problem],
    store,
    s: SamplingSettings = SamplingSettings(),
    *,
    stage: str = "generate",
    role: str = "sample",
    round: int = 0,
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
    postprocess: Postprocess | None = None,
    executor: Executor | None = None,
) -> GenerateSummary:
    """Draw what is missing of ``s.n`` samples per problem into ``store``.

    ``on_progress(problems_finished, new_tokens)`` is called after each committed batch.
    ``postprocess(engine, batch)`` maps a batch's raw samples to the texts to store (``distill``
    converts teacher styles there); the token counts stay those of the raw samples. ``executor`` draws the batches
    elsewhere (``engine`` is then unused and may be None); this process stays the only writer of
    the store, and a batch is the same batch wherever it is drawn, so the rows are the same.
    """
    t0 = time.perf_counter()
    executor = executor_of(engine, executor, "generate")
    gen = generator_for(executor, s, role=role, round=round)
    store.add_problems(problems)
    have = store.existing_keys(stage, gen, [p.id for p in problems])
    todo: list[tuple[Problem, tuple[tuple[int, int], ...]]] = []
    finished = 0
    for p in problems:
        missing = [i for i in range(s.n) if (p.id, i) not in have]
        if missing:
            todo.append((p, tuple(_runs(missing))))
        else:
            finished += 1
    summary = GenerateSummary(problems=len(problems))
    if on_progress:
        on_progress(finished, 0)
    size = max(1, batch_problems)
    chunks = [
        Chunk(index=k, work=tuple(todo[start : start + size]))
        for k, start in enumerate(range(0, len(todo), size))
    ]
    for drawn in executor.run(chunks, DrawJob(s, gen, postprocess)):
        summary.new_tokens += drawn.tokens
        for trajs, idxs in drawn.rows:
            # one transaction per problem: its samples exist entirely or not at all
            added = store.add_trajectories(trajs, stage=stage, sample_indices=idxs)
            summary.new_samples += added.inserted
        finished += drawn.problems
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


def run_generate(
    config: GenerateConfig, reporter: Reporter | None = None, executor: Executor | None = None
) -> GenerateSummary:
    """The ``generate`` stage: problems and the code boundary checked, the engine loaded, then the
    store opened (nothing is created before the inputs are known good) and filled. Resumable.
    With ``executor`` (e.g. Ray's) no engine is loaded here: the executor's engines draw."""

    reporter = reporter or LogReporter()
    probs = load_inputs(config, config.problems)
    with ExitStack() as stack:
        eng = None if executor else held(stack, None, lambda: load_engine(config.engine))
        st = held(stack, None, lambda: open_store(config.store))
        with reporter.task("generate", len(probs)) as update:
            return generate(
                eng,
                probs,
                st,
                config.sampling(),
                stage=config.stage,
                batch_problems=config.batch,
                on_progress=update,
                executor=executor,
            )
