"""Benchmark code grading: the cost of the sandbox.

Usage::

    python benchmarks/code_grade_bench.py [--data DIR] [--workers N] [--repeats R]

HumanEval's 164 canonical solutions, each a response with the solution in a fenced block, graded
by :func:`reasonloop.verify.code.grade_code` behind the bubblewrap sandbox (``bwrap``) and with
no boundary (``none``: the same harness, tests and plain-data comparison in a plain child
process, what ``--unsafe-code-exec`` falls back to). ``--workers`` gradings run at a time (threads,
each waiting on its sandbox). Best of ``--repeats`` passes for each. Every solution must pass both
ways.

The last line is ``code_per_s_bwrap=A code_per_s_none=B cost_ratio=R all_pass=true|false`` with
``R = B / A`` (how many times slower grading is behind the boundary).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.format import render  # noqa: E402
from reasonloop.verify.code import grade_code  # noqa: E402
from reasonloop.verify.sandbox import bwrap_problem  # noqa: E402


def humaneval(data: Path) -> list[dict]:
    path = data / "humaneval" / "test.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def grade_all(rows: list[dict], boundary: str, workers: int) -> tuple[float, int]:
    """Seconds to grade every canonical solution, and how many passed."""

    def one(row: dict) -> bool:
        response = render("I will implement it.", f"```python\n{row['solution']}\n```")
        v = grade_code(
            response,
            row["tests"],
            row["entry_point"],
            prompt=row["problem"],
            timeout_s=20,
            boundary=boundary,
        )
        return v.correct and v.boundary == boundary

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = sum(pool.map(one, rows))
    return time.perf_counter() - t0, passed


def code_row(data: Path, workers: int, repeats: int = 1) -> dict:
    """The code row of the grading benchmark: per-second rates with and without the boundary."""
    rows = humaneval(data)
    out: dict = {"solutions": len(rows), "workers": workers}
    for boundary in ("bwrap", "none"):
        runs = [grade_all(rows, boundary, workers) for _ in range(repeats)]
        seconds = min(s for s, _ in runs)
        out[boundary] = {
            "seconds": seconds,
            "per_s": len(rows) / seconds,
            "passed": min(p for _, p in runs),
        }
    out["cost_ratio"] = out["none"]["per_s"] / out["bwrap"]["per_s"]
    out["all_pass"] = all(out[b]["passed"] == len(rows) for b in ("bwrap", "none"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("REASONLOOP_DATA", str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--data", type=Path, default=Path(default_data))
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    problem = bwrap_problem()
    if problem is not None:
        print(f"no sandbox here ({problem}); nothing to compare", file=sys.stderr)
        return 2
    row = code_row(args.data, args.workers, args.repeats)
    print(f"HumanEval canonical solutions: {row['solutions']}, {row['workers']} at a time")
    print(f"{'boundary':<10}{'seconds':>10}{'per second':>12}{'passed':>8}")
    for b in ("bwrap", "none"):
        r = row[b]
        print(f"{b:<10}{r['seconds']:>10.2f}{r['per_s']:>12.1f}{r['passed']:>8}")
    print(
        f"code_per_s_bwrap={row['bwrap']['per_s']:.1f} code_per_s_none={row['none']['per_s']:.1f} "
        f"cost_ratio={row['cost_ratio']:.2f} all_pass={str(row['all_pass']).lower()}"
    )
    return 0 if row["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
