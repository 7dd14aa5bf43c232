"""Benchmark the math grader against plain Math-Verify.

Usage::

    python benchmarks/grade_bench.py [--data DIR] [--workers N] [--repeats R]

Two measurements, side by side:

1. Accuracy on the verdict tables of tests/verify/data_math_cases.py (answer pairs and full
   responses). Math-Verify is called as a typical user calls it:
   ``verify(parse("\\boxed{" + gold + "}"), parse(response))`` with its default settings. Each
   Math-Verify case runs in a worker process with a 10 s hard limit, because Math-Verify's own
   ``signal.alarm`` timeout cannot stop some inputs (a power tower hangs it in C code); a case
   that hits the limit counts as "not correct".
2. Throughput on MATH-500: every gold answer against ``\\boxed{gold}`` and against
   ``\\boxed{perturbed gold}`` (1000 pairs). Math-Verify runs in this process, single-threaded,
   with its default timeouts (parse 5 s, verify 5 s). Ours runs ``MathGrader.grade_many`` with a
   fresh cache and its worker processes already started. Best of ``--repeats`` runs each.

The last line is ``accuracy_ours=A accuracy_math_verify=B speedup=S``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.verify.math import MathGrader, MathGraderConfig  # noqa: E402
from reasonloop.verify.pool import WorkerPool  # noqa: E402


def _load_cases():
    spec = importlib.util.spec_from_file_location(
        "data_math_cases", ROOT / "tests" / "verify" / "data_math_cases.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def math_verify_case(gold: str, response: str) -> bool:
    """Plain Math-Verify, as a typical user calls it (runs in a worker process)."""
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    return bool(verify(parse("\\boxed{" + gold + "}"), parse(response)))


def _table_rows(cases) -> list[tuple[str, str, str, bool]]:
    """(kind, gold, response, expected correct) for every table row."""
    rows = [("answer", g, "\\boxed{" + p + "}", e) for g, p, e in cases.EQUIV]
    rows += [("response", g, r, reason == "correct") for g, r, reason in cases.RESPONSES]
    return rows


def accuracy(rows, workers: int) -> tuple[list[bool], list[bool], int]:
    with MathGrader(MathGraderConfig(workers=workers)) as grader:
        ours = [v.correct for v in grader.grade_many([(g, r) for _, g, r, _ in rows])]
    # Workers import this file by name (the pool hands them our sys.path, which starts with
    # benchmarks/), so the function is pickled as grade_bench.math_verify_case.
    import grade_bench

    with WorkerPool(workers=workers, timeout=10.0, preload=("math_verify", "grade_bench")) as pool:
        res = pool.map(grade_bench.math_verify_case, [(g, r) for _, g, r, _ in rows])
    hangs = sum(r.timed_out for r in res)
    theirs = [bool(r.ok and r.value) for r in res]
    return ours, theirs, hangs


def table_speed(rows, workers: int) -> tuple[float, float, int]:
    """Seconds for ours (warm workers, fresh cache) and Math-Verify (in-process) on the table
    rows: a harder mix than MATH-500, with pairs only sympy can settle."""
    from math_verify import parse, verify

    pairs = [(g, r) for _, g, r, _ in rows]
    with MathGrader(MathGraderConfig(workers=workers)) as grader:
        grader.warm()
        start = time.perf_counter()
        grader.grade_many(pairs)
        ours = time.perf_counter() - start
        to_workers = grader.stats["worker"]
    start = time.perf_counter()
    for g, r in pairs:
        verify(parse("\\boxed{" + g + "}"), parse(r))
    return ours, time.perf_counter() - start, to_workers


def throughput(pairs, workers: int, repeats: int) -> dict[str, float]:
    from math_verify import parse, verify

    out: dict[str, float] = {}
    best = float("inf")
    mv_correct = 0
    for _ in range(repeats):
        start = time.perf_counter()
        got = [verify(parse("\\boxed{" + g + "}"), parse(r)) for g, r in pairs]
        best = min(best, time.perf_counter() - start)
        mv_correct = sum(got)
    out["mv_s"], out["mv_correct"] = best, mv_correct
    best = float("inf")
    for _ in range(repeats):
        with MathGrader(MathGraderConfig(workers=workers)) as grader:
            grader.warm()
            start = time.perf_counter()
            verdicts = grader.grade_many(pairs)
            elapsed = time.perf_counter() - start
            best = min(best, elapsed)
            out["ours_correct"] = sum(v.correct for v in verdicts)
            out["ours_to_workers"] = grader.stats["worker"]
    out["ours_s"] = best
    best = float("inf")
    for _ in range(repeats):
        with MathGrader(MathGraderConfig(workers=workers)) as grader:
            grader.warm()
            start = time.perf_counter()
            for g, r in pairs:
                grader.grade(g, r)
            best = min(best, time.perf_counter() - start)
    out["ours_single_s"] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("REASONLOOP_DATA") or ROOT.parent / "shared" / "data"),
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # Math-Verify logs every timeout it hits
    cases = _load_cases()

    rows = _table_rows(cases)
    ours, theirs, hangs = accuracy(rows, args.workers)
    expected = [e for *_, e in rows]
    n = len(rows)
    acc_ours = sum(o == e for o, e in zip(ours, expected, strict=True)) / n
    acc_mv = sum(t == e for t, e in zip(theirs, expected, strict=True)) / n

    def errors(got: list[bool]) -> tuple[int, int]:
        fp = sum(g and not e for g, e in zip(got, expected, strict=True))
        fn = sum(e and not g for g, e in zip(got, expected, strict=True))
        return fp, fn

    fp_o, fn_o = errors(ours)
    fp_m, fn_m = errors(theirs)
    n_ans = sum(k == "answer" for k, *_ in rows)
    table_s = table_speed(rows, args.workers) if hangs == 0 else None

    path = args.data / "math500" / "test.jsonl"
    golds = [json.loads(line)["answer"] for line in path.read_text().splitlines() if line.strip()]
    pairs = [(a, "\\boxed{" + a + "}") for a in golds]
    pairs += [(a, "\\boxed{" + cases.perturb(a) + "}") for a in golds]
    tp = throughput(pairs, args.workers, args.repeats)
    rate_o, rate_m = len(pairs) / tp["ours_s"], len(pairs) / tp["mv_s"]
    rate_o1 = len(pairs) / tp["ours_single_s"]

    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print(
        f"\n(1) verdict tables: {n} rows ({n_ans} answer pairs, {n - n_ans} full responses)\n"
        "    math-verify: verify(parse('\\boxed{'+gold+'}'), parse(response)), defaults; "
        "each case in a worker with a 10 s hard limit"
    )
    print(f"{'':28}{'reasonloop':>14}{'math-verify':>14}")
    print(f"{'accuracy':28}{acc_ours:>14.3f}{acc_mv:>14.3f}")
    print(f"{'false positives':28}{fp_o:>14}{fp_m:>14}")
    print(f"{'false negatives':28}{fn_o:>14}{fn_m:>14}")
    print(f"{'hung past 10 s':28}{0:>14}{hangs:>14}")
    mistakes = [
        (t, g, r, o == e)
        for (_kind, g, r, e), o, t in zip(rows, ours, theirs, strict=True)
        if t != e
    ]
    # Every false positive, then the first false negatives.
    for t, g, r, ours_ok in sorted(mistakes, key=lambda m: not m[0])[:24]:
        what = "FALSE POSITIVE" if t else "false negative"
        print(
            f"    math-verify {what}: gold {g!r} vs {r[-60:]!r} (ours: {'ok' if ours_ok else 'WRONG'})"
        )
    if table_s is not None:
        ours_s, mv_s, sent = table_s
        print(
            f"{'cases/s on these rows':28}{n / ours_s:>14.0f}{n / mv_s:>14.0f}"
            f"   (ours: {sent} sent to sympy workers; math-verify in-process)"
        )
    print(
        f"\n(2) MATH-500 throughput: {len(pairs)} pairs (500 gold vs \\boxed{{gold}}, 500 vs a perturbed copy)\n"
        f"    math-verify: this process, single-threaded, default timeouts; "
        f"reasonloop: MathGrader.grade_many, {args.workers} workers started, fresh cache; "
        f"best of {args.repeats}"
    )
    print(f"{'':28}{'reasonloop':>14}{'math-verify':>14}")
    print(f"{'seconds':28}{tp['ours_s']:>14.3f}{tp['mv_s']:>14.3f}")
    print(f"{'cases/s':28}{rate_o:>14.0f}{rate_m:>14.0f}")
    print(f"{'cases/s, one grade() a call':28}{rate_o1:>14.0f}{'':>14}")
    print(f"{'correct (expect 500)':28}{tp['ours_correct']:>14}{tp['mv_correct']:>14}")
    print(f"{'pairs sent to sympy workers':28}{tp['ours_to_workers']:>14}{'-':>14}")
    print(
        f"accuracy_ours={acc_ours:.3f} accuracy_math_verify={acc_mv:.3f} speedup={rate_o / rate_m:.1f}"
    )


if __name__ == "__main__":
    main()
