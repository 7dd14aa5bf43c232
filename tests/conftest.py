"""Fixtures for the whole suite: benchmark data (a miniature copy the tests write, and the real one
when it is there), and a closing summary of every skipped test with its reason.

Two kinds of data:

- ``bench_data``: a miniature data directory in the real layout (``tests/benchdata.py``), written
  once per session into a temp dir. Loader, registry, grader and end-to-end tests use it, so they
  run in any clone.
- ``real_data``: the full benchmarks (``$REASONLOOP_DATA``, else ``shared/data`` beside the repo).
  Only tests that check the real files themselves (row counts, the authors' GPQA archive, every
  HumanEval canonical solution) use it; they skip without it, and the skip reason says so.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections import Counter
from pathlib import Path

import pytest


def _load_benchdata():  # pytest runs with --import-mode=importlib: load the helper by path
    spec = importlib.util.spec_from_file_location(
        "reasonloop_tests_benchdata", Path(__file__).with_name("benchdata.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchdata = _load_benchdata()

_BESIDE_REPO = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_DATA_REASON = "needs the full benchmark data"


def real_data_dir() -> Path:
    """Where the real benchmarks would be: ``$REASONLOOP_DATA``, else ``../shared/data``."""
    env = os.environ.get("REASONLOOP_DATA")
    return Path(env) if env else _BESIDE_REPO


def _skip_without_real_data(path: Path, what: str) -> None:
    pytest.skip(
        f"{REAL_DATA_REASON} ({what}): none at {path}; set REASONLOOP_DATA to a copy of "
        "shared/data to run it"
    )


# --- the miniature data dir (always there) ----------------------------------------------------


@pytest.fixture(scope="session")
def bench_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a few rows of every benchmark, in the on-disk layout of ``shared/data``."""
    return benchdata.write_bench_data(tmp_path_factory.mktemp("bench-data"))


@pytest.fixture(scope="session")
def bench_rows() -> dict[str, list[dict]]:
    """Registry name -> the rows ``bench_data`` holds for it, in load order (dicts as written)."""
    return benchdata.BY_BENCHMARK


@pytest.fixture(scope="session")
def bench_gpqa() -> object:
    """The fixture archive's password and rows: ``.password``, ``.rows[variant]`` (CSV dicts)."""

    class Gpqa:
        password = benchdata.GPQA_PASSWORD
        rows = benchdata.GPQA
        members = staticmethod(benchdata.gpqa_members)
        csv = staticmethod(benchdata.gpqa_csv)
        write_zip = staticmethod(benchdata.write_zipcrypto)

    return Gpqa


# --- the real data (may be absent) ------------------------------------------------------------


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The full benchmarks; skips (saying why) when they are not there."""
    path = real_data_dir()
    if not (path / "math500" / "test.jsonl").is_file():
        _skip_without_real_data(path, "checks the real files")
    return path


@pytest.fixture(scope="session")
def real_gpqa_password(real_data: Path) -> str:
    """The authors' published password: from the environment or the data's own gpqa/README.md
    (so the repo never holds it)."""
    password = os.environ.get("REASONLOOP_GPQA_PASSWORD")
    if password:
        return password
    readme = real_data / "gpqa" / "README.md"
    match = re.search(r"Password[^`\n]*`([^`]+)`", readme.read_text()) if readme.is_file() else None
    if not match:
        pytest.skip(
            f"{REAL_DATA_REASON} (the authors' GPQA archive): no password in {readme}; "
            "set REASONLOOP_GPQA_PASSWORD"
        )
    return match.group(1)


# --- a stand-in student for the recipe runner ---------------------------------------------------

HALF_RIGHT_WRONG = (
    "<|begin_of_thought|>\nno idea\n<|end_of_thought|>\n\n"
    "<|begin_of_solution|>\nAnswer: \\boxed{1+1=2}\n<|end_of_solution|>"
)


class _HalfRightStudent:
    """Even samples solve the Countdown puzzle (the programmatic teacher's answer), odd ones give
    :data:`HALF_RIGHT_WRONG`."""

    def __init__(self, spec: str):
        from reasonloop.engines.countdown import CountdownTeacher

        self.spec, self.model = spec, spec.rsplit("/", 1)[-1]
        self.teacher = CountdownTeacher()

    def generate(self, requests):
        from dataclasses import replace

        from reasonloop.engines.base import Result, Sample

        out = []
        for req in requests:
            good = self.teacher.generate([replace(req, n=1)])[0].samples[0].text
            texts = [good if i % 2 == 0 else HALF_RIGHT_WRONG for i in range(req.n)]
            samples = [Sample(t, len(t.split()), "stop", (-0.5,) * len(t.split())) for t in texts]
            out.append(Result(tuple(samples)))
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def half_right_student(monkeypatch: pytest.MonkeyPatch) -> str:
    """The recipe runner's ``hf:`` students sample half right: even samples solve the puzzle,
    odd ones give the returned wrong response (every other engine opens as usual)."""
    from reasonloop.recipe import runner

    opened = runner.open_engine
    monkeypatch.setattr(
        runner,
        "open_engine",
        lambda spec, **kw: (
            _HalfRightStudent(spec) if spec.startswith("hf:") else opened(spec, **kw)
        ),
    )
    return HALF_RIGHT_WRONG


# --- the closing skip summary -----------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """One block that counts the skipped tests by reason, so a run that passed by skipping
    says so at its end (after ``-ra``'s short summary, which lists them one by one)."""
    result = yield
    _skip_summary(terminalreporter)
    return result


def _skip_summary(terminalreporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        terminalreporter.write_line("skipped: 0")
        return
    reasons: Counter[str] = Counter()
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    terminalreporter.section("skips by reason")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:4d}  {reason}")
    data = sum(c for r, c in reasons.items() if r.startswith(REAL_DATA_REASON))
    terminalreporter.write_line(
        f"skipped: {len(skipped)} ({data} for lack of the full benchmark data, "
        f"{len(skipped) - data} for other reasons)"
    )
