"""Benchmark ``generate`` on Ray against one process: rows per second, and Ray's cost per task.

Usage::

    python benchmarks/ray_bench.py [--limit N] [--max-tokens T] [--actors A] [--tasks M]

Three runs of the same ``generate`` (Countdown-easy's first ``--limit`` problems, one sample
each, ``--max-tokens`` tokens at most, batches of ``--batch`` problems) on the default engine
(llama.cpp, SmolLM2-135M): one process with the engine on every core (what ``generate`` does), the
same with one llama.cpp thread (what each actor has), and ``--ray local`` with ``--actors`` engine
actors of one CPU each (a cluster of ``--actors`` CPUs started on 127.0.0.1). Each is timed from
the first batch to the last row stored, with the engines already loaded; the start (engine load;
cluster and actors) is reported apart. The rows of the runs are compared (ids and texts).

The per-task overhead: ``--tasks`` one-problem batches of the model-free ``countdown`` engine,
drawn in this process and on the actors; the extra seconds per batch on Ray (dispatch,
serialisation, the round trip) over the actors' count.

The last line is ``rows_per_s_single=A rows_per_s_single_1thread=A1 rows_per_s_ray=B
ray_over_single=B/A task_overhead_ms=C start_s_single=D start_s_ray=E same_rows=true|false``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.engines import load_engine  # noqa: E402
from reasonloop.generate import SamplingSettings, generate  # noqa: E402
from reasonloop.problems import resolve_problems  # noqa: E402
from reasonloop.scale.ray import RayExecutor, import_ray  # noqa: E402
from reasonloop.store import open_store  # noqa: E402


def rows(store) -> list[tuple[str, str]]:
    return sorted((t.id, t.text) for t in store.trajectories())


def timed_generate(engine, executor, problems, s, batch, path):
    with open_store(path) as st:
        t0 = time.perf_counter()
        summary = generate(engine, problems, st, s, batch_problems=batch, executor=executor)
        seconds = time.perf_counter() - t0
        assert summary.new_samples == len(problems) * s.n, summary
        return seconds, rows(st)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=40)
    args = ap.parse_args()
    ray = import_ray()
    problems = resolve_problems("countdown-easy", limit=args.limit)
    s = SamplingSettings(n=1, temperature=0.7, max_tokens=args.max_tokens, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="ray_bench_"))

    t0 = time.perf_counter()
    engine = load_engine("default")
    start_single = time.perf_counter() - t0
    single_s, single_rows = timed_generate(engine, None, problems, s, args.batch, tmp / "one.db")
    engine.close()
    # the same process with one llama.cpp thread: what each actor runs with
    engine = load_engine("default", n_threads=1)
    one_s, one_rows = timed_generate(engine, None, problems, s, args.batch, tmp / "one1.db")
    engine.close()

    t0 = time.perf_counter()
    ex = RayExecutor("local", engine="default", actors=args.actors, cpus=1)
    ex.start()
    start_ray = time.perf_counter() - t0
    try:
        ray_s, ray_rows = timed_generate(None, ex, problems, s, args.batch, tmp / "ray.db")
    finally:
        ex.close()

    # per-task overhead: the same one-problem batches of the model-free engine, here and on Ray
    cd = resolve_problems("countdown-easy", limit=args.tasks)
    cs = SamplingSettings(n=1, max_tokens=64, seed=0)
    here_s, _ = timed_generate(load_engine("countdown"), None, cd, cs, 1, tmp / "cd_one.db")
    ex = RayExecutor("local", engine="countdown", actors=args.actors, cpus=1)
    ex.start()
    try:
        there_s, _ = timed_generate(None, ex, cd, cs, 1, tmp / "cd_ray.db")
    finally:
        ex.close()
    overhead_ms = 1000 * (there_s - here_s / args.actors) * args.actors / args.tasks
    ray.shutdown()

    n = len(single_rows)
    print(f"problems={len(problems)} max_tokens={args.max_tokens} batch={args.batch}")
    print(f"single process: {n} rows in {single_s:.2f}s (engine load {start_single:.2f}s)")
    print(f"single process, 1 llama.cpp thread: {len(one_rows)} rows in {one_s:.2f}s")
    print(
        f"ray, {args.actors} actors: {len(ray_rows)} rows in {ray_s:.2f}s "
        f"(cluster + actors {start_ray:.2f}s)"
    )
    print(f"countdown, {args.tasks} one-problem tasks: {here_s:.3f}s here, {there_s:.3f}s on ray")
    a, b = n / single_s, len(ray_rows) / ray_s
    print(
        f"rows_per_s_single={a:.3f} rows_per_s_single_1thread={n / one_s:.3f} "
        f"rows_per_s_ray={b:.3f} ray_over_single={b / a:.2f} "
        f"task_overhead_ms={overhead_ms:.1f} start_s_single={start_single:.1f} "
        f"start_s_ray={start_ray:.1f} same_rows={str(single_rows == ray_rows == one_rows).lower()}"
    )


if __name__ == "__main__":
    main()
