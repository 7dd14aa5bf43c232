"""The ``reasonloop`` command line: each command loads its inputs, calls the library, prints a summary.

Exit codes: 0 ok, 1 the run failed, 2 bad input (a malformed file, a wrong flag or config).
Errors print as one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from reasonloop.errors import ConfigError, DataError, ReasonloopError

app = typer.Typer(
    name="reasonloop",
    help="Build slow-thinking reasoning models: distil, imitate, explore, self-improve, measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()
_STATE = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    _STATE["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command()
def grade(
    input: Path = typer.Argument(
        ..., help="JSONL: id, domain, answer, response, choices?, tests?, entry_point?"
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the verdicts (JSONL)."),
    workers: int = typer.Option(0, "--workers", help="Parallel grading workers (0 = all cores)."),
) -> None:
    """Grade model responses against gold answers (math, multiple choice, code)."""
    from reasonloop.verify.batch import grade_file

    summary = grade_file(input, output, workers=workers or None)
    table = Table(title=f"graded {input}")
    for col in ("domain", "lines", "correct", "accuracy"):
        table.add_column(col, justify="right" if col != "domain" else "left")
    for domain, (n, k) in sorted(summary.by_domain.items()):
        table.add_row(domain, str(n), str(k), f"{100 * k / n:.1f}%" if n else "-")
    table.add_row(
        "all", str(summary.graded), str(summary.correct), f"{100 * summary.accuracy:.1f}%"
    )
    out.print(table)
    if summary.reasons:
        out.print("reasons: " + ", ".join(f"{r}={c}" for r, c in sorted(summary.reasons.items())))
    for err in summary.errors:
        console.print(f"[red]skipped[/red] {err}", highlight=False, soft_wrap=True)
    out.print(f"wrote {summary.graded} verdicts to {output}")
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
    limit: int = typer.Option(3, "--limit", help="How many problems to print."),
    data_dir: Path | None = DATA_DIR,
    gpqa_password: str | None = GPQA_PASSWORD,
) -> None:
    """Print the first problems of a set, as the models will see them."""
    from reasonloop.problems import prompt_for, resolve_problems

    problems = resolve_problems(spec, data_dir=data_dir, gpqa_password=gpqa_password)
    for p in problems[:limit]:
        out.rule(f"{p.id}  [{p.domain}]  answer: {p.answer[:60]}")
        out.print(prompt_for(p), markup=False, highlight=False)
    out.print(f"{len(problems)} problems in {spec}")


def main() -> None:
    """Entry point: run the app, turning reasonloop errors into one line and an exit code."""
    try:
        app()
    except (DataError, ConfigError) as exc:
        if _STATE["debug"]:
            raise
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ReasonloopError as exc:
        if _STATE["debug"]:
            raise
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
