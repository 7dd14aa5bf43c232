"""Preference pairs from explored rollouts, written as TRL preference JSONL.

The pairs are chosen by :func:`reasonloop.train.pairs.select_pairs` (chosen: a correct rollout with
high perplexity; rejected: an incorrect one with low perplexity). A rollout's perplexity is the one
stored with it (explore with log-probs), else the ``perplexity`` scorer's when one is given; a
rollout with neither is left out.

Run as ``python -m reasonloop.recipe.pairs --store S --stage explore-r1 --out pairs.jsonl`` (the
loop's ``commands.sh`` line: there is no ``reasonloop`` command for it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from reasonloop.engines import load_engine
from reasonloop.format import SYSTEM_PROMPT
from reasonloop.generate import perplexity_scorer
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import Problem, Trajectory
from reasonloop.store import open_store
from reasonloop.store.export import preference_rows as trl_rows
from reasonloop.train.pairs import select_pairs


def preference_rows(
    store,
    stages: Sequence[str],
    *,
    pairs_per_problem: int = 1,
    system_prompt: bool = True,
    perplexity: Callable[[Problem, Trajectory], float | None] | None = None,
) -> list[dict]:
    """TRL conversational preference rows (``prompt``, ``chosen``, ``rejected``) from the store."""

    problems = {p.id: p for p in store.problems()}
    trajs = []
    for stage in stages:
        for t in store.trajectories(stage=stage):
            if t.perplexity is None and perplexity is not None and t.problem_id in problems:
                t = replace(t, perplexity=perplexity(problems[t.problem_id], t))
            trajs.append(t)
    pairs = select_pairs(trajs, problems, prompt=prompt_for, pairs_per_problem=pairs_per_problem)
    rows = trl_rows(pairs, system=SYSTEM_PROMPT if system_prompt else None)
    return [{**row, "problem_id": p.problem_id} for p, row in zip(pairs, rows, strict=True)]


def write_rows(path: Path, rows: list[dict]) -> int:
    """Write JSONL atomically (a killed run leaves the old file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(path)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reasonloop.recipe.pairs", description=__doc__)
    ap.add_argument("--store", required=True, type=Path)
    ap.add_argument("--stage", action="append", required=True, help="Explore stage(s) to pair.")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--pairs-per-problem", type=int, default=1)
    ap.add_argument("--no-system-prompt", action="store_true")
    ap.add_argument("--perplexity-engine", help="Engine scoring rollouts stored without one.")
    a = ap.parse_args(argv)

    scorer = None
    if a.perplexity_engine:
        eng = load_engine(a.perplexity_engine)
        scorer = perplexity_scorer(eng, system_prompt=not a.no_system_prompt)

    with open_store(a.store, create=False, readonly=True) as st:
        rows = preference_rows(
            st,
            a.stage,
            pairs_per_problem=a.pairs_per_problem,
            system_prompt=not a.no_system_prompt,
            perplexity=scorer,
        )
    n = write_rows(a.out, rows)
    print(f"wrote {n} preference pairs to {a.out}")  # noqa: T201 - this is a command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
