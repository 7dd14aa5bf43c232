"""A long command's terminal holds only our progress and summary: library warnings, HF progress bars
and the trainer's metric dicts go to the command's log file, and come back with ``--verbose``.

Runs ``reasonloop train sft`` for 2 steps on a tiny saved model in a subprocess (a fresh
interpreter, as a user runs it: the libraries are configured as they are first imported)."""

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("trl")

from reasonloop.format import render  # noqa: E402

pytestmark = pytest.mark.slow

TQDM = re.compile(r"\d+%\|[^|]*\|")  # "100%|██████████|": a tqdm bar, whatever its unit


def train_sft(tmp_path, out: str, *flags: str) -> subprocess.CompletedProcess:
    args = [*flags, "train", "sft", "--model", str(tmp_path / "base")]
    args += ["--data", str(tmp_path / "sft.jsonl"), "--out", str(tmp_path / out)]
    args += ["--max-steps", "2", "--batch-size", "2", "--max-length", "128"]
    return subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def tiny_run(tmp_path):
    from reasonloop.recipe.tiny import build_tiny

    build_tiny(tmp_path / "base", max_positions=256)
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"add {i} and 1"},
                {"role": "assistant", "content": render(f"{i}+1", f"answer {i + 1}")},
            ]
        }
        for i in range(4)
    ]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def captured_warnings(log: str) -> list[str]:
    """The first line of every Python warning the log file holds ("...: UserWarning: text")."""
    return [m.group(1) for m in re.finditer(r"WARNING py\.warnings: \S+ (\w+Warning: .+)", log)]


def test_quiet_by_default_everything_in_the_log_and_back_with_verbose(tiny_run):
    quiet = train_sft(tiny_run, "quiet")
    assert quiet.returncode == 0, quiet.stderr
    terminal = quiet.stdout + quiet.stderr
    assert "Warning" not in terminal and "WARNING" not in terminal
    assert "{'" not in terminal  # no metric dict ({'loss': ...}, {'train_runtime': ...})
    assert not TQDM.search(terminal) and "it/s]" not in terminal
    assert re.fullmatch(r"sft: 2 steps, train loss \d+\.\d{4}; saved \S+quiet\n", quiet.stdout), (
        quiet.stdout
    )
    assert quiet.stderr == ""  # no progress display either: stderr is not a terminal here

    log = (tiny_run / "quiet" / "train.log").read_text()
    assert log.startswith("--- ") and " reasonloop train sft --model " in log.splitlines()[0]
    caught = captured_warnings(log)
    assert caught, log  # torch's and transformers' Python warnings were captured, not printed
    assert "INFO reasonloop.train.callbacks: step 2/2: " in log and "train_loss=" in log

    loud = train_sft(tiny_run, "loud", "--verbose")
    assert loud.returncode == 0, loud.stderr
    shown = " ".join((loud.stdout + loud.stderr).split())  # rich wraps long records
    for warning in caught:  # every warning the quiet run kept in its log is on the terminal
        assert " ".join(warning.split()[:4]) in shown, warning
    assert TQDM.search(loud.stderr)  # HF's progress bars are back
    assert "step 2/2: " in shown and "train_loss=" in shown  # and the trainer's metrics
    # the verbose run's log file holds the same warnings
    assert captured_warnings((tiny_run / "loud" / "train.log").read_text()) == caught


HOOKED = """
import logging, sys
from reasonloop import terminal
terminal.setup(verbose=sys.argv[1] == "verbose")
import datasets, huggingface_hub.utils, transformers.utils.logging as tl
print(
    huggingface_hub.utils.are_progress_bars_disabled(),
    sys.modules["datasets.utils.tqdm"].are_progress_bars_disabled(),
    not tl.is_progress_bar_enabled(),
    [(n, logging.getLogger(n).handlers, logging.getLogger(n).propagate)
     for n in ("transformers", "datasets")],
)
"""


@pytest.mark.parametrize(
    "mode,bars_off", [("quiet", "True True True"), ("verbose", "False False False")]
)
def test_libraries_are_configured_as_they_are_first_imported(mode, bars_off):
    r = subprocess.run(
        [sys.executable, "-c", HOOKED, mode], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    # their own stderr handlers are gone: their records reach ours (the terminal or the log file)
    assert r.stdout == f"{bars_off} [('transformers', [], True), ('datasets', [], True)]\n"
