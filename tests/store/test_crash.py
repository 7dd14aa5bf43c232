"""Crash safety and concurrency with real processes: SIGKILL mid-run, readers beside a writer."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reasonloop
from reasonloop.store import Store

WRITER = Path(__file__).with_name("_writer.py")
SRC = str(Path(reasonloop.__file__).parents[1])
BATCH = 50


def writer(path: Path, n_batches: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(n_batches), str(BATCH), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_writer(path: Path, n_batches: int, *extra: str) -> None:
    proc = writer(path, n_batches, *extra)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.split() == [str(b) for b in range(n_batches)]


def batches_of(path: Path) -> dict[int, int]:
    """Rows per committed batch (read through a fresh connection, as after a restart)."""
    with Store(path, create=False) as store:
        counts = collections.Counter(s.meta["batch"] for s in store.stored())
        assert len(store) == sum(counts.values())
    return dict(counts)


def ids_of(path: Path) -> list[str]:
    with Store(path, create=False) as store:
        return sorted(t.id for t in store.trajectories())


def assert_whole_prefix(counts: dict[int, int]) -> None:
    """Every committed batch is whole, and they are batches 0..k-1 (nothing later slipped in)."""
    assert set(counts.values()) <= {BATCH}, counts
    assert sorted(counts) == list(range(len(counts)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[str]:
    """The ids of an uninterrupted run of 40 batches."""
    path = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    run_writer(path, 40)
    return ids_of(path)


def test_sigkill_from_outside_then_rerun_gives_the_uninterrupted_rows(tmp_path, reference):
    path = tmp_path / "pool.sqlite"
    proc = writer(path, 40, "--sleep", "0.01")
    assert proc.stdout is not None
    seen = [proc.stdout.readline().strip() for _ in range(5)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen == ["0", "1", "2", "3", "4"]
    assert proc.returncode == -signal.SIGKILL

    counts = batches_of(path)
    assert_whole_prefix(counts)
    assert 5 <= len(counts) < 40  # killed part-way, nothing acknowledged was lost

    run_writer(path, 40)
    assert ids_of(path) == reference
    assert batches_of(path) == {b: BATCH for b in range(40)}


def test_sigkill_inside_a_transaction_loses_exactly_that_batch(tmp_path, reference):
    path = tmp_path / "pool.sqlite"
    # Batch 3 is fully inserted when the process dies at the start of its COMMIT.
    proc = writer(path, 40, "--die-before-commit", "3")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.split() == ["0", "1", "2"]
    assert batches_of(path) == {0: BATCH, 1: BATCH, 2: BATCH}
    with Store(path) as store:  # opens cleanly for writing, too
        assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    run_writer(path, 40)
    assert ids_of(path) == reference


def test_reader_beside_a_writer_sees_only_whole_batches(tmp_path):
    path = tmp_path / "pool.sqlite"
    Store(path).close()  # created first, so the reader can open it read-only at once
    n_batches = 60
    proc = writer(path, n_batches, "--sleep", "0.005")
    seen: list[int] = []
    with Store(path, readonly=True) as reader:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            n = len(reader)
            assert n % BATCH == 0
            seen.append(n)
            # A long read across several fetches sees one snapshot: a whole number of batches.
            listed = sum(1 for _ in reader.trajectories(stage="explore"))
            assert listed % BATCH == 0 and listed >= n
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(reader) == n_batches * BATCH
    assert seen == sorted(seen)  # never goes backwards
    assert any(0 < n < n_batches * BATCH for n in seen)  # really read while it was writing


def test_two_writer_processes_share_the_store(tmp_path):
    path = tmp_path / "pool.sqlite"
    Store(path).close()
    a = writer(path, 20, "--stage", "a")
    b = writer(path, 20, "--stage", "b")
    for proc in (a, b):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Store(path) as store:
        assert store.count(stage="a") == store.count(stage="b") == 20 * BATCH
        assert len(store) == 40 * BATCH
