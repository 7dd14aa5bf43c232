"""Distillation: K long-form responses per problem from a teacher, brought into the unified format.

The teacher is any engine (in practice an OpenAI-compatible server running an R1- or QwQ-style
model). Its responses are converted before grading and storing:

- ``r1``: ``<think>…</think>`` then the answer → thought + solution;
- ``qwq``: all thinking, no separate solution → the thought is kept and a *completer* model, given
  the problem and the thought, writes the solution (STILL-2's recipe); with no completer the
  solution stays empty and the trajectory grades as ``no_answer``;
- ``unified``: already in the format; ``auto``: decide per response (markers, ``<think>`` tags,
  else QwQ).

Resumable like ``generate`` (the same store keys: stage ``distill`` and the teacher's settings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine, Request, Sample, user_messages
from reasonloop.errors import ConfigError
from reasonloop.format import BEGIN_THOUGHT, END_THOUGHT, parse, render, to_unified
from reasonloop.generate import (
    Cluster,
    Executor,
    GenerateSummary,
    Inputs,
    Sampling,
    SamplingSettings,
    generate,
    held,
    load_inputs,
    sampling_of,
)
from reasonloop.options import check_options, include, option
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import Problem
from reasonloop.store import open_store

STYLES = ("auto", "unified", "r1", "qwq")

COMPLETE_PROMPT = (
    "Below is a problem and a long line of thinking about it. Write only the final, clean solution "
    "that follows from the thinking: a short derivation ending with the final answer in \\boxed{{}} "
    "(or 'Answer: X' for a multiple-choice question).\n\nProblem:\n{problem}\n\nThinking:\n{thought}"
)


def detect_style(text: str) -> str:
    if BEGIN_THOUGHT in text or END_THOUGHT in text:
        return "unified"
    if "<think>" in text or "</think>" in text:
        return "r1"
    return "qwq"


def convert(
    batch: Sequence[tuple[Problem, Sample]],
    *,
    style: str = "auto",
    completer: Engine | None = None,
    max_tokens: int = 512,
) -> list[str]:
    """Unified-format texts for a batch of teacher samples (one completer call for the batch)."""
    if style not in STYLES:
        raise ConfigError(f"must be one of {', '.join(STYLES)}, got {style!r}", field="style")
    parsed = []
    for _, sample in batch:
        st = detect_style(sample.text) if style == "auto" else style
        parsed.append(to_unified(sample.text, "auto" if st == "unified" else st))
    need = [i for i, p in enumerate(parsed) if p.needs_solution and p.thought]
    solutions: dict[int, str] = {}
    if need and completer is not None:
        requests = [
            Request(
                messages=user_messages(
                    COMPLETE_PROMPT.format(problem=batch[i][0].problem, thought=parsed[i].thought)
                ),
                temperature=0.0,
                max_tokens=max_tokens,
            )
            for i in need
        ]
        for i, result in zip(need, completer.generate(requests), strict=True):
            solutions[i] = result.samples[0].text.strip()
    texts = []
    for i, ((_, sample), p) in enumerate(zip(batch, parsed, strict=True)):
        if not p.thought_closed:
            texts.append(sample.text)  # an unfinished thought stays as it is: it has no answer
        elif p.thought is None:
            texts.append(sample.text)  # plain text with no thought: nothing to convert
        else:
            texts.append(render(p.thought, solutions.get(i, p.solution or "")))
    return texts


@dataclass(frozen=True, slots=True)
class Converter:
    """The ``postprocess`` of a distillation (:func:`convert` of each drawn batch): the
    ``completer`` writes QwQ solutions, None meaning the engine that drew the batch (the teacher;
    on Ray, the actor's teacher). Picklable when ``completer`` is None."""

    style: str = "auto"
    completer: Engine | None = None

    def __call__(self, engine: Engine, batch: list[tuple[Problem, Sample]]) -> list[str]:
        completer = engine if self.completer is None else self.completer
        return convert(batch, style=self.style, completer=completer)


def distill(
    teacher: Engine | None,
    problems: Sequence[Problem],
    store,
    s: SamplingSettings = SamplingSettings(temperature=0.6),
    *,
    style: str = "auto",
    completer: Engine | None = None,
    stage: str = "distill",
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> GenerateSummary:
    """Sample, convert, grade and store K teacher responses per problem. ``completer`` None: the
    teacher completes. ``executor`` (e.g. Ray's) draws with its own teachers, which also complete:
    it takes no separate ``completer``."""
    if executor is not None and completer is not None:
        raise TypeError("distill: an executor's teachers complete; pass no completer with it")
    return generate(
        teacher,
        problems,
        store,
        s,
        stage=stage,
        role="teacher",
        batch_problems=batch_problems,
        on_progress=on_progress,
        postprocess=Converter(style, completer),
        executor=executor,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
@include(Sampling, n=4, temperature=0.6)  # K responses; 0.6: what R1-style teachers advise
@include(Inputs, exclude=("engine", "unsafe_code_exec"))
@include(Cluster)
class DistillConfig:
    """``reasonloop distill`` and, with the teacher's other fields, a recipe's ``teacher:``
    section."""

    problems: str = option(cli="--problems", help="A benchmark name or a problems file.")
    teacher: str = option(
        cli="--teacher",
        help="Engine spec of the teacher.",
    )
    style: str = option("auto", choices=STYLES, help="auto | unified | r1 | qwq")
    completer: str | None = option(
        None, help="Engine that writes QwQ solutions (default: the teacher)."
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.ray and self.completer and self.completer != self.teacher:
            raise ConfigError(
                f"{self.completer!r} with --ray: the Ray actors hold only the teacher "
                "and complete QwQ solutions with it; leave --completer unset, or run without --ray",
                field="completer",
            )

    def sampling(self, **extra: object) -> SamplingSettings:
        return sampling_of(self, **extra)


def run_distill(
    config: DistillConfig,
    reporter: Reporter | None = None,
    *,
    teacher: Engine | None = None,
    completer: Engine | None = None,
    store=None,
    problems: Sequence[Problem] | None = None,
    executor: Executor | None = None,
) -> GenerateSummary:
    """The ``distill`` stage (engines, store and problems opened here unless passed in). With
    ``executor`` (e.g. Ray's, built on ``config.teacher``) no engine is loaded here."""

    reporter = reporter or LogReporter()
    probs = list(problems) if problems is not None else load_inputs(config, config.problems)
    with ExitStack() as stack:
        if executor is None:
            teacher = held(stack, teacher, lambda: load_engine(config.teacher))
            if config.completer and config.completer != config.teacher:
                completer = held(stack, completer, lambda: load_engine(config.completer))  # type: ignore[arg-type]
        st = held(stack, store, lambda: open_store(config.store))
        with reporter.task("distill", len(probs)) as update:
            return distill(
                teacher,
                probs,
                st,
                config.sampling(),
                style=config.style,
                completer=completer,
                on_progress=update,
                executor=executor,
            )


__all__ = [
    "STYLES",
    "Converter",
    "DistillConfig",
    "convert",
    "detect_style",
    "distill",
    "parse",
    "run_distill",
]
