"""The ``reasonloop`` command line: each command loads its inputs, calls the library, prints a summary.

Exit codes: 0 ok, 1 the run failed, 2 bad input (a malformed file, a wrong flag or config).
Errors print as one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from reasonloop import terminal
from reasonloop.errors import ConfigError, DataError, ReasonloopError
from reasonloop.terminal import console, log_to, out
from reasonloop.train.grpo import GRPO_DEFAULTS as G
from reasonloop.verify.sandbox import UNSAFE_ENV

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


UNSAFE_CODE_EXEC = typer.Option(
    False,
    "--unsafe-code-exec",
    envvar=UNSAFE_ENV,
    help="Where no OS sandbox (bubblewrap) can run, run model-written code unconfined instead of "
    "refusing. Only on a machine that is itself the boundary (a throwaway VM or container).",
)


def _code_boundary(domains, unsafe: bool) -> None:
    """Before any work: refuse (one line, exit 2) when code must be graded and cannot be safely."""
    from reasonloop.verify.sandbox import allow_unsafe_exec, resolve_boundary

    if unsafe:
        allow_unsafe_exec()
    if "code" in set(domains):
        resolve_boundary()


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
) -> None:
    """Grade model responses against gold answers (math, multiple choice, code)."""
    from reasonloop.verify.batch import grade_file

    _code_boundary((), unsafe_code_exec)  # grade_many checks the boundary once it sees code
    summary = grade_file(input, output, workers=workers or None)
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

DATA_DIR = typer.Option(
    None, "--data-dir", envvar="REASONLOOP_DATA", help="Benchmark data directory (else the HF hub)."
)
GPQA_PASSWORD = typer.Option(
    None, "--gpqa-password", envvar="REASONLOOP_GPQA_PASSWORD", help="Password of GPQA's zip."
)


@problems_app.command("list")
def problems_list() -> None:
    """The benchmarks reasonloop knows by name."""
    from reasonloop.problems import BENCHMARKS, benchmark

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
    from reasonloop.problems import prompt_for, resolve_problems

    problems = resolve_problems(spec, data_dir=data_dir, gpqa_password=gpqa_password)
    for p in problems[:limit]:
        out.rule(plain(f"{p.id}  [{p.domain}]  answer: {p.answer[:60]}"))
        out.print(plain(prompt_for(p)))
    out.print(plain(f"{len(problems)} problems in {spec}"), soft_wrap=True)


ENGINE = typer.Option(
    "default",
    "--engine",
    help="default | llamacpp:PATH.gguf | hf:PATH | openai:URL#MODEL[,URL#MODEL]",
)
STORE = typer.Option(..., "--store", help="The trajectory store (SQLite; created if missing).")
LIMIT = typer.Option(None, "--limit", min=0, help="Only the first N problems.")


def progress_bar(total: int, description: str):
    """A rich progress bar with tokens/s, for the CLI's long jobs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _rate_callback(bar, task, t0):
    import time

    def on_progress(done: int, tokens: int) -> None:
        dt = time.perf_counter() - t0
        bar.update(task, completed=done, rate=f"{tokens / dt:.1f} tok/s" if dt and tokens else "")

    return on_progress


@app.command()
def generate(
    problems: str = typer.Option(..., "--problems", help="A benchmark name or a problems file."),
    store: Path = STORE,
    engine: str = ENGINE,
    n: int = typer.Option(1, "-n", min=1, help="Samples per problem."),
    limit: int | None = LIMIT,
    temperature: float = typer.Option(0.7, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    seed: int = typer.Option(0, "--seed", help="Sample i of a problem uses seed + i."),
    stage: str = typer.Option(
        "generate", "--stage", help="A tag that separates runs in the store."
    ),
    batch: int = typer.Option(
        4, "--batch", min=1, help="Problems sampled together (one engine call)."
    ),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
    unsafe_code_exec: bool = UNSAFE_CODE_EXEC,
) -> None:
    """Sample K responses per problem, grade them, store them. Resumable: rerun to finish."""
    _log_beside(store)
    import time

    from reasonloop.engines import load_engine
    from reasonloop.generate import SamplingSettings
    from reasonloop.generate import generate as run_generate
    from reasonloop.problems import resolve_problems
    from reasonloop.store import open_store

    settings = _sampling(
        SamplingSettings,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
    )
    probs = resolve_problems(problems, data_dir=data_dir, limit=limit, gpqa_password=gpqa_password)
    _code_boundary((p.domain for p in probs), unsafe_code_exec)
    eng = load_engine(engine)  # everything is checked before the store file is created
    with open_store(store) as st, progress_bar(len(probs), "generate") as bar:
        task = bar.add_task("generate", total=len(probs), rate="")
        summary = run_generate(
            eng,
            probs,
            st,
            settings,
            stage=stage,
            batch_problems=batch,
            on_progress=_rate_callback(bar, task, time.perf_counter()),
        )
    eng.close()
    table = Table(title=plain(f"generate → {store}"))
    for col in ("problems", "samples", "new", "accuracy", "tokens/s"):
        table.add_column(col, justify="right")
    table.add_row(
        str(summary.problems),
        str(summary.samples),
        str(summary.new_samples),
        f"{100 * summary.accuracy:.1f}%",
        f"{summary.tokens_per_s:.1f}",
    )
    out.print(table)


@app.command()
def explore(
    problems: str = typer.Option(..., "--problems", help="A benchmark name or a problems file."),
    store: Path = STORE,
    engine: str = ENGINE,
    max_rollouts: int = typer.Option(
        20, "--max-rollouts", min=1, help="Budget of rollouts per problem."
    ),
    batch: int = typer.Option(4, "--batch", min=1, help="Rollouts drawn per problem at a time."),
    limit: int | None = LIMIT,
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    seed: int = typer.Option(0, "--seed"),
    stage: str = typer.Option("explore", "--stage"),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
    unsafe_code_exec: bool = UNSAFE_CODE_EXEC,
) -> None:
    """Sample each problem until a rollout is correct or the budget is spent; keep every rollout."""
    _log_beside(store)
    import time

    from reasonloop.engines import load_engine
    from reasonloop.explore import BUCKETS
    from reasonloop.explore import explore as run_explore
    from reasonloop.generate import SamplingSettings
    from reasonloop.problems import resolve_problems
    from reasonloop.store import open_store

    settings = _sampling(
        SamplingSettings, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed
    )
    probs = resolve_problems(problems, data_dir=data_dir, limit=limit, gpqa_password=gpqa_password)
    _code_boundary((p.domain for p in probs), unsafe_code_exec)
    eng = load_engine(engine)  # everything is checked before the store file is created
    with open_store(store) as st, progress_bar(len(probs), "explore") as bar:
        task = bar.add_task("explore", total=len(probs), rate="")
        summary = run_explore(
            eng,
            probs,
            st,
            settings,
            max_rollouts=max_rollouts,
            batch=batch,
            stage=stage,
            on_progress=_rate_callback(bar, task, time.perf_counter()),
        )
    eng.close()
    table = Table(title=plain(f"explore → {store}"))
    for col in (
        "problems",
        "solved",
        "at once",
        "with search",
        "unsolved",
        "rollouts",
        "new",
        "tok/s",
    ):
        table.add_column(col, justify="right")
    b = summary.buckets
    rate = summary.new_tokens / summary.seconds if summary.seconds else 0.0
    table.add_row(
        str(len(summary.results)),
        str(summary.solved),
        *(str(b.get(k, 0)) for k in BUCKETS),
        str(sum(r.attempts for r in summary.results)),
        str(summary.new_rollouts),
        f"{rate:.1f}",
    )
    out.print(table)


def _parse_options(items: list[str]) -> tuple[tuple[str, object], ...]:
    """``KEY=VALUE`` pairs; values read as int, float, true/false, or text."""
    out = []
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--option must look like KEY=VALUE, got {item!r}")
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


@app.command("eval")
def eval_(
    benchmark: str = typer.Option(..., "--benchmark", help="A benchmark name or a problems file."),
    out_dir: Path = typer.Option(
        ..., "--out", help="Output directory (metrics.json, spend.json, report.md, plots)."
    ),
    engine: str = ENGINE,
    strategy: str = typer.Option(
        "greedy",
        "--strategy",
        help="greedy | sample | majority | weighted | best-of-n | beam | mcts | reflection",
    ),
    k: int = typer.Option(
        1,
        "-k",
        help="Samples (sample, majority, weighted, best-of-n), beams (beam), iterations (mcts).",
    ),
    scorer: str | None = typer.Option(
        None,
        "--scorer",
        help="weighted | best-of-n | beam | mcts: confidence (default) | logprob | prob | oracle "
        "| orm:PATH | prm:PATH | genrm:PATH",
    ),
    aggregate: str = typer.Option(
        "min", "--aggregate", help="How a PRM's step scores combine: min | last | mean."
    ),
    option: list[str] = typer.Option(
        [],
        "--option",
        help="More strategy options, KEY=VALUE (e.g. expand=2, children=3, step_tokens=64).",
    ),
    limit: int | None = LIMIT,
    temperature: float = typer.Option(0.7, "--temperature"),
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    seed: int = typer.Option(0, "--seed"),
    system_prompt: bool = typer.Option(
        True, "--system-prompt/--no-system-prompt", help="Send the format's system prompt."
    ),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
    unsafe_code_exec: bool = UNSAFE_CODE_EXEC,
) -> None:
    """Evaluate: greedy pass@1, k samples (pass@k, maj@k), or a test-time search strategy;
    reports accuracy and tokens spent per problem. Resumable."""
    log_to(out_dir / "eval.log")
    import time

    from reasonloop.engines import load_engine
    from reasonloop.evaluate.run import EvalSettings, evaluate, load_spend, make_eval_scorer
    from reasonloop.problems import resolve_problems
    from reasonloop.search import make_strategy

    try:
        settings = EvalSettings(
            strategy=strategy,
            k=k,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            system_prompt=system_prompt,
            scorer=scorer,
            aggregate=aggregate,
            options=_parse_options(option),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    probs = resolve_problems(benchmark, data_dir=data_dir, limit=limit, gpqa_password=gpqa_password)
    _code_boundary((p.domain for p in probs), unsafe_code_exec)
    eng = load_engine(engine)
    # The scorer (a reward model is loaded) and the strategy's options are checked before the
    # output directory and its store are created.
    scorer = make_eval_scorer(settings, eng)
    if settings.searches:
        make_strategy(settings.strategy, **settings.strategy_options(scorer))
    with progress_bar(len(probs), "eval") as bar:
        task = bar.add_task("eval", total=len(probs), rate="")
        result = evaluate(
            eng,
            benchmark,
            probs,
            out_dir,
            settings,
            on_progress=_rate_callback(bar, task, time.perf_counter()),
            scorer=scorer,
        )
    eng.close()
    table = Table(
        title=plain(
            f"{benchmark} — {result.model} ({result.strategy}, {result.n_problems} problems)"
        )
    )
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


@app.command()
def compare(dirs: list[Path] = typer.Argument(..., help="Eval output directories.")) -> None:
    """One table of several eval runs side by side, with the gain over the first row."""
    from reasonloop.evaluate.report import compare_table, load_result

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
    from reasonloop.store import open_store
    from reasonloop.store.export import export_jsonl, export_parquet, to_hf_dataset

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


@app.command("annotate-steps")
def annotate_steps_cmd(
    store: Path = STORE,
    engine: str = ENGINE,
    m: int = typer.Option(8, "-m", help="Completions sampled from each step prefix."),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Only the first N trajectories."),
    stage: str | None = typer.Option(None, "--stage", help="Only trajectories of this stage."),
    solved_only: bool = typer.Option(
        False,
        "--solved-only",
        help="Only trajectories of problems with a correct trajectory (elsewhere every label is 0).",
    ),
    temperature: float = typer.Option(0.7, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="Tokens per completion."),
    seed: int = typer.Option(0, "--seed"),
    system_prompt: bool = typer.Option(
        True,
        "--system-prompt/--no-system-prompt",
        help="Continue prefixes after the format's system prompt (as the trajectories were sampled).",
    ),
) -> None:
    """Math-Shepherd step labels: per step prefix, M completions graded; soft = fraction correct,
    hard = any correct. Stored in the store; resumable."""
    _log_beside(store)
    import time

    from reasonloop.engines import load_engine
    from reasonloop.search.annotate import AnnotateSettings, annotate_steps, labeler_key
    from reasonloop.store import open_store

    settings = AnnotateSettings(
        m=m,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        system_prompt=system_prompt,
        stage=stage,
        solved_only=solved_only,
        limit=limit,
    )
    if not store.exists():
        raise DataError("no such store", where=str(store))
    eng = load_engine(engine)
    with open_store(store, create=False) as st, progress_bar(0, "annotate") as bar:
        task = bar.add_task("annotate-steps", total=None, rate="")
        t0 = time.perf_counter()

        def on_progress(done: int, total: int, tokens: int) -> None:
            dt = time.perf_counter() - t0
            rate = f"{tokens / dt:.1f} tok/s" if dt and tokens else ""
            bar.update(task, completed=done, total=total, rate=rate)

        summary = annotate_steps(eng, st, settings, on_progress=on_progress)
    key = labeler_key(eng, settings)
    eng.close()
    table = Table(title=plain(f"annotate-steps → {store}"))
    for col in ("trajectories", "steps labelled", "already done", "hard = true", "tokens"):
        table.add_column(col, justify="right")
    table.add_row(
        str(summary.trajectories),
        str(summary.labelled),
        str(summary.skipped),
        str(summary.positive),
        str(summary.new_tokens),
    )
    out.print(table)
    out.print(plain(f"labeller {key}"), soft_wrap=True)
    if summary.missing_problems:
        console.print(f"{len(summary.missing_problems)} problem(s) missing from the store: skipped")


@app.command()
def stats(
    store: Path = STORE,
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
) -> None:
    """Store counts per stage, and thought-behaviour statistics by verdict and by source."""
    import statistics as stat

    from reasonloop.curate.behaviours import count_behaviours
    from reasonloop.store import open_store

    if not store.exists():
        raise DataError("no such store", where=str(store))
    groups: dict[str, list] = {}
    with open_store(store, create=False, readonly=True) as st:
        s = st.stats()
        for t in st.trajectories(stage=stage):
            b = count_behaviours(t.text).as_dict()
            verdict = (
                "ungraded"
                if t.verdict is None
                else ("correct" if t.verdict.correct else "incorrect")
            )
            source = t.generator.model if t.generator else "?"
            for key in (f"verdict={verdict}", f"source={source}"):
                groups.setdefault(key, []).append(b)
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
        keys = ["strategy_switch", "verification", "backtracking", "planning", "thought_words"]
        bt = Table(title="thought behaviours (mean per trajectory; thought words: median)")
        bt.add_column("group")
        bt.add_column("n", justify="right")
        for k in keys:
            bt.add_column(k, justify="right")
        for name, rows in sorted(groups.items()):
            cells = [f"{stat.mean(r[k] for r in rows):.2f}" for k in keys[:-1]]
            cells.append(f"{stat.median(r['thought_words'] for r in rows):.0f}")
            bt.add_row(plain(name), str(len(rows)), *cells)
        out.print(bt)


@app.command()
def distill(
    problems: str = typer.Option(..., "--problems", help="A benchmark name or a problems file."),
    store: Path = STORE,
    teacher: str = typer.Option(..., "--teacher", help="Engine spec of the teacher."),
    n: int = typer.Option(4, "-n", min=1, help="Responses per problem."),
    style: str = typer.Option("auto", "--style", help="auto | unified | r1 | qwq"),
    completer: str | None = typer.Option(
        None, "--completer", help="Engine that writes QwQ solutions (default: the teacher)."
    ),
    limit: int | None = LIMIT,
    temperature: float = typer.Option(0.6, "--temperature"),
    max_tokens: int = typer.Option(4096, "--max-tokens"),
    seed: int = typer.Option(0, "--seed"),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
) -> None:
    """Distil K long-form responses per problem from a teacher into the unified format. Resumable."""
    _log_beside(store)
    import time

    from reasonloop.distill import STYLES
    from reasonloop.distill import distill as run_distill
    from reasonloop.engines import load_engine
    from reasonloop.generate import SamplingSettings
    from reasonloop.problems import resolve_problems
    from reasonloop.store import open_store

    if style not in STYLES:
        raise ConfigError(f"--style must be one of {', '.join(STYLES)}, got {style!r}")
    settings = _sampling(
        SamplingSettings, n=n, temperature=temperature, max_tokens=max_tokens, seed=seed
    )
    probs = resolve_problems(problems, data_dir=data_dir, limit=limit, gpqa_password=gpqa_password)
    teacher_engine = load_engine(teacher)
    completer_engine = load_engine(completer) if completer else teacher_engine
    with open_store(store) as st, progress_bar(len(probs), "distill") as bar:
        task = bar.add_task("distill", total=len(probs), rate="")
        summary = run_distill(
            teacher_engine,
            probs,
            st,
            settings,
            style=style,
            completer=completer_engine,
            on_progress=_rate_callback(bar, task, time.perf_counter()),
        )
    out.print(
        plain(
            f"distill: {summary.problems} problems, {summary.samples} responses "
            f"({summary.new_samples} new), {100 * summary.accuracy:.1f}% correct; "
            + ", ".join(f"{k}={v}" for k, v in sorted(summary.reasons.items()))
        ),
        soft_wrap=True,
    )


@app.command()
def rel(
    problems: str = typer.Option(
        ..., "--problems", help="Problems with seed solutions (name or file)."
    ),
    store: Path = STORE,
    generator: str = typer.Option("default", "--generator", help="Engine that writes and revises."),
    critic: str = typer.Option(
        "default", "--critic", help="Engine that scores against the rubric."
    ),
    rounds: int = typer.Option(3, "--rounds", help="Revisions after the first rewrite."),
    threshold: float = typer.Option(
        0.8, "--threshold", help="Critic score (0-1) that accepts a round."
    ),
    limit: int | None = LIMIT,
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    seed: int = typer.Option(0, "--seed"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """ReasonSet / REL: rewrite seed solutions, critique, refine, validate. Every round is stored."""
    _log_beside(store)
    from reasonloop.engines import load_engine
    from reasonloop.problems import resolve_problems
    from reasonloop.rel.loop import RELConfig, chain_summary, run_rel
    from reasonloop.store import open_store

    probs = resolve_problems(problems, data_dir=data_dir, limit=limit)
    try:
        cfg = RELConfig(rounds=rounds, threshold=threshold, max_tokens=max_tokens, seed=seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    gen_engine = load_engine(generator)
    critic_engine = gen_engine if critic == generator else load_engine(critic)
    accepted = rounds_total = correct = 0
    with open_store(store) as st, progress_bar(len(probs), "rel") as bar:
        task = bar.add_task("rel", total=len(probs), rate="")
        st.add_problems(probs)
        for p in probs:
            done = list(st.trajectories(problem_id=p.id, stage="rel"))
            chain = run_rel(
                p,
                gen_engine,
                critic_engine,
                cfg,
                done=done,
                on_round=lambda t: st.add_trajectories([t], stage="rel"),
            )
            summ = chain_summary(chain, cfg.threshold)
            accepted += bool(summ["accepted"])
            rounds_total += int(summ["rounds"])  # type: ignore[call-overload]
            correct += int(summ["correct_rounds"])  # type: ignore[call-overload]
            bar.update(task, advance=1, rate=f"{accepted} accepted")
    table = Table(title=plain(f"REL → {store}"))
    for col in ("problems", "accepted", "rounds", "validated rounds"):
        table.add_column(col, justify="right")
    table.add_row(str(len(probs)), str(accepted), str(rounds_total), str(correct))
    out.print(table)


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
    from reasonloop.curate.run import CurateConfig, load_recipe
    from reasonloop.curate.run import curate as run_curate
    from reasonloop.problems import resolve_problems
    from reasonloop.store import open_store

    cfg = load_recipe(recipe) if recipe else CurateConfig()
    bench_texts = [
        p.problem for name in decontaminate for p in resolve_problems(name, data_dir=data_dir)
    ]
    scorer = None
    if perplexity_engine:
        from reasonloop.engines import load_engine
        from reasonloop.generate import messages_for

        eng = load_engine(perplexity_engine)

        def scorer(p, t):
            return eng.score(messages_for(p, system_prompt=cfg.system_prompt), t.text).perplexity

    if not store.exists():
        raise DataError("no such store", where=str(store))
    with open_store(store, create=False, readonly=True) as st:
        problems = {p.id: p for p in st.problems()}
        stages = set(stage)

        def rows():
            for s in st.stored():
                if (not stages or s.stage in stages) and s.trajectory.problem_id in problems:
                    yield problems[s.trajectory.problem_id], s.trajectory

        with progress_bar(st.count(), "curate") as bar:
            task = bar.add_task("curate", total=len(st), rate="")
            report = run_curate(
                rows(),
                out_dir,
                cfg,
                benchmark_texts=bench_texts,
                perplexity=scorer,
                progress=lambda n: bar.update(task, completed=n),
            )
            bar.update(task, completed=report.seen)
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
) -> None:
    """The CPU demo: imitate → explore → self-improve on Countdown with a small student, measured."""
    from dataclasses import replace

    from reasonloop.demo.run import DemoConfig, run_demo

    log_to(out_dir / "run.log")
    cfg = DemoConfig.quick(str(out_dir)) if quick else DemoConfig(out=str(out_dir))
    if seeds:
        cfg = replace(cfg, seeds=tuple(range(seeds)))
    final = run_demo(cfg, terminal.RichReporter())
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
    from reasonloop.view import serve

    out.print(plain(f"reasonloop view: http://{host}:{port}/  (Ctrl-C to stop)"), soft_wrap=True)
    serve(store, runs, host, port)


train_app = typer.Typer(
    help="Fine-tune a student (SFT, thought-only DPO) or train a reward model (ORM, PRM, GenRM).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")


def _lora(lora: bool, r: int):
    from reasonloop.train.sft import LoraSettings

    return LoraSettings(r=r, alpha=2 * r) if lora else None


@train_app.command("sft")
def train_sft_cmd(
    model: str = typer.Option(..., "--model", help="A transformers model dir or hub id."),
    data: Path = typer.Option(
        ..., "--data", help="TRL conversational JSONL (e.g. curate's train.jsonl)."
    ),
    out_dir: Path = typer.Option(..., "--out", help="Where to save the fine-tuned model."),
    lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter instead of all weights."),
    lora_r: int = typer.Option(16, "--lora-r"),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(
        -1, "--max-steps", help="Stop after N optimizer steps (-1: epochs)."
    ),
    learning_rate: float = typer.Option(1e-4, "--lr"),
    batch_size: int = typer.Option(8, "--batch-size"),
    max_length: int = typer.Option(1024, "--max-length"),
    packing: bool = typer.Option(
        False, "--packing", help="Padding-free packing (exact with FlashAttention)."
    ),
    seed: int = typer.Option(0, "--seed"),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 mixed precision (GPU; slow on CPU)."),
) -> None:
    """SFT on the assistant responses only; the saved model loads with --engine hf:OUT."""
    from reasonloop.train.sft import SFTSettings, train_sft

    try:
        s = SFTSettings(
            model=model,
            data=str(data),
            output_dir=str(out_dir),
            lora=_lora(lora, lora_r),
            epochs=epochs,
            max_steps=max_steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_length=max_length,
            packing=packing,
            seed=seed,
            bf16=bf16,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log_to(out_dir / "train.log")
    with terminal.task("train sft", max_steps if max_steps > 0 else None) as update:
        m = train_sft(s, on_progress=update)
    out.print(
        f"sft: {m['global_step']} steps, train loss {m['train_loss']:.4f}; saved {out_dir}",
        highlight=False,
        soft_wrap=True,
    )


@train_app.command("dpo")
def train_dpo_cmd(
    model: str = typer.Option(
        ..., "--model", help="The policy to start from (e.g. the SFT output)."
    ),
    data: Path = typer.Option(
        ..., "--data", help="TRL preference JSONL: prompt, chosen, rejected."
    ),
    out_dir: Path = typer.Option(..., "--out"),
    align: str = typer.Option("thought", "--align", help="thought (STILL-2) | full"),
    sft_weight: float = typer.Option(
        0.0, "--sft-weight", help="Weight of the NLL term on the chosen response."
    ),
    beta: float = typer.Option(0.1, "--beta"),
    lora: bool = typer.Option(False, "--lora"),
    lora_r: int = typer.Option(16, "--lora-r"),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(-1, "--max-steps"),
    learning_rate: float = typer.Option(5e-6, "--lr"),
    batch_size: int = typer.Option(4, "--batch-size"),
    max_length: int = typer.Option(1024, "--max-length"),
    seed: int = typer.Option(0, "--seed"),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 mixed precision (GPU; slow on CPU)."),
) -> None:
    """DPO with the preference loss on the thought tokens only (--align thought) plus an SFT term."""
    from reasonloop.train.dpo import DPOSettings, train_dpo

    try:
        s = DPOSettings(
            model=model,
            data=str(data),
            output_dir=str(out_dir),
            align=align,
            sft_weight=sft_weight,
            beta=beta,
            lora=_lora(lora, lora_r),
            epochs=epochs,
            max_steps=max_steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            bf16=bf16,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log_to(out_dir / "train.log")
    with terminal.task("train dpo", max_steps if max_steps > 0 else None) as update:
        m = train_dpo(s, on_progress=update)
    out.print(
        f"dpo ({align}, sft weight {sft_weight}): {m['global_step']} steps, loss {m['train_loss']:.4f}; saved {out_dir}",
        highlight=False,
        soft_wrap=True,
    )


@train_app.command("grpo")
def train_grpo_cmd(
    model: str = typer.Option(
        ..., "--model", help="The policy to start from (e.g. the SFT output)."
    ),
    problems: str = typer.Option(..., "--problems", help="A benchmark name or a problems file."),
    out_dir: Path = typer.Option(..., "--out", help="Where to save the policy and checkpoints."),
    store: Path = STORE,
    stage: str = typer.Option(G["stage"], "--stage", help="Store stage of the rollouts."),
    limit: int | None = LIMIT,
    group_size: int = typer.Option(G["group_size"], "--group-size", help="Rollouts per prompt."),
    prompts_per_step: int = typer.Option(G["prompts_per_step"], "--prompts-per-step"),
    temperature: float = typer.Option(G["temperature"], "--temperature"),
    top_p: float = typer.Option(G["top_p"], "--top-p"),
    max_tokens: int = typer.Option(
        G["max_completion_length"], "--max-tokens", help="Max completion length."
    ),
    loss_type: str = typer.Option(
        G["loss_type"], "--loss", help="grpo|dr_grpo|dapo|bnpo|cispo|sapo"
    ),
    beta: float = typer.Option(G["beta"], "--beta", help="KL weight (0: no reference model)."),
    scale_rewards: str = typer.Option(
        G["scale_rewards"], "--scale-rewards", help="group|batch|none"
    ),
    format_weight: float = typer.Option(
        G["format_weight"], "--format-weight", help="Weight of the well-formed-response reward."
    ),
    overlong_buffer: int = typer.Option(
        G["overlong_buffer"],
        "--overlong-buffer",
        help="Soft length penalty over the last N tokens.",
    ),
    mask_truncated: bool = typer.Option(G["mask_truncated"], "--mask-truncated"),
    dynamic_sampling: bool = typer.Option(
        G["dynamic_sampling"], "--dynamic-sampling", help="Drop groups whose rewards are all equal."
    ),
    lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter instead of all weights."),
    lora_r: int = typer.Option(16, "--lora-r"),
    max_steps: int = typer.Option(G["max_steps"], "--max-steps"),
    learning_rate: float = typer.Option(G["learning_rate"], "--lr"),
    seed: int = typer.Option(G["seed"], "--seed"),
    save_steps: int = typer.Option(
        G["save_steps"], "--save-steps", help="Checkpoint every N steps."
    ),
    resume: bool = typer.Option(G["resume"], "--resume", help="Continue from the last checkpoint."),
    system_prompt: bool = typer.Option(G["system_prompt"], "--system-prompt/--no-system-prompt"),
    bf16: bool = typer.Option(G["bf16"], "--bf16", help="bf16 mixed precision (GPU; slow on CPU)."),
    data_dir: Path | None = DATA_DIR,
    unsafe_code_exec: bool = UNSAFE_CODE_EXEC,
) -> None:
    """GRPO rewarded by the graders; every rollout is stored with its step and reward."""
    from reasonloop.problems import resolve_problems
    from reasonloop.train.grpo import GRPOSettings, train_grpo

    try:
        s = GRPOSettings(
            model=model, problems=problems, output_dir=str(out_dir), store=str(store), stage=stage,
            limit=limit, data_dir=None if data_dir is None else str(data_dir),
            system_prompt=system_prompt, group_size=group_size, prompts_per_step=prompts_per_step,
            temperature=temperature, top_p=top_p, max_completion_length=max_tokens,
            loss_type=loss_type, beta=beta, scale_rewards=scale_rewards,
            format_weight=format_weight, overlong_buffer=overlong_buffer,
            mask_truncated=mask_truncated, dynamic_sampling=dynamic_sampling,
            lora=_lora(lora, lora_r), max_steps=max_steps, learning_rate=learning_rate, seed=seed,
            save_steps=save_steps, resume=resume, bf16=bf16,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    probs = resolve_problems(problems, data_dir=data_dir, limit=limit)
    _code_boundary((p.domain for p in probs), unsafe_code_exec)
    log_to(out_dir / "train.log")
    with terminal.task("train grpo", max_steps) as update:
        r = train_grpo(s, problems=probs, on_progress=update)
    out.print(
        f"grpo ({loss_type}): {r.steps} steps, {r.rollouts} rollouts ({r.new_rows} new in {store}, "
        f"stage {stage}), accuracy {100 * r.accuracy:.1f}%, mean reward {r.mean_reward_first:.3f} "
        f"→ {r.mean_reward_last:.3f}, "
        + (f"{r.dropped_groups} all-equal groups dropped, " if dynamic_sampling else "")
        + f"{r.generated_tokens / r.seconds:.1f} generated tokens/s; saved {out_dir}",
        highlight=False,
        soft_wrap=True,
    )


def _train_rm(kind: str, **fields) -> None:
    """``train orm|prm|genrm``: each command hands over its options as they are named."""
    from reasonloop.train.rm import RMSettings, train_rm

    lora, lora_r = fields.pop("lora"), fields.pop("lora_r")
    fields["store"], fields["output_dir"] = str(fields["store"]), str(fields.pop("out_dir"))
    try:
        s = RMSettings(kind=kind, lora=_lora(lora, lora_r), **fields)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log_to(Path(s.output_dir) / "train.log")
    with terminal.task(f"train {kind}", s.max_steps if s.max_steps > 0 else None) as update:
        m = train_rm(s, on_progress=update)
    out.print(
        f"{kind}: {m['global_step']} steps, train loss {m['train_loss']:.4f}; "
        f"{heldout_line(m['heldout'])}; saved {s.output_dir} "
        f"(score with --scorer {kind}:{s.output_dir})",
        highlight=False,
        soft_wrap=True,
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


RM_MODEL = typer.Option(..., "--model", help="The causal LM to start from (dir or hub id).")
RM_OUT = typer.Option(..., "--out", help="Where to save the reward model.")
RM_STAGE = typer.Option(None, "--stage", help="Only trajectories of this stage.")
RM_LORA = typer.Option(False, "--lora", help="Train a LoRA adapter (the head in full).")
RM_LORA_R = typer.Option(16, "--lora-r")
RM_EPOCHS = typer.Option(1.0, "--epochs")
RM_MAX_STEPS = typer.Option(-1, "--max-steps", help="Stop after N optimizer steps (-1: epochs).")
RM_LR = typer.Option(1e-5, "--lr")
RM_BATCH = typer.Option(4, "--batch-size")
RM_MAX_LENGTH = typer.Option(2048, "--max-length", help="Longer inputs lose their start.")
RM_SEED = typer.Option(0, "--seed")
RM_PAIRS = typer.Option(
    4, "--pairs-per-problem", help="At most N (correct, incorrect) pairs per problem."
)
RM_EVAL_FRACTION = typer.Option(
    0.1,
    "--eval-fraction",
    help="Share of the problems held out of training; the accuracy reported is measured on "
    "them only (at least 1 problem of 2 or more; 0: none).",
)


@train_app.command("orm")
def train_orm_cmd(
    store: Path = STORE,
    model: str = RM_MODEL,
    out_dir: Path = RM_OUT,
    stage: str | None = RM_STAGE,
    pairs_per_problem: int = RM_PAIRS,
    lora: bool = RM_LORA,
    lora_r: int = RM_LORA_R,
    epochs: float = RM_EPOCHS,
    max_steps: int = RM_MAX_STEPS,
    learning_rate: float = RM_LR,
    batch_size: int = RM_BATCH,
    max_length: int = RM_MAX_LENGTH,
    seed: int = RM_SEED,
    eval_fraction: float = RM_EVAL_FRACTION,
) -> None:
    """Outcome reward model: TRL RewardTrainer on (correct, incorrect) pairs of the same problem."""
    _train_rm("orm", **locals())


@train_app.command("prm")
def train_prm_cmd(
    store: Path = STORE,
    model: str = RM_MODEL,
    out_dir: Path = RM_OUT,
    stage: str | None = RM_STAGE,
    labels: str = typer.Option("hard", "--labels", help="hard (any correct) | soft (fraction)."),
    labeler: str | None = typer.Option(
        None, "--labeler", help="Only this labeller's step labels (default: all)."
    ),
    lora: bool = RM_LORA,
    lora_r: int = RM_LORA_R,
    epochs: float = RM_EPOCHS,
    max_steps: int = RM_MAX_STEPS,
    learning_rate: float = RM_LR,
    batch_size: int = RM_BATCH,
    max_length: int = RM_MAX_LENGTH,
    seed: int = RM_SEED,
    eval_fraction: float = RM_EVAL_FRACTION,
) -> None:
    """Process reward model on the store's step labels (run annotate-steps first)."""
    _train_rm("prm", **locals())


@train_app.command("genrm")
def train_genrm_cmd(
    store: Path = STORE,
    model: str = RM_MODEL,
    out_dir: Path = RM_OUT,
    stage: str | None = RM_STAGE,
    method: str = typer.Option(
        "sft", "--method", help="sft (answer Yes/No) | dpo (prefer the right answer, V-STaR)."
    ),
    beta: float = typer.Option(0.1, "--beta", help="DPO beta (--method dpo)."),
    balance: bool = typer.Option(
        False,
        "--balance",
        help="Only trajectories of (correct, incorrect) pairs of one problem: as many Yes as No.",
    ),
    pairs_per_problem: int = RM_PAIRS,
    lora: bool = RM_LORA,
    lora_r: int = RM_LORA_R,
    epochs: float = RM_EPOCHS,
    max_steps: int = RM_MAX_STEPS,
    learning_rate: float = RM_LR,
    batch_size: int = RM_BATCH,
    max_length: int = RM_MAX_LENGTH,
    seed: int = RM_SEED,
    eval_fraction: float = RM_EVAL_FRACTION,
) -> None:
    """Generative verifier: asked "Is the answer correct?", answers Yes or No."""
    _train_rm("genrm", **locals())


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
    from reasonloop.engines.convert import gguf_to_hf

    path = gguf_to_hf(gguf, out_dir, force=force)
    out.print(plain(path), soft_wrap=True)


def _register_run() -> None:
    from reasonloop.recipe.cli import run_cmd

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


def _sampling(cls: type, **fields: object):
    """``cls(**fields)`` (a settings dataclass); its ValueError becomes a ConfigError (exit 2)."""
    try:
        return cls(**fields)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def main() -> None:
    """Entry point: run the app, turning reasonloop errors into one line and an exit code."""
    try:
        app()
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
