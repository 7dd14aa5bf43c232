"""Evaluate an engine on a benchmark: sample, grade, aggregate, write the report.

``greedy`` is the seeds' protocol (one sample at temperature 0: pass@1). ``sample`` draws k samples
per problem and reports mean accuracy, the unbiased pass@k and maj@k (majority vote over extracted
answers, equivalent answers voting together).

The test-time-compute strategies of :mod:`reasonloop.search` answer each problem once, spending
more tokens to do it: ``majority`` (self-consistency over k samples), ``weighted`` (the vote
weighted by a scorer), ``best-of-n`` (k samples, the top-scored one), ``beam`` (k beams over
reasoning steps, guided by a step scorer), ``mcts`` (k iterations of tree search) and
``reflection`` (rethink once after the first thought). Their report is the accuracy of the answer
chosen (``acc`` = ``pass@1``); ``mean_tokens`` is the tokens the strategy **spent** per problem
(every sample, expansion and rollout, prompts excluded). Scorers: ``confidence`` (default),
``logprob``/``prob`` (under the evaluated engine), ``oracle`` (reads the gold answer: an upper
bound, never a benchmark score), or trained reward models ``orm:PATH``, ``prm:PATH``,
``genrm:PATH``, ``genrm-cot:PATH``.

Every run writes ``OUT/spend.json``: tokens spent per problem (for ``sample``: all k samples).
Samples and chosen responses live in ``OUT/samples.db`` (a trajectory store; each search result
is committed with its spend as soon as its problem is done), so an interrupted eval resumes where
it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine, Sample
from reasonloop.errors import ConfigError
from reasonloop.evaluate.report import write_report
from reasonloop.evaluate.summary import Outcome, summarize
from reasonloop.generate import (
    Cluster,
    Executor,
    Inputs,
    Named,
    Sampling,
    SamplingSettings,
    executor_of,
    generate,
    generator_for,
    load_inputs,
    messages_for,
    sampling_of,
    to_trajectory,
)
from reasonloop.options import check_options, include, option
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import EvalResult, Generator, Problem, Trajectory
from reasonloop.search import make_scorer, make_strategy, strategy_names
from reasonloop.search.scorers import AGGREGATES
from reasonloop.search.steps import StepSpec
from reasonloop.store import open_store
from reasonloop.train.rmcontract import GENRM_FORMS, VOTES
from reasonloop.verify.answers import answer_equality

# the test-time-compute strategies, by the names search gives them (greedy is the plain one above)
SEARCH_STRATEGIES = tuple(name for name in strategy_names() if name != "greedy")
STRATEGIES = ("greedy", "sample", *SEARCH_STRATEGIES)
_SCORED = ("weighted", "best-of-n", "beam", "mcts")  # the strategies that use a scorer


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n",))  # k is the strategy's budget, not samples per problem
class EvalSettings:
    strategy: str = option(
        "greedy",
        choices=STRATEGIES,
        help="greedy | sample | majority | weighted | best-of-n | beam | mcts | reflection",
    )
    k: int = option(
        1,
        cli="-k",
        min=1,
        help="Samples (sample, majority, weighted, best-of-n), beams (beam), iterations (mcts).",
    )
    system_prompt: bool = option(
        True,
        negatable=True,
        help="Send the format's system prompt (off for a student trained without one).",
    )
    scorer: str | None = option(
        None,
        help="weighted | best-of-n | beam | mcts: confidence (default) | confidence+chosen | "
        "logprob | prob | oracle | orm:PATH | prm:PATH | genrm:PATH | genrm-cot:PATH | "
        "vstar:PATH | vstar-mean:PATH",
    )
    aggregate: str = option("min", choices=AGGREGATES, help="How a PRM's step scores combine.")
    genrm_form: str = option(
        "yes",
        choices=GENRM_FORMS,
        help="genrm / genrm-cot: yes (P(Yes), the paper's) | yes-no (P(Yes) / (P(Yes) + P(No))).",
    )
    verifications: int = option(
        VOTES, min=1, help="genrm-cot: verification rationales sampled per response, averaged."
    )
    options: tuple[tuple[str, Any], ...] = option(
        (), cli=None, help="More strategy options, e.g. (('expand', 2),)."
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.scorer is not None and self.strategy not in _SCORED:
            raise ConfigError(
                f"{self.strategy!r} uses no scorer (got scorer {self.scorer!r}); "
                f"scored strategies: {', '.join(_SCORED)}",
                field="strategy",
            )
        if self.options and self.strategy not in SEARCH_STRATEGIES:
            raise ConfigError(f"{self.strategy!r} takes no options", field="strategy")

    @property
    def searches(self) -> bool:
        return self.strategy in SEARCH_STRATEGIES

    def scorer_name(self) -> str | None:
        """The scorer the strategy uses (``confidence`` unless set; None when it uses none)."""
        if self.strategy not in _SCORED:
            return None
        return self.scorer or "confidence"

    def label(self) -> str:
        """A readable name of the strategy with its budget, scorer and options, e.g.
        ``best-of-n k=8 scorer=prm:runs/prm agg=min``."""
        if not self.searches:
            return self.strategy
        parts = [self.strategy]
        if self.strategy != "reflection":
            parts.append(f"k={self.k}")
        scorer = self.scorer_name()
        if scorer:
            parts.append(f"scorer={scorer}")
            if scorer.startswith("prm:"):
                parts.append(f"agg={self.aggregate}")
            if scorer.startswith(("genrm:", "genrm-cot:")):
                parts.append(f"form={self.genrm_form}")
            if scorer.startswith("genrm-cot:"):
                parts.append(f"votes={self.verifications}")
        parts += [f"{k}={v}" for k, v in self.options]
        return " ".join(parts)

    def sampling(self) -> SamplingSettings:
        s = sampling_of(self, n=self.k, system_prompt=self.system_prompt)
        greedy = self.strategy == "greedy"
        return dataclasses.replace(s, n=1, temperature=0.0, top_p=1.0) if greedy else s

    def strategy_options(self, scorer: Any = None) -> dict[str, Any]:
        """The keyword arguments of the :mod:`reasonloop.search` strategy (``scorer`` built)."""
        common: dict[str, Any] = {"max_tokens": self.max_tokens, "seed": self.seed}
        sampled = {**common, "temperature": self.temperature, "top_p": self.top_p}
        match self.strategy:
            case "majority":
                opts = {**sampled, "n": self.k}
            case "weighted" | "best-of-n":
                opts = {**sampled, "n": self.k, "scorer": scorer}
            case "beam":
                opts = {**sampled, "beam_width": self.k, "scorer": scorer}
            case "mcts":
                opts = {**sampled, "iterations": self.k, "reward": scorer}
            case _:  # reflection: greedy by default, like the seeds' protocol
                opts = dict(common)
        opts.update(dict(self.options))
        if "step_tokens" in opts:  # the size of one step / mini-step (beam, mcts)
            kind = opts.pop("step_kind", "step")
            opts["step"] = StepSpec(kind, int(opts.pop("step_tokens")))
        return opts


def make_eval_scorer(s: EvalSettings, engine: Engine) -> Any:
    """The scorer ``s`` names, built (reward models are loaded); None for unscored strategies."""
    name = s.scorer_name()
    if name is None:
        return None
    return make_scorer(
        name, engine, aggregate=s.aggregate, genrm_form=s.genrm_form, votes=s.verifications
    )


def search_generator(engine: Named, s: EvalSettings) -> Generator:
    """The provenance stored with each search result: the strategy's label is its role."""
    return generator_for(engine, s, role=f"eval {s.label()}")


def _plain(details: Any) -> dict[str, Any]:
    """The scalar facts of a search result's details (trees and beam texts are left out)."""
    return {
        k: v
        for k, v in dict(details or {}).items()
        if v is None or isinstance(v, bool | int | float | str)
    }


def search_problem(
    engine: Engine,
    problem: Problem,
    *,
    s: EvalSettings,
    gen: Generator,
    scorer: Any = None,
) -> tuple[Trajectory, dict[str, Any]]:
    """The search strategy of ``s`` on one problem with ``engine``: the chosen response graded,
    and the facts stored with it (its spend). ``scorer`` None: the one ``s`` names is built here
    with ``engine`` (where a Ray actor runs this, its own engine)."""
    if scorer is None:
        scorer = make_eval_scorer(s, engine)
    strategy = make_strategy(s.strategy, **s.strategy_options(scorer))
    result = strategy.run(problem, messages_for(problem, system_prompt=s.system_prompt), engine)
    chosen = next((c for c in result.candidates if c.text == result.response), None)
    length = chosen.tokens if chosen is not None else result.tokens
    finish = chosen.finish_reason if chosen is not None else "stop"
    traj = to_trajectory(problem, Sample(result.response, length, finish), gen)
    meta = {
        "strategy": s.label(),
        "tokens_spent": result.tokens,
        "prompt_tokens": result.prompt_tokens,
        "details": _plain(result.details),
    }
    return traj, meta


def loads_a_model(s: EvalSettings) -> bool:
    """Whether the scorer of ``s`` is a trained model read from a directory (``orm:PATH``, ...)."""
    return ":" in (s.scorer_name() or "")


def run_search(
    engine: Engine | None,
    problems: Sequence[Problem],
    store: Any,
    s: EvalSettings,
    *,
    scorer: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> Generator:
    """Run the search strategy on every problem not yet in ``store``; each result is committed
    with its spend as soon as it exists. Returns the generator its rows are stored under.
    ``executor`` (e.g. Ray's) runs the problems on its engines, each building the scorer
    ``s`` names (so it takes no built ``scorer``); this process alone writes the store."""
    if executor is not None and scorer is not None:
        raise TypeError("run_search: an executor's engines build their scorers; pass no scorer")
    if executor is None and engine is not None and scorer is None:
        scorer = make_eval_scorer(s, engine)  # built once here, not once per problem
    executor = executor_of(engine, executor, "run_search")
    gen = search_generator(executor, s)
    store.add_problems(problems)
    have = store.existing_keys("eval", gen, [p.id for p in problems])
    done = sum((p.id, 0) in have for p in problems)
    tokens = 0
    if on_progress:
        on_progress(done, 0)
    todo = [p for p in problems if (p.id, 0) not in have]
    one = functools.partial(search_problem, s=s, gen=gen, scorer=scorer)
    for _, (traj, meta) in executor.map(one, todo):
        store.add_trajectories([traj], stage="eval", sample_indices=[0], meta=meta)
        tokens += meta["tokens_spent"]
        done += 1
        if on_progress:
            on_progress(done, tokens)
    return gen


def evaluate(
    engine: Engine | None,
    benchmark: str,
    problems: Sequence[Problem],
    out_dir: Path,
    s: EvalSettings = EvalSettings(),
    *,
    batch_problems: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
    scorer: Any = None,
    executor: Executor | None = None,
) -> EvalResult:
    """Run (or resume) the evaluation and write metrics.json, spend.json, report.md and plots to
    ``out_dir``. ``scorer``: the scorer ``s.scorer`` names, already built (e.g. a reward model
    loaded once for several runs); the name stays its label in the store and the report.
    ``executor`` (e.g. Ray's): its engines sample and search (``engine`` unused, may be None;
    no built ``scorer``); the rows and the report are those of a run here."""
    named: Named = executor_of(engine, executor, "evaluate")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.id for p in problems}
    outcomes: dict[str, list[Outcome]] = {}
    spent: dict[str, list[int]] = {}
    with open_store(out_dir / "samples.db") as store:
        if s.searches:
            gen = run_search(
                engine,
                problems,
                store,
                s,
                scorer=scorer,
                on_progress=on_progress,
                executor=executor,
            )
            for st in store.stored(stage="eval"):
                t = st.trajectory
                if t.problem_id in wanted and t.generator == gen and st.sample_index == 0:
                    meta = st.meta or {}
                    spend = int(meta.get("tokens_spent", t.tokens))
                    correct = bool(t.verdict and t.verdict.correct)
                    outcomes[t.problem_id] = [Outcome(t.problem_id, t.extracted, correct, spend)]
                    spent[t.problem_id] = [spend, int(meta.get("prompt_tokens", 0))]
        else:
            sampling = s.sampling()
            generate(
                engine,
                problems,
                store,
                sampling,
                stage="eval",
                role="eval",
                batch_problems=batch_problems,
                on_progress=on_progress,
                executor=executor,
            )
            gen = generator_for(named, sampling, role="eval")
            for st in store.stored(stage="eval"):
                t = st.trajectory
                if t.problem_id in wanted and t.generator == gen and st.sample_index < sampling.n:
                    correct = bool(t.verdict and t.verdict.correct)
                    outcomes.setdefault(t.problem_id, []).append(
                        Outcome(t.problem_id, t.extracted, correct, t.tokens)
                    )
                    spent.setdefault(t.problem_id, [0, 0])[0] += t.tokens
    result = summarize(
        benchmark, named.model, s.label(), problems, outcomes, equal=answer_equality(problems)
    )
    write_report(out_dir, result, outcomes)
    n = len(spent)
    spend = {
        "strategy": s.label(),
        "problems": n,
        "tokens_per_problem": sum(v[0] for v in spent.values()) / n if n else None,
        "prompt_tokens_per_problem": (
            sum(v[1] for v in spent.values()) / n if n and s.searches else None
        ),
        "accuracy": result.metrics.get("acc"),
    }
    (out_dir / "spend.json").write_text(json.dumps(spend, indent=2) + "\n")
    return result


def parse_options(items: Sequence[str]) -> tuple[tuple[str, object], ...]:
    """``KEY=VALUE`` pairs (``--option``); values read as int, float, true/false, or text."""
    out = []
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"must look like KEY=VALUE, got {item!r}", field="option")
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out.append((key.strip().replace("-", "_"), value))
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
@include(EvalSettings, exclude=("options",))
@include(Inputs, exclude=("store",))
@include(Cluster)
class EvalConfig:
    """``reasonloop eval`` (a recipe's ``eval:`` section holds the same fields; the run fills in
    the output directory and the engine)."""

    benchmark: str = option(cli="--benchmark", help="A benchmark name or a problems file.")
    out: str = option(
        cli="--out",
        path=True,
        help="Output directory (metrics.json, spend.json, report.md, plots).",
    )
    extra_options: tuple[str, ...] = option(
        (),
        cli="--option",
        help="More strategy options, KEY=VALUE (e.g. expand=2, children=3, step_tokens=64).",
    )

    def __post_init__(self) -> None:
        check_options(self)
        settings = self.settings()  # the strategy's own checks, before anything runs
        if self.ray and loads_a_model(settings):
            raise ConfigError(
                f"{self.scorer!r} is a reward model, loaded in this process and not in the Ray "
                "actors: run this eval without --ray",
                field="scorer",
            )

    def settings(self) -> EvalSettings:
        names = [f.name for f in dataclasses.fields(EvalSettings) if f.name != "options"]
        return EvalSettings(
            **{n: getattr(self, n) for n in names}, options=parse_options(self.extra_options)
        )


def run_eval(
    config: EvalConfig, reporter: Reporter | None = None, executor: Executor | None = None
) -> EvalResult:
    """The ``eval`` stage: problems, engine, scorer (a reward model is loaded) and the strategy's
    options are all checked before the output directory and its store are created. With
    ``executor`` (e.g. Ray's) no engine is loaded here: its engines sample, search and score."""

    reporter = reporter or LogReporter()
    settings = config.settings()
    probs = load_inputs(config, config.benchmark)
    if executor is not None:
        if settings.searches:
            make_strategy(settings.strategy, **settings.strategy_options(None))
        with reporter.task("eval", len(probs)) as update:
            return evaluate(
                None,
                config.benchmark,
                probs,
                Path(config.out),
                settings,
                on_progress=update,
                executor=executor,
            )
    eng = load_engine(config.engine)
    try:
        scorer = make_eval_scorer(settings, eng)
        if settings.searches:
            make_strategy(settings.strategy, **settings.strategy_options(scorer))
        with reporter.task("eval", len(probs)) as update:
            return evaluate(
                eng,
                config.benchmark,
                probs,
                Path(config.out),
                settings,
                on_progress=update,
                scorer=scorer,
            )
    finally:
        eng.close()


def load_spend(out_dir: Path) -> dict[str, Any]:
    """The ``spend.json`` of an eval directory ({} when absent: an eval from before it existed)."""
    try:
        return json.loads((Path(out_dir) / "spend.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


__all__ = [
    "SEARCH_STRATEGIES",
    "STRATEGIES",
    "EvalConfig",
    "EvalSettings",
    "evaluate",
    "load_spend",
    "make_eval_scorer",
    "parse_options",
    "run_eval",
    "run_search",
    "search_generator",
    "search_problem",
]
