"""The local Ray cluster the scale tests run on: 2 worker CPUs on 127.0.0.1, no dashboard, started
per test module and shut down after it (a module that kills actors leaves nothing to the next)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    # the workers import reasonloop from this checkout
    os.environ["PYTHONPATH"] = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="WARNING",
    )
    yield
    ray.shutdown()
