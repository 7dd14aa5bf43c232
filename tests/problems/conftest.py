"""Fixtures for the problem-set tests: the shared benchmark data and the GPQA password.

The data lies beside the repo (``../shared/data``) or wherever ``REASONLOOP_DATA`` points; tests
that need it skip, saying why, when it is absent. The GPQA password is read from the environment
or from the data's own ``gpqa/README.md`` (where the authors' published password is recorded), so
the repo never holds it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

_BESIDE_REPO = Path(__file__).parents[2].parent / "shared" / "data"


def _data_dir() -> Path:
    env = os.environ.get("REASONLOOP_DATA")
    return Path(env) if env else _BESIDE_REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _data_dir()
    if not (path / "math500" / "test.jsonl").is_file():
        pytest.skip(f"benchmark data not found at {path} (set REASONLOOP_DATA)")
    return path


@pytest.fixture(scope="session")
def gpqa_password(shared_data: Path) -> str:
    password = os.environ.get("REASONLOOP_GPQA_PASSWORD")
    if password:
        return password
    readme = shared_data / "gpqa" / "README.md"
    match = re.search(r"Password[^`\n]*`([^`]+)`", readme.read_text()) if readme.is_file() else None
    if not match:
        pytest.skip("no GPQA password (set REASONLOOP_GPQA_PASSWORD)")
    return match.group(1)
