"""A store writer for the crash and concurrency tests, run as a subprocess.

    python _writer.py STORE N_BATCHES BATCH_SIZE [--stage S] [--sleep SECONDS] [--die-before-commit K]

Appends ``N_BATCHES`` batches of ``BATCH_SIZE`` deterministic trajectories (batch ``b`` holds samples
``b * BATCH_SIZE ...``, with ``{"batch": b}`` as meta), printing ``b`` after batch ``b`` is
committed. ``--die-before-commit K`` makes the process SIGKILL itself just as the COMMIT of batch
``K`` starts, i.e. with the whole batch inserted but not committed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from reasonloop.records import Generator, Trajectory, Verdict
from reasonloop.store import Store

GEN = Generator(engine="llamacpp:model.gguf", model="model", temperature=0.8, max_tokens=64, seed=7)


def batch(b: int, size: int) -> list[Trajectory]:
    out = []
    for j in range(size):
        i = b * size + j
        correct = i % 3 == 0
        out.append(
            Trajectory(
                problem_id=f"p{i % 13}",
                text=f"trajectory {i} " + "reasoning " * 100,
                verdict=Verdict(correct, str(i), "correct" if correct else "wrong"),
                tokens=i,
                generator=GEN,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("n_batches", type=int)
    ap.add_argument("batch_size", type=int)
    ap.add_argument("--stage", default="explore")
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--die-before-commit", type=int, default=-1)
    args = ap.parse_args()
    with Store(args.store) as store:
        if args.die_before_commit >= 0:
            commits = 0

            def trace(sql: str) -> None:
                nonlocal commits
                if sql == "COMMIT":
                    if commits == args.die_before_commit:
                        os.kill(os.getpid(), signal.SIGKILL)
                    commits += 1

            store.conn.set_trace_callback(trace)
        for b in range(args.n_batches):
            trajs = batch(b, args.batch_size)
            store.add_trajectories(
                trajs,
                stage=args.stage,
                sample_indices=range(b * args.batch_size, (b + 1) * args.batch_size),
                meta={"batch": b},
            )
            sys.stdout.write(f"{b}\n")
            sys.stdout.flush()
            if args.sleep:
                time.sleep(args.sleep)


if __name__ == "__main__":
    main()
