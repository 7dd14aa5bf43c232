"""Evaluate an engine on a benchmark: sample, grade, aggregate, write the report.

``greedy`` is the seeds' protocol (one sample at temperature 0: pass@1). ``sample`` draws k samples
per problem and reports mean accuracy, the unbiased pass@k and maj@k (majority vote over extracted
answers, equivalent answers voting together). Samples live in ``OUT/samples.db`` (a trajectory
store), so an interrupted eval resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonloop.engines.base import Engine
from reasonloop.evaluate.report import write_report
from reasonloop.evaluate.summary import Outcome, summarize
from reasonloop.generate import SamplingSettings, generate, generator_for
from reasonloop.records import EvalResult, Problem


@dataclass(frozen=True, slots=True)
class EvalSettings:
    strategy: str = "greedy"  # greedy | sample
    k: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 0
    system_prompt: bool = True  # False for a student trained without one (the CPU demo's)

    def __post_init__(self) -> None:
        if self.strategy not in ("greedy", "sample"):
            raise ValueError(f"strategy must be 'greedy' or 'sample', got {self.strategy!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def sampling(self) -> SamplingSettings:
        if self.strategy == "greedy":
            return SamplingSettings(
                n=1,
                temperature=0.0,
                top_p=1.0,
                max_tokens=self.max_tokens,
                seed=self.seed,
                system_prompt=self.system_prompt,
            )
        return SamplingSettings(
            n=self.k,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            system_prompt=self.system_prompt,
        )


def answer_equality(problems: Sequence[Problem]) -> Callable[[str, str], bool]:
    """How two extracted answers are compared for voting: math equivalence for math problems,
    string equality otherwise (choice letters, Countdown expressions)."""
    if any(p.domain == "math" for p in problems):
        from reasonloop.verify.math import answers_equal

        return answers_equal
    return lambda a, b: a == b


def evaluate(
    engine: Engine,
    benchmark: str,
    problems: Sequence[Problem],
    out_dir: Path,
    s: EvalSettings = EvalSettings(),
    *,
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Run (or resume) the evaluation and write metrics.json, report.md and plots to ``out_dir``."""
    from reasonloop.store import open_store

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sampling = s.sampling()
    with open_store(out_dir / "samples.db") as store:
        generate(
            engine,
            problems,
            store,
            sampling,
            stage="eval",
            role="eval",
            batch_problems=batch_problems,
            on_progress=on_progress,
        )
        gen = generator_for(engine, sampling, role="eval")
        outcomes: dict[str, list[Outcome]] = {}
        wanted = {p.id for p in problems}
        for st in store.stored(stage="eval"):
            t = st.trajectory
            if t.problem_id in wanted and t.generator == gen and st.sample_index < sampling.n:
                outcomes.setdefault(t.problem_id, []).append(
                    Outcome(
                        t.problem_id, t.extracted, bool(t.verdict and t.verdict.correct), t.tokens
                    )
                )
    result = summarize(
        benchmark, engine.model, s.strategy, problems, outcomes, equal=answer_equality(problems)
    )
    write_report(out_dir, result, outcomes)
    return result
