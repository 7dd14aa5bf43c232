"""The hostile table (hostile_table.py) against code grading: exact verdicts, nothing outside
changed, no process left, the grader alive for the next row; as the user running the suite and,
when that is root, again as an ordinary user."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reasonloop.verify.sandbox import bwrap_problem

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import hostile_table  # noqa: E402

pytestmark = pytest.mark.skipif(
    bwrap_problem() is not None, reason=f"no code sandbox here: {bwrap_problem()}"
)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    o = hostile_table.Outside(tmp_path_factory.mktemp("hostile"))
    yield o
    o.close()


ROWS = [  # rows that run into the wall-time limit take its 5 s: slow
    pytest.param(r, id=r[0], marks=[pytest.mark.slow] if r[3] == "timeout" else [])
    for r in hostile_table.ROWS
]


@pytest.mark.parametrize("row", ROWS)
def test_hostile_row(row, outside):
    got, failures = hostile_table.run_row(row, outside)
    assert failures == [], f"{row[0]}: {got}"


def test_the_table_covers_every_class_of_the_issue():
    names = " ".join(r[0] for r in hostile_table.ROWS)
    for what in (
        "fork_exec",
        "os.system",
        "subprocess",
        "ctypes",
        "socket",
        "tamper",
        "dir_fd",
        "/proc/self/fd",
        "sqlite",
        "fifo",
        "by pid",
        "pidfd",
        "setsid",
        "fork bomb",
        "memory bomb",
        "cpu bomb",
        "raise rlimits",
        "AlwaysEqual",
        "printed markers",
        "atexit",
        "builtins",
        "1 MB",
    ):
        assert what in names, what
    verdicts = {r[3] for r in hostile_table.ROWS}
    assert verdicts == {"correct", "error", "memory", "timeout"}


SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _user_python(runuser: str, user: str) -> str | None:
    """An interpreter ``user`` can run (the suite's may live under a private /root)."""
    for python in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        if not os.path.exists(python):
            continue
        probe = [runuser, "-u", user, "--", python, "-c", "import json, sqlite3"]
        if subprocess.run(probe, capture_output=True, cwd="/").returncode == 0:
            return python
    return None


@pytest.mark.slow
@pytest.mark.skipif(os.getuid() != 0, reason="run as root: this reruns the table as a user")
def test_hostile_table_as_an_ordinary_user(tmp_path):
    user = os.environ.get("REASONLOOP_TEST_USER", "rltest")
    runuser, useradd = shutil.which("runuser", path=SBIN), shutil.which("useradd", path=SBIN)
    if runuser is None:
        pytest.skip("needs runuser (util-linux)")
    try:
        pwd.getpwnam(user)
    except KeyError:
        if useradd is None:
            pytest.skip(f"no user {user!r} and no useradd to create one")
        subprocess.run([useradd, "--no-create-home", "--shell", "/usr/sbin/nologin", user])
    python = _user_python(runuser, user)
    if python is None:
        pytest.skip(f"no Python that user {user!r} can run")
    home = tmp_path / "home"
    home.mkdir()
    shutil.chown(home, user)
    # the user reads the table and reasonloop from a world-readable copy: the checkout itself may
    # sit in a directory only root can enter (a CI clone under `mktemp -d`)
    share = Path(tempfile.mkdtemp(prefix="reasonloop-hostile-"))
    try:
        shutil.copytree(Path(hostile_table.__file__).resolve().parents[2] / "src", share / "src")
        shutil.copy(hostile_table.__file__, share / "hostile_table.py")
        for p in [share, *share.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "PYTHONPATH": str(share / "src"),
            "TMPDIR": str(home),
        }
        run = subprocess.run(
            [runuser, "-u", user, "--", python, "-B", str(share / "hostile_table.py")],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(home),
            timeout=900,
        )
    finally:
        shutil.rmtree(share, ignore_errors=True)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert f"uid {pwd.getpwnam(user).pw_uid}," in report
    assert f"{len(hostile_table.ROWS)}/{len(hostile_table.ROWS)} rows hold" in report
