"""``reasonloop run RECIPE.yaml [--out DIR] [--dry-run]``: a recipe, end to end, resumable.

``run_cmd`` is a Typer command function; the main CLI registers it as ``run``. It prints a progress
bar per stage and one line per finished step, then the report's table; library warnings and the
trainers' metrics go to ``OUT/run.log`` (see :mod:`reasonloop.terminal`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from reasonloop.recipe.config import LoopRecipe, load_recipe
from reasonloop.recipe.runner import dry_run as make_script
from reasonloop.recipe.runner import run_recipe
from reasonloop.terminal import RichReporter, log_to, out


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

    r = load_recipe(recipe)
    root = out_dir if out_dir is not None else Path("runs") / r.name
    if dry_run:
        text = make_script(r, root, recipe_path=str(recipe))
        out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
        out.print(f"wrote {root / 'commands.sh'}", highlight=False, soft_wrap=True)
        return
    log_to(root / "run.log")
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
