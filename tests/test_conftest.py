"""The suite's own plumbing (tests/conftest.py): the closing skip summary and the real-data skip."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

SAMPLE = """
import pytest

def test_needs_real_data(real_data):
    pass

def test_needs_a_tool():
    pytest.skip("no such tool (install it)")

@pytest.mark.parametrize("n", [1, 2])
def test_runs(bench_data, n):
    assert (bench_data / "gsm8k" / "test.jsonl").is_file()
"""


def test_a_run_ends_with_its_skips_counted_by_reason(tmp_path):
    for name in ("conftest.py", "benchdata.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "REASONLOOP_DATA"}
    env["REASONLOOP_DATA"] = str(tmp_path / "no-data")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "skips by reason" in line)
    assert lines[start + 1 : start + 4] == [
        f"   1  needs the full benchmark data (checks the real files): none at "
        f"{tmp_path / 'no-data'}; set REASONLOOP_DATA to a copy of shared/data to run it",
        "   1  no such tool (install it)",
        "skipped: 2 (1 for lack of the full benchmark data, 1 for other reasons)",
    ]
    assert lines[-1].startswith("2 passed, 2 skipped")  # after -ra's list, before the totals
