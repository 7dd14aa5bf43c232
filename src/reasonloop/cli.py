"""The ``reasonloop`` command line: each command loads its inputs, calls the library, prints a summary.

Exit codes: 0 ok, 1 the run failed, 2 bad input (a malformed file, a wrong flag or config).
Errors print as one line; ``--debug`` shows the traceback.

The options of ``generate``, ``explore``, ``eval``, ``distill``, ``rel`` and ``train *`` are not
declared here: :func:`config_command` derives them from the fields of each stage's config
dataclass (see :mod:`reasonloop.options`), so a flag, its help and its default exist once.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from reasonloop import terminal
from reasonloop.curate.behaviours import BEHAVIOUR_KEYS, behaviour_groups
from reasonloop.curate.run import CurateConfig, load_recipe, run_curate
from reasonloop.demo.run import DemoConfig
from reasonloop.distill import DistillConfig, run_distill
from reasonloop.engines import load_engine
from reasonloop.engines.convert import gguf_to_hf
from reasonloop.engines.export import export_gguf
from reasonloop.errors import ConfigError, DataError, ReasonloopError
from reasonloop.evaluate.report import compare_table, load_result
from reasonloop.evaluate.run import EvalConfig, load_spend, run_eval
from reasonloop.explore import BUCKETS, ExploreConfig, run_explore
from reasonloop.generate import Cluster, GenerateConfig, Inputs, code_boundary, run_generate
from reasonloop.options import cli_fields, default_of, flags
from reasonloop.problems import BENCHMARKS, benchmark, prompt_for, resolve_problems
from reasonloop.recipe.cli import run_cmd
from reasonloop.recipe.config import DemoRecipe
from reasonloop.recipe.runner import run_recipe
from reasonloop.rel.loop import RELRunConfig, run_rel_stage
from reasonloop.scale.ray import grade_on_ray, ray_executor
from reasonloop.search.annotate import AnnotateConfig, annotate_steps, labeler_key
from reasonloop.store import open_store
from reasonloop.store.export import export_jsonl, export_parquet, to_hf_dataset
from reasonloop.terminal import console, log_to, out
from reasonloop.train.dpo import DPOSettings, train_dpo
from reasonloop.train.grpo import GRPOSettings, train_grpo
from reasonloop.train.rm import RMSettings, train_rm
from reasonloop.train.sft import LoraSettings, SFTSettings, train_sft
from reasonloop.train.vstar import VStarSettings, train_vstar
from reasonloop.verify.batch import grade_file
from reasonloop.view import serve

app = typer.Typer(
    name="reasonloop",
    help="Build slow-thinking reasoning models: distil, imitate, explore, self-improve, measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_STATE = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Also show library warnings, their progress bars and every logged training metric "
        "(by default they go only to the command's log file).",
    ),
) -> None:
    _STATE["debug"] = debug
    terminal.setup(verbose=verbose, debug=debug)


def _log_beside(path: Path) -> Path:
    """The log file of a command whose output is the file ``path``: ``pool.db`` → ``pool.log``."""
    return log_to(path.with_suffix(".log"))


# -- options derived from the stages' config fields ------------------------------------------------


def _typer_param(f, spec, tp) -> list[inspect.Parameter]:
    """The Typer parameter(s) of one declared option (``--lora`` adds ``--lora-r``)."""
    names = flags(f, spec)
    default = ... if spec.required else default_of(f)
    kw = inspect.Parameter.KEYWORD_ONLY
    if spec.lora:
        rank = typer.Option(LoraSettings().r, f"{names[0]}-r", help="LoRA rank (alpha = 2 x rank).")
        return [
            inspect.Parameter(
                f.name, kw, default=typer.Option(False, names[0], help=spec.help), annotation=bool
            ),
            inspect.Parameter(f"{f.name}_r", kw, default=rank, annotation=int),
        ]
    if tp is bool and spec.negatable:
        names = (f"{names[0]}/--no-{names[0].removeprefix('--')}",)
    optional = type(None) in typing.get_args(tp)
    if spec.path:
        tp = Path | None if optional else Path
    elif typing.get_origin(tp) is tuple:
        tp, default = list[typing.get_args(tp)[0]], list(default)
    opt = typer.Option(default, *names, help=spec.help, envvar=spec.envvar, show_default=True)
    return [inspect.Parameter(f.name, kw, default=opt, annotation=tp)]


def cli_option(cls: type, name: str):
    """The Typer option of the field ``name`` of ``cls`` (for a command not built from a config)."""
    hints = typing.get_type_hints(cls)
    for f, spec in cli_fields(cls):
        if f.name == name:
            return _typer_param(f, spec, hints[name])[0].default
    raise KeyError(name)


def config_command(group: typer.Typer, name: str, cls: type, *, exclude=(), fixed=None):
    """Register ``fn(config)`` as the command ``name`` whose options are ``cls``'s option fields
    (less ``exclude``); the parsed values (and ``fixed``) make the config."""
    hints = typing.get_type_hints(cls)
    params: list[inspect.Parameter] = []
    for f, spec in cli_fields(cls):
        if f.name not in exclude:
            params += _typer_param(f, spec, hints[f.name])
    lora = [f.name for f, spec in cli_fields(cls) if spec.lora and f.name not in exclude]
    paths = {f.name for f, spec in cli_fields(cls) if spec.path}

    def decorate(fn):
        @functools.wraps(fn)
        def command(**values):
            for key in lora:
                rank = values.pop(f"{key}_r")
                values[key] = LoraSettings(r=rank, alpha=2 * rank) if values[key] else None
            for key, value in values.items():
                if key in paths and value is not None:
                    values[key] = str(value)
                elif isinstance(value, list):
                    values[key] = tuple(value)
            return fn(cls(**(fixed or {}), **values))

        del command.__wrapped__  # Typer reads the signature below, not fn's
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        group.command(name)(command)
        return fn

    return decorate


def _print_row(title: str, **columns: object) -> None:
    """A one-row summary table of a command: one right-aligned column per keyword, in order."""
    table = Table(title=plain(title))
    for name in columns:
        table.add_column(name, justify="right")
    table.add_row(*(str(v) for v in columns.values()))
    out.print(table)


UNSAFE_CODE_EXEC = cli_option(Inputs, "unsafe_code_exec")
DATA_DIR = cli_option(Inputs, "data_dir")
GPQA_PASSWORD = cli_option(Inputs, "gpqa_password")
ENGINE = cli_option(Inputs, "engine")
STORE = cli_option(Inputs, "store")


@app.command()
def grade(
    input: Path = typer.Argument(
        ..., help="JSONL: id, domain, answer, response, choices?, tests?, entry_point?"
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Where to write the verdicts (JSONL; not the input file, not a directory).",
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Parallel grading workers (0 = all cores)."
    ),
    unsafe_code_exec: bool = UNSAFE_CODE_EXEC,
    ray: str | None = cli_option(Cluster, "ray"),
    ray_actors: int = cli_option(Cluster, "ray_actors"),
) -> None:
    """Grade model responses against gold answers (math, multiple choice, code)."""
    code_boundary((), unsafe_code_exec)  # grade_many checks the boundary once it sees code
    grader = None
    if ray:
        grader = functools.partial(
            grade_on_ray, address=ray, actors=ray_actors, unsafe_code_exec=unsafe_code_exec
        )
    summary = grade_file(input, output, workers=workers or None, grader=grader)
    table = Table(title=plain(f"graded {input}"))
    for col in ("domain", "lines", "correct", "accuracy"):
        table.add_column(col, justify="right" if col != "domain" else "left")
    for domain, (n, k) in sorted(summary.by_domain.items()):
        table.add_row(plain(domain), str(n), str(k), f"{100 * k / n:.1f}%" if n else "-")
    table.add_row(
        "all", str(summary.graded), str(summary.correct), f"{100 * summary.accuracy:.1f}%"
    )
    out.print(table)
    if summary.reasons:
        reasons = ", ".join(f"{r}={c}" for r, c in sorted(summary.reasons.items()))
        out.print(plain(f"reasons: {reasons}"), soft_wrap=True)
    for err in summary.errors:
        console.print(labelled("skipped", "red", err), soft_wrap=True)
    out.print(plain(f"wrote {summary.graded} verdicts to {output}"), soft_wrap=True)
    if summary.errors:
        console.print(f"{len(summary.errors)} malformed line(s) skipped")
        raise typer.Exit(2)


problems_app = typer.Typer(help="List and inspect problem sets.", no_args_is_help=True)
app.add_typer(problems_app, name="problems")


@problems_app.command("list")
def problems_list() -> None:
    """The benchmarks reasonloop knows by name."""
    table = Table(title="benchmarks")
    for col in ("name", "domain", "rows", "description", "hub"):
        table.add_column(col)
    for name in BENCHMARKS:
        b = benchmark(name)
        table.add_row(b.name, b.domain, str(b.rows), b.description, b.hub)
    out.print(table)


@problems_app.command("show")
def problems_show(
    spec: str = typer.Argument(..., help="A benchmark name or a JSONL/parquet/dataset path."),
    limit: int = typer.Option(3, "--limit", min=0, help="How many problems to print."),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
) -> None:
    """Print the first problems of a set, as the models will see them."""
    problems = resolve_problems(spec, data_dir=data_dir, gpqa_password=gpqa_password)
    for p in problems[:limit]:
        out.rule(plain(f"{p.id}  [{p.domain}]  answer: {p.answer[:60]}"))
        out.print(plain(prompt_for(p)))
    out.print(plain(f"{len(problems)} problems in {spec}"), soft_wrap=True)


@config_command(app, "generate", GenerateConfig)
def generate(config: GenerateConfig) -> None:
    """Sample K responses per problem, grade them, store them. Resumable: rerun to finish."""
    _log_beside(Path(config.store))
    with ray_executor(config) as executor:
        summary = run_generate(config, terminal.RichReporter(), executor)
    _print_row(
        f"generate → {config.store}",
        problems=summary.problems,
        samples=summary.samples,
        new=summary.new_samples,
        accuracy=f"{100 * summary.accuracy:.1f}%",
        **{"tokens/s": f"{summary.tokens_per_s:.1f}"},
    )


@config_command(app, "explore", ExploreConfig)
def explore(config: ExploreConfig) -> None:
    """Sample each problem until a rollout is correct or the budget is spent; keep every rollout."""
    _log_beside(Path(config.store))
    with ray_executor(config) as executor:
        summary = run_explore(config, terminal.RichReporter(), executor=executor)
    b = summary.buckets
    rate = summary.new_tokens / summary.seconds if summary.seconds else 0.0
    _print_row(
        f"explore → {config.store}",
        problems=len(summary.results),
        solved=summary.solved,
        **{
            name: b.get(k, 0)
            for name, k in zip(("at once", "with search", "unsolved"), BUCKETS, strict=True)
        },
        rollouts=sum(r.attempts for r in summary.results),
        new=summary.new_rollouts,
        **{"tok/s": f"{rate:.1f}"},
    )


@config_command(app, "eval", EvalConfig)
def eval_(config: EvalConfig) -> None:
    """Evaluate: greedy pass@1, k samples (pass@k, maj@k), or a test-time search strategy;
    reports accuracy and tokens spent per problem. Resumable."""
    out_dir = Path(config.out)
    log_to(out_dir / "eval.log")
    with ray_executor(config) as executor:
        result = run_eval(config, terminal.RichReporter(), executor)
    title = f"{config.benchmark} — {result.model} ({result.strategy}, {result.n_problems} problems)"
    table = Table(title=plain(title))
    table.add_column("metric")
    table.add_column("%", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{100 * value:.1f}")
    out.print(table)
    spend = load_spend(out_dir).get("tokens_per_problem")
    out.print(
        plain(
            f"mean tokens {result.mean_tokens or 0:.0f}; tokens spent per problem "
            f"{spend or 0:.0f}; wrote {out_dir}/report.md"
        ),
        soft_wrap=True,
    )


@config_command(app, "distill", DistillConfig)
def distill(config: DistillConfig) -> None:
    """Distil K long-form responses per problem from a teacher into the unified format. Resumable."""
    _log_beside(Path(config.store))
    with ray_executor(config, config.teacher) as executor:
        summary = run_distill(config, terminal.RichReporter(), executor=executor)
    out.print(
        plain(
            f"distill: {summary.problems} problems, {summary.samples} responses "
            f"({summary.new_samples} new), {100 * summary.accuracy:.1f}% correct; "
            + ", ".join(f"{k}={v}" for k, v in sorted(summary.reasons.items()))
        ),
        soft_wrap=True,
    )


@config_command(app, "rel", RELRunConfig)
def rel(config: RELRunConfig) -> None:
    """ReasonSet / REL: rewrite seed solutions, critique, refine, validate. Every round is stored."""
    _log_beside(Path(config.store))
    s = run_rel_stage(config, terminal.RichReporter())
    _print_row(
        f"REL → {config.store}",
        problems=s.problems,
        accepted=s.accepted,
        rounds=s.rounds,
        **{"validated rounds": s.correct_rounds},
    )


@app.command()
def compare(dirs: list[Path] = typer.Argument(..., help="Eval output directories.")) -> None:
    """One table of several eval runs side by side, with the gain over the first row."""
    header, rows = compare_table([load_result(d) for d in dirs])
    table = Table(title="compare")
    for col in header:
        table.add_column(
            plain(col), justify="left" if col in ("model", "benchmark", "strategy") else "right"
        )
    for row in rows:
        table.add_row(*map(plain, row))
    out.print(table)


@app.command()
def export(
    store: Path = STORE,
    fmt: str = typer.Option(
        "jsonl",
        "--format",
        help="jsonl | parquet | hf (a datasets save_to_disk dir) | stepwise (= jsonl --kind stepwise)",
    ),
    out_path: Path = typer.Option(..., "--out", help="Destination file or directory."),
    kind: str = typer.Option(
        "trajectories",
        "--kind",
        help="trajectories | sft (TRL conversational, correct only) | stepwise (TRL "
        "stepwise supervision from step labels)",
    ),
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
    labeler: str | None = typer.Option(
        None, "--labeler", help="stepwise: only this labeller's step labels (default: all)."
    ),
    soft: bool = typer.Option(
        False, "--soft", help="stepwise: labels are fractions of correct completions, not bools."
    ),
) -> None:
    """Write what is in the store as JSONL, parquet or an HF dataset."""

    if fmt == "stepwise":
        fmt, kind = "jsonl", "stepwise"
    if fmt not in ("jsonl", "parquet", "hf"):
        raise ConfigError(f"--format must be jsonl, parquet, hf or stepwise, got {fmt!r}")
    if kind not in ("trajectories", "sft", "stepwise"):
        raise ConfigError(f"--kind must be trajectories, sft or stepwise, got {kind!r}")
    if not store.exists():
        raise DataError("no such store", where=str(store))
    opts = {"kind": kind, "stage": stage, "labeler": labeler, "soft": soft}
    with open_store(store, create=False, readonly=True) as st:
        if fmt == "jsonl":
            n = export_jsonl(st, out_path, **opts)  # type: ignore[arg-type]
        elif fmt == "parquet":
            n = export_parquet(st, out_path, **opts)  # type: ignore[arg-type]
        else:
            ds = to_hf_dataset(st, **opts)  # type: ignore[arg-type]
            ds.save_to_disk(str(out_path))
            n = len(ds)
    out.print(plain(f"wrote {n} {kind} rows to {out_path} ({fmt})"), soft_wrap=True)


@config_command(app, "annotate-steps", AnnotateConfig)
def annotate_steps_cmd(config: AnnotateConfig) -> None:
    """Math-Shepherd step labels: per step prefix, M completions graded; soft = fraction correct,
    hard = any correct. Stored in the store; resumable."""
    store, engine, settings = Path(config.store), config.engine, config.settings()
    _log_beside(store)
    if not store.exists():
        raise DataError("no such store", where=str(store))
    with ExitStack() as stack:
        executor = stack.enter_context(ray_executor(config))
        eng = None
        if executor is None:
            eng = load_engine(engine)
            stack.callback(eng.close)
        st = stack.enter_context(open_store(store, create=False))
        update = stack.enter_context(terminal.task("annotate-steps"))

        def on_progress(done: int, total: int, tokens: int) -> None:
            update(done, tokens, total=total)

        summary = annotate_steps(eng, st, settings, on_progress=on_progress, executor=executor)
        key = labeler_key(executor or eng, settings)  # type: ignore[arg-type]
    _print_row(
        f"annotate-steps → {store}",
        trajectories=summary.trajectories,
        **{
            "steps labelled": summary.labelled,
            "already done": summary.skipped,
            "hard = true": summary.positive,
        },
        tokens=summary.new_tokens,
    )
    out.print(plain(f"labeller {key}"), soft_wrap=True)
    if summary.missing_problems:
        console.print(f"{len(summary.missing_problems)} problem(s) missing from the store: skipped")


@app.command()
def stats(
    store: Path = STORE,
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
) -> None:
    """Store counts per stage, and thought-behaviour statistics by verdict and by source."""

    if not store.exists():
        raise DataError("no such store", where=str(store))
    with open_store(store, create=False, readonly=True) as st:
        s = st.stats()
        groups = behaviour_groups(st.trajectories(stage=stage))
    table = Table(title=plain(f"{store}: {s.problems} problems, {s.trajectories} trajectories"))
    for col in ("stage", "trajectories", "problems", "correct", "incorrect", "ungraded"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for g in s.stages:
        table.add_row(
            plain(g.stage),
            str(g.trajectories),
            str(g.problems),
            str(g.correct),
            str(g.incorrect),
            str(g.ungraded),
        )
    out.print(table)
    if groups:
        bt = Table(title="thought behaviours (mean per trajectory; thought words: median)")
        for col in ("group", "n", *BEHAVIOUR_KEYS, "thought_words"):
            bt.add_column(col, justify="left" if col == "group" else "right")
        for name, g in groups.items():
            cells = [f"{g[k]:.2f}" for k in BEHAVIOUR_KEYS] + [f"{g['thought_words']:.0f}"]
            bt.add_row(plain(name), str(g["n"]), *cells)
        out.print(bt)


@app.command()
def curate(
    store: Path = STORE,
    out_dir: Path = typer.Option(
        ..., "--out", help="Output directory: train.jsonl, rejects.jsonl, report.json."
    ),
    recipe: Path | None = typer.Option(None, "--recipe", help="YAML: filters, select, mix, ..."),
    stage: list[str] = typer.Option([], "--stage", help="Stages to curate (default: all)."),
    decontaminate: list[str] = typer.Option(
        [], "--decontaminate", help="Benchmarks to decontaminate against."
    ),
    perplexity_engine: str | None = typer.Option(
        None, "--perplexity-engine", help="Engine that scores perplexity."
    ),
    data_dir: Path | None = DATA_DIR,
    to_hf: bool = typer.Option(False, "--hf", help="Also save an HF dataset to OUT/hf."),
) -> None:
    """Clean, deduplicate, decontaminate, select and mix stored trajectories into an SFT set."""
    log_to(out_dir / "curate.log")

    report = run_curate(
        store,
        out_dir,
        load_recipe(recipe) if recipe else CurateConfig(),
        stages=stage,
        decontaminate=decontaminate,
        data_dir=data_dir,
        perplexity_engine=perplexity_engine,
        reporter=terminal.RichReporter(),
    )
    if to_hf:
        from datasets import Dataset

        Dataset.from_json(str(out_dir / "train.jsonl")).save_to_disk(str(out_dir / "hf"))
    table = Table(title=plain(f"curate → {out_dir}/train.jsonl"))
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("seen", str(report.seen))
    for reason, count in report.dropped.most_common():
        table.add_row(plain(f"dropped: {reason}"), str(count))
    table.add_row("kept", str(report.kept))
    for d, c in sorted(report.by_domain.items()):
        table.add_row(plain(f"  domain={d}"), str(c))
    for lvl, c in sorted(report.by_level.items()):
        table.add_row(plain(f"  level={lvl}"), str(c))
    out.print(table)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory (resumable)."),
    quick: bool = typer.Option(
        False, "--quick", help="A much smaller run (about a minute), for a smoke test."
    ),
    seeds: int = typer.Option(
        0, "--seeds", help="Seeds for the self-improvement comparison (0 = the default)."
    ),
    grpo: bool = typer.Option(
        False,
        "--grpo",
        help="Also run GRPO from the imitated student at DPO's cost, per seed, and compare the "
        "three self-improvement methods at matched cost (about 5 more minutes per seed).",
    ),
    grpo_budget: str = typer.Option(
        "",
        "--grpo-budget",
        help="Whose cost GRPO is given (turns --grpo on): 'dpo' (the default), 'rs-sft' "
        "(about 17 more minutes per seed) or both, 'dpo,rs-sft' (one GRPO run each). A "
        "finished run resumes with another budget, adding only its GRPO runs.",
    ),
) -> None:
    """The CPU demo: imitate → explore → self-improve on Countdown with a small student, measured.
    The short way to run the demo recipe (recipes/cpu-demo.yaml runs it with three seeds)."""
    from dataclasses import replace

    log_to(out_dir / "run.log")
    cfg = DemoConfig.quick(str(out_dir)) if quick else DemoConfig(out=str(out_dir))
    if seeds:
        cfg = replace(cfg, seeds=tuple(range(seeds)))
    if grpo or grpo_budget:
        cfg = replace(cfg, grpo=True)
    if grpo_budget:
        budgets = tuple(b.strip() for b in grpo_budget.split(","))
        cfg = replace(cfg, grpo_budget=budgets[0] if len(budgets) == 1 else budgets)
    final = run_recipe(DemoRecipe(name="demo", demo=cfg), out_dir, reporter=terminal.RichReporter())
    out.print(terminal.table(final["table"]["header"], final["table"]["rows"], f"demo → {out_dir}"))
    out.print(f"report: {out_dir}/report.md", highlight=False)
    out.print(
        f"backbone={final['backbone']:.1f} imitate={final['imitate']:.1f} improved={final['improved']:.1f}",
        highlight=False,
    )


@app.command()
def view(
    store: Path = typer.Option(..., "--store", help="The trajectory store (opened read-only)."),
    runs: Path | None = typer.Option(
        None, "--runs", help="A directory of eval output directories."
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
) -> None:
    """A local web viewer of trajectories, REL chains, explore results and eval runs."""
    out.print(plain(f"reasonloop view: http://{host}:{port}/  (Ctrl-C to stop)"), soft_wrap=True)
    serve(store, runs, host, port)


train_app = typer.Typer(
    help="Fine-tune a student (SFT, thought-only DPO) or train a reward model (ORM, PRM, GenRM, "
    "V-STaR).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")


train_app = typer.Typer(
    help="Fine-tune a student (SFT, thought-only DPO) or train a reward model (ORM, PRM, GenRM, "
    "V-STaR).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")


def _trained(name: str, train: Callable[..., Any], s: Any, **kwargs: Any) -> Any:
    """``train(s, on_progress=..., **kwargs)`` under one progress display, logged beside the
    model it saves."""
    log_to(Path(s.output_dir) / "train.log")
    with terminal.task(f"train {name}", s.max_steps if s.max_steps > 0 else None) as update:
        return train(s, on_progress=update, **kwargs)


def _said(text: str) -> None:
    """A command's closing line, as plain text (never rich markup)."""
    out.print(text, highlight=False, soft_wrap=True)


@config_command(train_app, "sft", SFTSettings)
def train_sft_cmd(s: SFTSettings) -> None:
    """SFT on the assistant responses only; the saved model loads with --engine hf:OUT."""
    m = _trained("sft", train_sft, s)
    _said(f"sft: {m['global_step']} steps, train loss {m['train_loss']:.4f}; saved {s.output_dir}")


@config_command(train_app, "dpo", DPOSettings)
def train_dpo_cmd(s: DPOSettings) -> None:
    """DPO with the preference loss on the thought tokens only (--align thought) plus an SFT term."""
    m = _trained("dpo", train_dpo, s)
    _said(
        f"dpo ({s.align}, sft weight {s.sft_weight}): {m['global_step']} steps, "
        f"loss {m['train_loss']:.4f}; saved {s.output_dir}"
    )


@config_command(train_app, "grpo", GRPOSettings)
def train_grpo_cmd(s: GRPOSettings) -> None:
    """GRPO rewarded by the graders; every rollout is stored with its step and reward."""

    probs = resolve_problems(
        s.problems, data_dir=s.data_dir, limit=s.limit, gpqa_password=s.gpqa_password
    )
    code_boundary((p.domain for p in probs), s.unsafe_code_exec)
    r = _trained("grpo", train_grpo, s, problems=probs)
    _said(
        f"grpo ({s.loss_type}): {r.steps} steps, {r.rollouts} rollouts ({r.new_rows} new in "
        f"{s.store}, stage {s.stage}), accuracy {100 * r.accuracy:.1f}%, mean reward "
        f"{r.mean_reward_first:.3f} → {r.mean_reward_last:.3f}, "
        + (f"{r.dropped_groups} all-equal groups dropped, " if s.dynamic_sampling else "")
        + f"{r.generated_tokens / r.seconds:.1f} generated tokens/s, {r.generated_tokens} generated "
        f"+ {r.trained_tokens} trained on; saved {s.output_dir}"
    )


# each reward model's command takes the options of its kind
RM_ONLY = {
    "orm": ("pairs_per_problem",),
    "prm": ("labels", "labeler"),
    "genrm": (
        "method",
        "beta",
        "balance",
        "pairs_per_problem",
        "verification",
        "generation_ratio",
    ),
}
RM_HELP = {
    "orm": "Outcome reward model: TRL RewardTrainer on (correct, incorrect) pairs of the same "
    "problem.",
    "prm": "Process reward model on the store's step labels (run annotate-steps first).",
    "genrm": 'Generative verifier: asked "Is the answer correct?", answers Yes or No (score: '
    "P(Yes)); trained on a mixture with correct solutions; --verification cot: GenRM-CoT; "
    "--method dpo: the Yes/No DPO variant (V-STaR's own verifier is `train vstar`).",
}


def _train_rm(s: RMSettings) -> None:
    m = _trained(s.kind, train_rm, s)
    _said(
        f"{s.kind}: {m['global_step']} steps, train loss {m['train_loss']:.4f}; "
        f"{heldout_line(m['heldout'])}; "
        + (f"{heldout_line(m['heldout_pairs'])}; " if "heldout_pairs" in m else "")
        + f"saved {s.output_dir} (score with --scorer {_scorer_name(s)}:{s.output_dir})"
    )


def _scorer_name(s: RMSettings) -> str:
    return "genrm-cot" if s.kind == "genrm" and s.verification == "cot" else s.kind


def _register_rm(kind: str) -> None:
    others = {n for k, names in RM_ONLY.items() if k != kind for n in names} - set(RM_ONLY[kind])

    def command(s: RMSettings) -> None:
        _train_rm(s)

    command.__name__, command.__doc__ = f"train_{kind}_cmd", RM_HELP[kind]
    config_command(train_app, kind, RMSettings, exclude=others, fixed={"kind": kind})(command)


for _kind in RM_ONLY:
    _register_rm(_kind)


@config_command(train_app, "vstar", VStarSettings)
def train_vstar_cmd(s: VStarSettings) -> None:
    """V-STaR verifier: DPO from the SFT generator on (correct, incorrect) solution pairs of each
    problem (their product, at most --pairs-per-problem drawn with --seed); a candidate scores its
    log-likelihood under it (--scorer vstar:OUT, or vstar-mean:OUT length-normalised). Not the
    Yes/No DPO of `train genrm --method dpo`."""
    m = _trained("vstar", train_vstar, s)
    mean = m["heldout_mean"]
    by_mean = f", {mean['accuracy']:.3f} by mean log-prob" if mean["total"] else ""
    _said(
        f"vstar: {m['global_step']} steps, train loss {m['train_loss']:.4f}; "
        f"{heldout_line(m['heldout'])}"
        + (" by summed log-prob" if m["heldout"]["total"] else "")
        + f"{by_mean}; saved {s.output_dir} (score with --scorer vstar:{s.output_dir})"
    )


def heldout_line(h: dict) -> str:
    """``held-out pair accuracy 0.750 (3 of 4 pairs, 1 problem)``, or that none was held out."""
    unit = h["unit"]
    if not h["total"]:
        return f"no held-out {unit} (nothing to measure accuracy on: see --eval-fraction)"
    kind = {"pairs": "pair", "steps": "step", "answers": "Yes/No"}.get(unit, unit)
    problems = f"{h['problems']} problem" + ("s" if h["problems"] != 1 else "")
    return (
        f"held-out {kind} accuracy {h['accuracy']:.3f} "
        f"({h['correct']} of {h['total']} {unit}, {problems})"
    )


@app.command()
def convert(
    gguf: Path = typer.Argument(..., help="A .gguf file (e.g. the packaged default's)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Where to save (default: a cache dir named after the file)."
    ),
    force: bool = typer.Option(False, "--force", help="Convert again even if already done."),
) -> None:
    """GGUF → a transformers model dir (dequantized), saved once and reused: what makes a
    packaged GGUF trainable (`train sft --model DIR`) and loadable as `--engine hf:DIR`."""
    path = gguf_to_hf(gguf, out_dir, force=force)
    out.print(plain(path), soft_wrap=True)


@app.command("export-gguf")
def export_gguf_cmd(
    model_dir: Path = typer.Argument(
        ..., help="A transformers Llama model dir (or a LoRA adapter dir)."
    ),
    out_file: Path = typer.Option(
        ..., "--out", help="The .gguf file to write (replaced atomically)."
    ),
    kind: str = typer.Option("q8_0", "--type", help="Weight type: q8_0 or f16."),
    adapter: Path | None = typer.Option(None, "--adapter", help="A LoRA adapter dir to merge in."),
) -> None:
    """A trained model → a GGUF llama.cpp runs (`--engine llamacpp:FILE.gguf`), with the source
    model's tokenizer and chat template: the inverse of `convert`."""
    s = export_gguf(model_dir, out_file, kind=kind, adapter=adapter)
    out.print(
        plain(
            f"{s.out}  {s.kind}  {s.bytes / 2**20:.1f} MiB  {s.tensors} tensors  vocab {s.vocab}"
            f"{f' (+{len(s.added_tokens)} added)' if s.added_tokens else ''}  "
            f"tokenizer from {s.tokenizer_from}  {s.seconds:.1f}s"
        ),
        soft_wrap=True,
    )


def _register_run() -> None:
    app.command("run")(run_cmd)


_register_run()


def plain(text: object) -> Text:
    """``text`` for a rich console exactly as it is. File names, ids, answers, stage and model
    names come from users and data: printed as a ``str`` they would be read as markup (``[red]``,
    or ``[/x]`` which raises) and emoji codes (``in.jsonl:100:`` printed as ``in.jsonl💯``)."""
    return Text(str(text))


def labelled(label: str, style: str, text: object) -> Text:
    """``label`` in ``style``, a space, then ``text`` as it is (see :func:`plain`)."""
    return Text.assemble((label, style), " ", str(text))


def bare_ray(argv: list[str]) -> list[str]:
    """``--ray`` with no value (last, or before another option) means ``--ray local``: a Typer
    option cannot take an optional value."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("local")
    return out


def main() -> None:
    """Entry point: run the app, turning reasonloop errors into one line and an exit code."""
    try:
        app(args=bare_ray(sys.argv[1:]))
    except (DataError, ConfigError) as exc:
        if _STATE["debug"]:
            raise
        console.print(labelled("error:", "red", exc), soft_wrap=True)
        sys.exit(2)
    except ReasonloopError as exc:
        if _STATE["debug"]:
            raise
        console.print(labelled("error:", "red", exc), soft_wrap=True)
        sys.exit(1)
    except Exception as exc:  # a bug or an unexpected failure: one line, the traceback with --debug
        if _STATE["debug"]:
            raise
        console.print(
            labelled(
                "error:",
                "red",
                f"{type(exc).__name__}: {exc} (run with --debug for the traceback)",
            ),
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
