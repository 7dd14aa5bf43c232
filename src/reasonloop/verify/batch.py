"""Grading many responses at once: a JSONL file in, verdicts out in input order.

Math answers go through :class:`~reasonloop.verify.math.MathGrader` (parallel worker processes,
a cache, a fast path); code runs behind the sandbox of :mod:`reasonloop.verify.sandbox`, several
at a time (refused up front where none can run); choice grading is cheap and runs inline.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems.load import problem_from_row
from reasonloop.records import Problem, Verdict
from reasonloop.verify import grade
from reasonloop.verify.math import MathGrader, MathGraderConfig
from reasonloop.verify.sandbox import resolve_boundary

_GRADE_KEYS = frozenset(
    {"id", "domain", "answer", "response", "choices", "tests", "entry_point", "problem"}
)


@dataclass(frozen=True, slots=True)
class GradeItem:
    problem: Problem
    response: str


@dataclass
class GradeSummary:
    graded: int = 0
    correct: int = 0
    by_domain: dict[str, tuple[int, int]] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.graded if self.graded else 0.0


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def grade_many(items: Sequence[GradeItem], *, workers: int | None = None) -> list[Verdict]:
    """Verdicts for ``items``, in order. Never raises on model output."""
    workers = workers or default_workers()
    verdicts: list[Verdict | None] = [None] * len(items)
    math_idx, code_idx = [], []
    for i, item in enumerate(items):
        p = item.problem
        if p.domain == "code":
            code_idx.append(i)
        elif p.domain in ("math", "puzzle") and not p.choices and p.source != "countdown":
            math_idx.append(i)
        else:
            verdicts[i] = grade(p, item.response)  # choice and Countdown grading are cheap
    if code_idx:
        resolve_boundary()  # refuse before any work where code cannot run safely
    if math_idx:
        grader = MathGrader(MathGraderConfig(workers=workers))
        try:
            pairs = [(items[i].problem.answer, items[i].response) for i in math_idx]
            for i, v in zip(math_idx, grader.grade_many(pairs), strict=True):
                verdicts[i] = v
        finally:
            grader.close()
    if code_idx:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = pool.map(lambda i: grade(items[i].problem, items[i].response), code_idx)
            for i, v in zip(code_idx, done, strict=True):
                verdicts[i] = v
    return [v if v is not None else Verdict(False, None, "error") for v in verdicts]


def read_grade_items(path: Path) -> tuple[list[GradeItem], list[str]]:
    """Parse a grading JSONL. Returns the valid items and one error line per malformed line."""
    items: list[GradeItem] = []
    errors: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError("file not found", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path)
        ) from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            items.append(_parse_line(line, where))
        except DataError as exc:
            errors.append(str(exc))
    return items, errors


def _parse_line(line: str, where: str) -> GradeItem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", where=where) from None
    if not isinstance(row, dict):
        raise DataError("expected a JSON object", where=where)
    unknown = set(row) - _GRADE_KEYS
    if unknown:
        raise DataError(
            f"unknown key(s) {sorted(unknown)}; valid: {sorted(_GRADE_KEYS)}", where=where
        )
    if "response" not in row:
        raise DataError("missing required field", where=where, field="response")
    response = row.pop("response")
    if not isinstance(response, str):
        raise DataError(
            f"expected a string, got {type(response).__name__}", where=where, field="response"
        )
    row.setdefault("problem", "")
    # The problem files' rules (a code row's answer is optional, numeric answers become text).
    return GradeItem(problem_from_row(row, where=where), response)


def check_output(src: Path, dest: Path) -> None:
    """Refuse a ``dest`` that would lose data or leave debris: the input file itself (or a link
    to it), a directory, or a file in a directory that does not exist. Raises ConfigError."""
    if dest.is_dir():
        raise ConfigError(
            f"output {dest} is a directory; name a file in it, e.g. {dest / 'verdicts.jsonl'}"
        )
    if dest.exists() and src.exists() and os.path.samefile(src, dest):
        raise ConfigError(
            f"output {dest} is the input file; the verdicts would overwrite it: name another file"
        )
    if not dest.parent.is_dir():
        raise ConfigError(f"output {dest}: no directory {dest.parent}; create it first")


def grade_file(
    src: Path,
    dest: Path,
    *,
    workers: int | None = None,
    grader: Callable[[Sequence[GradeItem]], list[Verdict]] | None = None,
) -> GradeSummary:
    """Grade every valid line of ``src`` into ``dest`` (JSONL, input order); report bad lines.
    ``grader`` grades the items elsewhere (Ray's, in order); by default :func:`grade_many` here.

    ``dest`` is checked before anything is read (see :func:`check_output`) and replaced in one
    step at the end, from a temporary file beside it that is removed if anything fails.
    """
    src, dest = Path(src), Path(dest)
    check_output(src, dest)
    items, errors = read_grade_items(src)
    if grader is not None and any(i.problem.domain == "code" for i in items):
        resolve_boundary()  # refuse here, before the work is sent anywhere
    verdicts = grader(items) if grader else grade_many(items, workers=workers)
    summary = GradeSummary(errors=errors)
    by_domain: dict[str, list[int]] = {}
    # Named by our pid: no other live process writes it, and it gets the usual permissions.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            _write_verdicts(fh, items, verdicts, summary, by_domain)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary.by_domain = {d: (n, k) for d, (n, k) in by_domain.items()}
    return summary


def _write_verdicts(
    fh: TextIO,
    items: Sequence[GradeItem],
    verdicts: Sequence[Verdict],
    summary: GradeSummary,
    by_domain: dict[str, list[int]],
) -> None:
    for item, v in zip(items, verdicts, strict=True):
        row = {
            "id": item.problem.id,
            "correct": v.correct,
            "extracted": v.extracted,
            "reason": v.reason,
        }
        if v.boundary is not None:
            row["boundary"] = v.boundary
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary.graded += 1
        summary.correct += v.correct
        summary.reasons[v.reason] += 1
        counts = by_domain.setdefault(item.problem.domain, [0, 0])
        counts[0] += 1
        counts[1] += v.correct
