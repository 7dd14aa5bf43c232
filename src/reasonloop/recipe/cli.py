"""``reasonloop run RECIPE.yaml [--out DIR] [--dry-run]``: a recipe, end to end, resumable.

``run_cmd`` is a Typer command function; the main CLI registers it as ``run``. It prints a progress
bar per stage and one line per finished step, then the report's table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console(stderr=True)
out = Console()


class RichReporter:
    """Progress bars on stderr (gone when the stage ends), one summary line per step on stdout."""

    def __init__(self, progress_console: Console = console, line_console: Console = out):
        self.progress_console = progress_console
        self.line_console = line_console

    def line(self, text: str) -> None:
        self.line_console.print(text, markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.progress_console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total, rate="")
            t0 = time.perf_counter()

            def update(done: int, tokens: int) -> None:
                dt = time.perf_counter() - t0
                rate = f"{tokens / dt:.1f} tok/s" if dt and tokens else ""
                bar.update(task, completed=done, rate=rate)

            yield update


def run_cmd(
    recipe: Path = typer.Argument(..., help="A recipe YAML (kind: loop or demo); see recipes/."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="The run directory (default runs/NAME). Run again to resume."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print every stage's command line and write DIR/commands.sh; run nothing.",
    ),
) -> None:
    """Run a recipe: imitate → explore → self-improve, evaluated after every stage. Resumable."""
    from reasonloop.recipe.config import LoopRecipe, load_recipe
    from reasonloop.recipe.runner import dry_run as make_script
    from reasonloop.recipe.runner import run_recipe

    r = load_recipe(recipe)
    root = out_dir if out_dir is not None else Path("runs") / r.name
    if dry_run:
        text = make_script(r, root, recipe_path=str(recipe))
        out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
        out.print(f"wrote {root / 'commands.sh'}", highlight=False, soft_wrap=True)
        return
    summary = run_recipe(r, root, reporter=RichReporter(), recipe_path=str(recipe))
    if isinstance(r, LoopRecipe):
        table = Table(title=f"{r.name} → {root}")
        benches = list(r.eval.benchmarks)
        for col in ("model", "distilled", "explored", *benches, "gain"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for row in summary["rows"]:
            table.add_row(
                row["label"],
                "-" if row["distilled"] is None else str(row["distilled"]),
                "-" if row["explored"] is None else str(row["explored"]),
                *(
                    "-" if row["accuracy"][b] is None else f"{row['accuracy'][b]:.1f}"
                    for b in benches
                ),
                "-" if row["gain"] is None else f"{row['gain']:+.1f}",
            )
        out.print(table)
    out.print(f"report: {summary['report']}", highlight=False, soft_wrap=True)
