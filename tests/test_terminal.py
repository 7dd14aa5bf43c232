"""The command log file (terminal.log_to) never creates a directory: records wait until the command
has made it, and a command refused before that leaves nothing behind."""

import logging

from reasonloop.terminal import _HeadedFileHandler


def record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("reasonloop.x", logging.INFO, __file__, 1, msg, None, None)


def test_records_wait_for_the_directory_then_arrive_in_order(tmp_path):
    out = tmp_path / "out"
    h = _HeadedFileHandler(out / "eval.log")
    h.setFormatter(logging.Formatter("%(message)s"))
    h.emit(record("engine started"))
    h.emit(record("scorer loaded"))
    assert not out.exists()  # the handler made nothing
    out.mkdir()  # the command commits to its run
    h.emit(record("problem 1 done"))
    h.close()
    lines = (out / "eval.log").read_text().splitlines()
    assert lines[0].startswith("--- ") and lines[1:] == [
        "engine started",
        "scorer loaded",
        "problem 1 done",
    ]


def test_a_command_refused_before_its_directory_exists_leaves_nothing(tmp_path):
    out = tmp_path / "fresh"
    h = _HeadedFileHandler(out / "eval.log")
    h.emit(record("llama.cpp CPU backend: variant zen4"))
    h.close()
    assert not out.exists()
