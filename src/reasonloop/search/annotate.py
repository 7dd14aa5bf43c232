"""Math-Shepherd step labels: how often the policy still reaches the gold answer from each step.

For every stored trajectory, its steps are :func:`~reasonloop.search.steps.response_steps` of its
text (the thought's steps, then the solution's; the same split PRM training and PRM scoring use).
For step ``i`` the *prefix* is the response up to the end of step ``i`` plus the whitespace after
it (never the next marker: the model decides whether the thought ends there). The policy engine
samples ``m`` completions of that prefix; each ``prefix + completion`` is graded with the problem's
verifier (:func:`reasonloop.verify.grade`, as ``generate`` and ``explore`` grade), and the label
records ``n = m`` and ``n_correct`` — soft label ``n_correct / n``, hard label ``n_correct > 0``.

The last step of a *finished* trajectory (its text closes the solution, or the engine stopped on
its own) is not sampled: its prefix is the whole response, so it is labelled with the response's
own verdict (``n = 1``). A trajectory cut off by the token limit has its last step sampled like
the others.

Resumable: labels are stored in the store's ``step_labels`` table under a *labeller key*
(:func:`labeler_key`: engine, model, ``m`` and sampling settings), one transaction per trajectory;
a rerun with the same settings skips every labelled step. What it does not do: label code
responses step by step in any clever way (they are split like text), or deduplicate prefixes
shared by several trajectories.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reasonloop.engines.base import Engine, Request
from reasonloop.format import END_SOLUTION
from reasonloop.generate import (
    Cluster,
    Executor,
    Inputs,
    Named,
    Sampling,
    executor_of,
    generator_for,
    messages_for,
)
from reasonloop.options import check_options, include, option
from reasonloop.records import Problem, StepLabel, Trajectory
from reasonloop.search import render_prompt
from reasonloop.search.steps import response_steps
from reasonloop.store.db import settings_key
from reasonloop.verify import grade as verify_grade

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s*")


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n",))
class AnnotateSettings:
    """How step labels are made. ``m``: completions per step prefix; ``stage`` / ``solved_only`` /
    ``limit``: which stored trajectories (``solved_only``: only those of problems with at least one
    correct trajectory in the stage — where the policy never succeeds every label is 0, so on a
    hard benchmark this spends the sampling where labels can differ; ``limit``: the first N of
    those, oldest first); ``system_prompt``: whether the prompt the completions continue has the
    format's system prompt (as the trajectories were sampled)."""

    m: int = option(8, cli="-m", min=1, help="Completions sampled from each step prefix.")
    system_prompt: bool = option(
        True,
        negatable=True,
        help="Continue prefixes after the format's system prompt (as the trajectories were sampled).",
    )
    stage: str | None = option(None, help="Only trajectories of this stage.")
    solved_only: bool = option(
        False,
        help="Only trajectories of problems with a correct trajectory (elsewhere every label is 0).",
    )
    limit: int | None = option(None, min=0, help="Only the first N trajectories.")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True, slots=True, kw_only=True)
@include(AnnotateSettings)
@include(Inputs, exclude=("limit", "data_dir", "gpqa_password", "unsafe_code_exec"))
@include(Cluster)
class AnnotateConfig:
    """``reasonloop annotate-steps``: the labelling settings, the store and the engine."""

    def __post_init__(self) -> None:
        check_options(self)

    def settings(self) -> AnnotateSettings:
        names = [f.name for f in dataclasses.fields(AnnotateSettings)]
        return AnnotateSettings(**{n: getattr(self, n) for n in names})


@dataclass
class AnnotateSummary:
    trajectories: int = 0  # trajectories considered (after stage / solved_only / limit)
    labelled: int = 0  # steps labelled by this run
    skipped: int = 0  # steps already labelled (resumed)
    positive: int = 0  # of the steps labelled by this run, hard label True
    new_tokens: int = 0
    seconds: float = 0.0
    missing_problems: set[str] = field(default_factory=set)


def labeler_key(engine: Named, s: AnnotateSettings) -> str:
    """The key step labels are stored under: every setting that changes what a label means."""
    role = f"step-labels m={s.m}" + ("" if s.system_prompt else " no-system")
    return settings_key("step-labels", generator_for(engine, s, role=role))


def step_prefixes(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(steps, prefixes)``: the steps of ``text`` and, for each, the text up to the end of that
    step plus the whitespace after it. Steps that cannot be found in order in ``text`` (never for
    text that :func:`response_steps` split) end the lists."""
    steps = response_steps(text)
    found, prefixes = [], []
    pos = 0
    for step in steps:
        at = text.find(step, pos)
        if at < 0:
            break
        end = at + len(step)
        space = _SPACE.match(text, end)
        prefixes.append(text[: space.end() if space else end])
        found.append(step)
        pos = end
    return tuple(found), tuple(prefixes)


def finished(t: Trajectory) -> bool:
    """Whether the response ended on its own (its last step needs no completions)."""
    return END_SOLUTION in t.text or t.finish_reason in ("stop", None)


def label_trajectory(
    problem: Problem,
    t: Trajectory,
    engine: Engine,
    s: AnnotateSettings,
    *,
    skip: set[int] = frozenset(),  # type: ignore[assignment]
    grade: Callable[[Problem, str], bool] | None = None,
) -> tuple[list[StepLabel], int]:
    """The labels of ``t``'s steps not in ``skip``, and the tokens the engine generated. All
    prefixes of the trajectory go to the engine in one ``generate`` call."""
    if grade is None:

        def grade(p: Problem, response: str) -> bool:
            return verify_grade(p, response).correct

    steps, prefixes = step_prefixes(t.text)
    if not steps:
        return [], 0
    last = len(steps) - 1
    own: int | None = None  # the last step of a finished response: its own verdict
    if finished(t) and last not in skip:
        own = int(t.verdict.correct if t.verdict is not None else grade(problem, t.text))
    todo = [i for i in range(len(steps)) if i not in skip and not (i == last and own is not None)]
    tokens = 0
    counts: dict[int, int] = {}
    if todo:
        base = render_prompt(engine, messages_for(problem, system_prompt=s.system_prompt))
        requests = [
            Request(
                prompt=base + prefixes[i],
                n=s.m,
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.max_tokens,
                seed=s.seed,
            )
            for i in todo
        ]
        results = engine.generate(requests)
        for i, result in zip(todo, results, strict=True):
            tokens += result.completion_tokens
            counts[i] = sum(bool(grade(problem, prefixes[i] + x.text)) for x in result.samples)
    tid = t.id or ""
    labels = [StepLabel(problem.id, tid, i, steps[: i + 1], s.m, counts[i]) for i in sorted(counts)]
    if own is not None:
        labels.append(StepLabel(problem.id, tid, last, steps, 1, own))
    return labels, tokens


def label_unit(
    engine: Engine, unit: tuple[Problem, Trajectory, frozenset[int]], s: AnnotateSettings
) -> tuple[list[StepLabel], int]:
    """:func:`label_trajectory` of one ``(problem, trajectory, steps to skip)`` (an executor's
    unit of work)."""
    problem, t, skip = unit
    return label_trajectory(problem, t, engine, s, skip=set(skip))


def annotate_steps(
    engine: Engine | None,
    store,
    s: AnnotateSettings = AnnotateSettings(),
    *,
    on_progress: Callable[[int, int, int], None] | None = None,
    executor: Executor | None = None,
) -> AnnotateSummary:
    """Label the steps of the store's trajectories (see the module docstring); resumable.

    ``on_progress(trajectories_done, trajectories_total, new_tokens)`` is called after each
    trajectory. Trajectories whose problem is not in the store are skipped (logged once each).
    ``executor`` (e.g. Ray's) labels the trajectories on its engines (``engine`` unused, may be
    None); the labels are the same, and this process alone writes them."""
    t0 = time.perf_counter()
    executor = executor_of(engine, executor, "annotate_steps")
    key = labeler_key(executor, s)
    done: dict[str, set[int]] = {}
    for tid, i in store.labelled_steps(key):
        done.setdefault(tid, set()).add(i)
    trajs = [t for t in store.trajectories(stage=s.stage) if t.id]
    if s.solved_only:
        solved = {t.problem_id for t in trajs if t.verdict is not None and t.verdict.correct}
        trajs = [t for t in trajs if t.problem_id in solved]
    if s.limit is not None:
        trajs = trajs[: s.limit]
    summary = AnnotateSummary(trajectories=len(trajs))
    problems: dict[str, Problem | None] = {}
    units: list[tuple[Problem, Trajectory, frozenset[int]]] = []
    for t in trajs:
        if t.problem_id not in problems:
            problems[t.problem_id] = store.get_problem(t.problem_id)
        problem = problems[t.problem_id]
        if problem is None:
            if t.problem_id not in summary.missing_problems:
                log.warning("trajectory %s: problem %s is not in the store", t.id, t.problem_id)
            summary.missing_problems.add(t.problem_id)
        else:
            skip = frozenset(done.get(t.id or "", ()))
            summary.skipped += len(skip)
            units.append((problem, t, skip))
    n = len(trajs) - len(units)
    if on_progress and n:
        on_progress(n, len(trajs), 0)
    for _, (labels, tokens) in executor.map(functools.partial(label_unit, s=s), units):
        summary.new_tokens += tokens
        if labels:
            store.add_step_labels(labels, labeler=key)  # one transaction per trajectory
            summary.labelled += len(labels)
            summary.positive += sum(lab.hard for lab in labels)
        n += 1
        if on_progress:
            on_progress(n, len(trajs), summary.new_tokens)
    summary.seconds = time.perf_counter() - t0
    return summary


__all__ = [
    "AnnotateSettings",
    "AnnotateSummary",
    "annotate_steps",
    "finished",
    "label_trajectory",
    "label_unit",
    "labeler_key",
    "step_prefixes",
]
