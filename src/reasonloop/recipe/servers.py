"""Model servers a run starts for itself (``launch.serve``, ``launch.teacher_serve``).

A server is a command (``vllm serve ...``) started in its own process group, waited for until its
``/models`` URL answers, and stopped (SIGTERM, then SIGKILL) when the run moves on, so the
accelerator is free for training. It does not restart a server that dies mid-stage: the stage fails
with the server's log named, and the rerun starts it again.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from reasonloop.errors import EngineError


@dataclass(frozen=True, slots=True)
class Serve:
    """A server a step needs: how to start it, the engine spec that reaches it, its health URL."""

    command: str
    engine: str
    ready_url: str


def ready_url(spec: str) -> str:
    """The ``/models`` URL of an ``openai:URL#MODEL`` spec's first endpoint."""
    url = spec.removeprefix("openai:").split(",")[0].split("#")[0].rstrip("/")
    return f"{url}/models"


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a local server's URL
            return resp.status == 200
    except (OSError, ValueError):
        return False


class ServerProcess:
    """One running server: :meth:`start` waits until it answers; :meth:`stop` ends its group."""

    def __init__(self, serve: Serve, logfile: Path):
        self.serve = serve
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None

    def start(
        self,
        timeout: float,
        waiting: Callable[[str], AbstractContextManager] | None = None,
        poll: float = 2.0,
    ) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("w") as fh:
            self.proc = subprocess.Popen(
                shlex.split(self.serve.command),
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its workers
            )
        deadline = time.monotonic() + timeout
        note = f"waiting for {self.serve.ready_url} (log {self.logfile})"
        with waiting(note) if waiting else _nothing():
            while not answers(self.serve.ready_url):
                if self.proc.poll() is not None:
                    rc = self.proc.returncode
                    self.stop()
                    raise EngineError(
                        f"the server exited with status {rc} before answering: "
                        f"{self.serve.command} (see {self.logfile})"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise EngineError(
                        f"the server did not answer {self.serve.ready_url} within {timeout:.0f}s "
                        f"(launch.ready_timeout; see {self.logfile})"
                    )
                time.sleep(poll)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
