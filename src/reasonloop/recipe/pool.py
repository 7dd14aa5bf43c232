"""The explore pool of a loop recipe: problems the student was not trained on, hardest first.

STILL-2 explores *hard* problems. An explore set read as "the first N problems of the training
set" is, in effect, the problems the teacher was just distilled on. :func:`choose_pool`:

1. loads the explore set whole (a generated Countdown set: long enough that ``limit`` remain);
2. removes every problem the store holds a teacher trajectory for (stages ``distill`` / ``rel``):
   the same id, or the same text up to whitespace (one problem loaded under another id); and every
   problem of the held-out sets ``curate.decontaminate`` names (the same text), since their
   rollouts could never join D_i (generated Countdown sets all draw from one split: the
   ``countdown-medium`` explored and the ``countdown-medium`` evaluated start with the same
   puzzles);
3. orders the rest hardest first (``explore.order``): ``level`` — highest level first (the first
   integer of ``Problem.level``: ``5``, ``Level 5``), problems without a level last; ``pass_rate``
   — the imitated model samples each problem ``probe_rollouts`` times (stage ``explore-probe``,
   kept in the store like every rollout), lowest pass rate first, problems not probed last;
   ``none`` — the set's order. Ties (one level, one pass rate) in an order fixed by the seed, so
   that the hardest N of a set sorted by subject mix subjects;
4. keeps the first ``explore.limit`` and writes them as a problems file (``data/explore-pool.jsonl``),
   which every round's explore stage reads.

What it does not do: problems explored in an earlier round stay in the pool (each round explores
it again with its own model); texts are compared whole, not by n-gram overlap (that is curate's
decontamination, which the explored rollouts also pass through).

Run as ``python -m reasonloop.recipe.pool --recipe RUN/resolved.yaml --store RUN/store.db --out
RUN/data/explore-pool.jsonl [--engine SPEC]`` (the loop's ``commands.sh`` line): every setting comes
from the recipe, declared once in its ``explore`` section.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine
from reasonloop.errors import DataError
from reasonloop.explore import run_explore
from reasonloop.problems import resolve_problems
from reasonloop.problems.countdown import DIFFICULTY
from reasonloop.progress import LogReporter, Reporter
from reasonloop.recipe.config import LoopRecipe, parse_recipe
from reasonloop.records import Problem
from reasonloop.store import open_store

PROBE_STAGE = "explore-probe"
TEACHER_STAGES = ("distill", "rel")
_GENERATED = frozenset(f"countdown-{name}" for name in DIFFICULTY)


def normalized(text: str) -> str:
    """A problem's text for comparison: whitespace runs as one space, no ends."""
    return " ".join(text.split())


def trained_on(store: Any, stages: Iterable[str] = TEACHER_STAGES) -> tuple[set[str], set[str]]:
    """The ids and normalized texts of the problems ``store`` holds a trajectory of ``stages``
    for."""
    ids = {s.trajectory.problem_id for stage in stages for s in store.stored(stage=stage)}
    texts = {normalized(p.problem) for p in store.problems() if p.id in ids}
    return ids, texts


def unseen(
    candidates: Iterable[Problem], ids: set[str], texts: set[str]
) -> tuple[list[Problem], int, int]:
    """``candidates`` less those in ``ids`` or with a text in ``texts``, in order; with how many
    were removed by id and how many (of the rest) by text."""
    kept: list[Problem] = []
    by_id = by_text = 0
    for p in candidates:
        if p.id in ids:
            by_id += 1
        elif normalized(p.problem) in texts:
            by_text += 1
        else:
            kept.append(p)
    return kept, by_id, by_text


def level_of(p: Problem) -> int | None:
    """The first integer in the problem's level (``"5"``, ``"Level 5"``); None without one."""
    m = re.search(r"\d+", p.level or "")
    return int(m.group()) if m else None


def tie_key(seed: int, problem_id: str) -> bytes:
    """An order for ties that depends on the seed and the id only (not on the other problems)."""
    return hashlib.sha256(f"{seed}\0{problem_id}".encode()).digest()


def by_level(problems: Iterable[Problem], seed: int) -> list[Problem]:
    """Highest level first; problems without a level last; ties by :func:`tie_key`."""

    def key(p: Problem) -> tuple[bool, int, bytes]:
        level = level_of(p)
        return level is None, -(level or 0), tie_key(seed, p.id)

    return sorted(problems, key=key)


def by_pass_rate(
    problems: Iterable[Problem], rates: Mapping[str, float], seed: int
) -> list[Problem]:
    """Lowest pass rate first; problems without a rate (not probed) last; ties by
    :func:`tie_key`."""
    return sorted(
        problems, key=lambda p: (p.id not in rates, rates.get(p.id, 0.0), tie_key(seed, p.id))
    )


def probe_seed(r: LoopRecipe) -> int:
    """The probe's first sampling seed: after every seed a round's explore draws (``seed`` ..
    ``seed + max_rollouts - 1``), so that round 1 does not redraw the probe's samples."""
    return r.seed + r.explore.max_rollouts


def held_out(r: LoopRecipe) -> set[str]:
    """The normalized texts of the problems of ``curate.decontaminate``."""
    return {
        normalized(p.problem)
        for b in r.curate.decontaminate
        for p in resolve_problems(b, data_dir=r.data_dir)
    }


def candidates_of(r: LoopRecipe, n_trained: int) -> list[Problem]:
    """The explore set whole; a generated Countdown set is drawn ``limit`` + ``n_trained`` long
    (its first problems are the same whatever its length), so that ``limit`` can remain."""
    spec = r.explore.problems
    size = None
    if spec.strip().lower() in _GENERATED:
        size = (r.explore.limit if r.explore.limit is not None else 100) + n_trained
    return resolve_problems(spec, data_dir=r.data_dir, limit=size)


def choose_pool(
    r: LoopRecipe,
    store: Any,
    *,
    engine: Engine | None = None,
    model: str = "imitate",
    reporter: Reporter | None = None,
) -> tuple[list[Problem], dict[str, Any]]:
    """The explore pool of ``r`` (see the module docstring) and a record of how it was chosen.
    ``engine`` (the imitated model, ``model`` its name in the record) is needed for
    ``order: pass_rate`` only. An empty pool is a :class:`DataError` that says why."""
    x = r.explore
    stages = ("rel",) if r.teacher.method == "rel" else ("distill",)
    ids, texts = trained_on(store, stages)
    held = held_out(r)
    candidates = candidates_of(r, len(ids) + len(held))
    rest, by_id, by_text = unseen(candidates, ids, texts)
    before = len(rest)
    rest = [p for p in rest if normalized(p.problem) not in held]
    record: dict[str, Any] = {
        "problems": x.problems,
        "candidates": len(candidates),
        "trained_on": len(ids),
        "removed_by_id": by_id,
        "removed_by_text": by_text,
        "unseen": len(rest),
        "order": x.order,
    }
    if r.curate.decontaminate:
        record["removed_held_out"] = before - len(rest)
    if x.order == "level":
        ordered = by_level(rest, r.seed)
    elif x.order == "pass_rate":
        if engine is None:
            raise DataError("explore.order is pass_rate: the imitated model must be given")
        probed = sorted(rest, key=lambda p: tie_key(r.seed, p.id))[: x.probe_limit]
        rates = probe(r, engine, store, probed, reporter)
        ordered = by_pass_rate(rest, rates, r.seed)
        record["probe"] = {
            "model": model,
            "rollouts": x.probe_rollouts,
            "problems": len(probed),
            "stage": PROBE_STAGE,
        }
    else:
        ordered = rest
        record["order"] = "none"
    pool = ordered[: x.limit]
    record["pool"] = len(pool)
    record["levels"] = _counts(str(level_of(p)) if level_of(p) is not None else "-" for p in pool)
    if x.order == "pass_rate":
        k = x.probe_rollouts
        record["pass_rates"] = _counts(
            f"{round(rates[p.id] * k)}/{k}" if p.id in rates else "not probed" for p in pool
        )
    if not pool:
        raise DataError(
            f"the explore pool is empty: {len(candidates)} problems of {x.problems!r}, "
            f"{by_id + by_text} of them distilled ({by_id} by id, {by_text} by text), limit "
            f"{x.limit}; set explore.problems to problems the teacher did not see",
            field="explore.problems",
        )
    return pool, record


def probe(
    r: LoopRecipe,
    engine: Engine,
    store: Any,
    problems: Sequence[Problem],
    reporter: Reporter | None = None,
) -> dict[str, float]:
    """Each problem's pass rate over ``probe_rollouts`` samples of ``engine`` (the explore
    section's sampling, seeds from :func:`probe_seed`), stored under stage ``explore-probe``;
    resumable like explore."""
    k = r.explore.probe_rollouts
    cfg = r.explore.stage(
        store="",
        engine=getattr(engine, "spec", ""),
        stage=PROBE_STAGE,
        seed=probe_seed(r),
        data_dir=r.data_dir,
        limit=None,
        max_rollouts=k,
        batch=k,  # one batch of k: every problem gets exactly k samples
    )
    summary = run_explore(
        cfg,
        reporter,
        engine=engine,
        store=store,
        problems=problems,
        system_prompt=r.system_prompt,
    )
    return {x.problem_id: x.pass_rate for x in summary.results}


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def problem_row(p: Problem) -> dict[str, Any]:
    """A problems-file row (what :func:`reasonloop.problems.load_problems` reads back)."""
    return {k: v for k, v in dataclasses.asdict(p).items() if v is not None}


def write_pool(path: Path, problems: Sequence[Problem]) -> int:
    """Write the pool as a problems JSONL file, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    lines = (json.dumps(problem_row(p), ensure_ascii=False) + "\n" for p in problems)
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    return len(problems)


def describe(record: Mapping[str, Any]) -> str:
    """One line: how the pool was chosen."""
    removed = record["removed_by_id"] + record["removed_by_text"]
    how = {
        "level": "highest level first",
        "pass_rate": "lowest pass rate first",
        "none": "in the set's order",
    }[record["order"]]
    return (
        f"{record['pool']} of {record['unseen']} unseen {record['problems']} problems, {how} "
        f"({removed} of {record['candidates']} removed as distilled: {record['removed_by_id']} "
        f"by id, {record['removed_by_text']} by text"
        + (
            f"; {record['removed_held_out']} more as held out (curate.decontaminate))"
            if "removed_held_out" in record
            else ")"
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reasonloop.recipe.pool", description=__doc__)
    ap.add_argument("--recipe", required=True, type=Path, help="The run's resolved.yaml.")
    ap.add_argument("--store", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--engine", help="The imitated model (order: pass_rate).")
    a = ap.parse_args(argv)

    recipe = parse_recipe(yaml.safe_load(a.recipe.read_text(encoding="utf-8")))
    if not isinstance(recipe, LoopRecipe):
        raise SystemExit(f"{a.recipe}: not a loop recipe")
    engine = load_engine(a.engine) if a.engine else None
    try:
        with open_store(a.store) as st:
            pool, record = choose_pool(recipe, st, engine=engine, reporter=LogReporter())
    finally:
        if engine is not None:
            engine.close()
    write_pool(a.out, pool)
    print(f"wrote {describe(record)} to {a.out}")  # noqa: T201 - this is a command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
