"""What the viewer shows, read from a store opened read-only and from eval output directories.

Pure readers: nothing here writes the store or the run directories. The per-problem counts are one
``GROUP BY`` over the trajectories table (the :class:`~reasonloop.store.Store` API has no such
query); everything else goes through the Store API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.errors import DataError
from reasonloop.evaluate.report import load_result
from reasonloop.records import EvalResult, Problem, Trajectory
from reasonloop.store import Store

log = logging.getLogger(__name__)

REL_ROLES = ("rel-generator", "rel-revision")


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """One line of the problems list: the problem (None when only trajectories name it) and counts."""

    id: str
    problem: Problem | None
    trajectories: int
    graded: int
    correct: int
    stages: tuple[str, ...]

    @property
    def correct_rate(self) -> float | None:
        return self.correct / self.graded if self.graded else None


def problem_rows(store: Store) -> list[ProblemRow]:
    """Every stored problem in the order added, then ids that only trajectories name (sorted)."""
    counts: dict[str, tuple[int, int, int, tuple[str, ...]]] = {}
    rows = store.conn.execute(
        "SELECT problem_id, COUNT(*), COALESCE(SUM(correct IS NOT NULL), 0), "
        "COALESCE(SUM(correct = 1), 0), GROUP_CONCAT(DISTINCT stage) "
        "FROM trajectories GROUP BY problem_id"
    )
    for pid, n, graded, correct, stages in rows:
        counts[pid] = (n, graded, correct, tuple(sorted((stages or "").split(","))))
    out = []
    for p in store.problems():
        n, graded, correct, stages = counts.pop(p.id, (0, 0, 0, ()))
        out.append(ProblemRow(p.id, p, n, graded, correct, stages))
    for pid in sorted(counts):
        n, graded, correct, stages = counts[pid]
        out.append(ProblemRow(pid, None, n, graded, correct, stages))
    return out


def progress_stages(store: Store) -> list[str]:
    """Stages that have progress records (``Store.done``), e.g. ``explore``."""
    rows = store.conn.execute("SELECT DISTINCT stage FROM progress ORDER BY stage")
    return [r[0] for r in rows]


def children_of(store: Store, trajectory_id: str) -> list[str]:
    """Ids of trajectories whose parent is ``trajectory_id``, oldest first."""
    rows = store.conn.execute(
        "SELECT id FROM trajectories WHERE parent = ? ORDER BY seq", (trajectory_id,)
    )
    return [r[0] for r in rows]


def rel_problem_ids(store: Store) -> list[tuple[str, int]]:
    """Problems with REL rounds and how many rounds each, in first-stored order."""
    marks = ", ".join("?" for _ in REL_ROLES)
    rows = store.conn.execute(
        f"SELECT problem_id, COUNT(*), MIN(seq) AS first FROM trajectories "
        f"WHERE role IN ({marks}) GROUP BY problem_id ORDER BY first",
        REL_ROLES,
    )
    return [(pid, n) for pid, n, _ in rows]


def rel_chains(trajectories: Iterable[Trajectory]) -> list[list[Trajectory]]:
    """Split REL rounds into chains by parent links: each chain starts at a round whose parent is
    not among them and follows the first child at each step (a fork's other children start their
    own chains). Rounds are in stored order; a chain lists parent before child."""
    rounds = [t for t in trajectories if t.generator and t.generator.role in REL_ROLES]
    by_id = {t.id: t for t in rounds}
    kids: dict[str, list[Trajectory]] = {}
    for t in rounds:
        if t.parent in by_id:
            kids.setdefault(t.parent, []).append(t)
    chains: list[list[Trajectory]] = []
    seen: set[str | None] = set()
    starts = [t for t in rounds if t.parent not in by_id]
    while starts:
        t: Trajectory | None = starts.pop(0)
        chain = []
        while t is not None and t.id not in seen:
            seen.add(t.id)
            chain.append(t)
            nxt = kids.get(t.id or "", [])
            starts.extend(nxt[1:])
            t = nxt[0] if nxt else None
        if chain:
            chains.append(chain)
    # Rounds in a parent cycle (malformed data) are never reached from a start: show them alone.
    chains.extend([t] for t in rounds if t.id not in seen)
    return chains


def mean_score(scores: Mapping[str, float] | None) -> float | None:
    if not scores:
        return None
    return sum(scores.values()) / len(scores)


@dataclass(frozen=True, slots=True)
class ExploreRow:
    """An explore progress record (see :mod:`reasonloop.explore`); ``error`` says why a malformed
    record could not be read (the other fields are then empty)."""

    problem_id: str
    attempts: int
    correct: int
    first_correct: int | None
    pass_rate: float
    bucket: str
    error: str | None = None


def explore_rows(done: Mapping[str, Any]) -> list[ExploreRow]:
    """Rows from ``Store.done(stage)``, sorted by problem id; malformed values become error rows."""
    out = []
    for pid in sorted(done):
        v = done[pid]
        try:
            if not isinstance(v, dict):
                raise ValueError(f"expected an object, got {v!r:.60}")
            attempts, correct = v.get("attempts"), v.get("correct")
            first, bucket = v.get("first_correct"), v.get("bucket")
            if not isinstance(attempts, int) or not isinstance(correct, int):
                raise ValueError(f"attempts/correct not integers: {attempts!r}, {correct!r}")
            if first is not None and not isinstance(first, int):
                raise ValueError(f"first_correct not an integer: {first!r}")
            if not isinstance(bucket, str):
                raise ValueError(f"bucket not a string: {bucket!r}")
            rate = correct / attempts if attempts else 0.0
            out.append(ExploreRow(pid, attempts, correct, first, rate, bucket))
        except ValueError as exc:
            out.append(ExploreRow(pid, 0, 0, None, 0.0, "", error=str(exc)))
    return out


@dataclass(frozen=True, slots=True)
class EvalRun:
    """One eval output directory under the runs dir: its name (path relative to the runs dir),
    its result or the error reading it, and the PNG files and report.md beside it."""

    name: str
    path: Path
    result: EvalResult | None
    error: str | None
    plots: tuple[str, ...]
    report: str | None


def find_runs(runs_dir: Path | None, max_depth: int = 3) -> list[EvalRun]:
    """Eval output directories (holding ``metrics.json``) at most ``max_depth`` levels below
    ``runs_dir``, sorted by name. Unreadable ones are listed with their error, not raised."""
    if runs_dir is None or not runs_dir.is_dir():
        return []
    found: list[Path] = []
    frontier = [runs_dir]
    for _ in range(max_depth + 1):
        nxt = []
        for d in frontier:
            if (d / "metrics.json").is_file():
                found.append(d)
            try:
                nxt += [c for c in sorted(d.iterdir()) if c.is_dir() and not c.is_symlink()]
            except OSError as exc:
                log.warning("cannot list %s: %s", d, exc)
        frontier = nxt
    runs = []
    for d in sorted(found, key=lambda p: p.relative_to(runs_dir).as_posix()):
        name = d.relative_to(runs_dir).as_posix()
        try:
            result, error = load_result(d), None
        except DataError as exc:
            result, error = None, str(exc)
        plots = tuple(sorted(p.name for p in d.glob("*.png") if p.is_file()))
        report_path = d / "report.md"
        report = None
        if report_path.is_file():
            report = report_path.read_text(encoding="utf-8", errors="replace")
        runs.append(EvalRun(name, d, result, error, plots, report))
    return runs


def metric_columns(results: Iterable[EvalResult]) -> list[str]:
    """The union of metric names, pass@/maj@ sorted by k, others after in first-seen order."""
    names: dict[str, None] = {}
    for r in results:
        for k in r.metrics:
            names.setdefault(k, None)

    def key(k: str) -> tuple[int, str, int]:
        head, _, tail = k.partition("@")
        if tail.isdigit():
            return (0, head, int(tail))
        return (1, "", 0)

    return sorted(names, key=key)
