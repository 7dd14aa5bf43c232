"""A pool of persistent worker processes that runs calls under a wall-time limit.

The limit is enforced from the parent: a call that runs past it has its worker killed
(``SIGKILL``) and a fresh worker started in its place, so a computation stuck in C code (a sympy
power tower, a big-integer power) cannot hang the caller. No ``signal.alarm`` is used anywhere,
so the pool works from any thread.

Workers are fresh interpreters (``python -c ...`` through :mod:`subprocess`, not
:mod:`multiprocessing`), so they inherit no locks or threads and never re-import the caller's
``__main__`` script: scripts without an ``if __name__ == "__main__":`` guard work. They get the
parent's ``sys.path``, import the modules named in ``preload`` once, optionally cap their address
space (``memory_mb``), and then serve calls one at a time over a pipe. The function of a call is
pickled by reference, so it must be importable by module and name (not a lambda, not defined in
``__main__``). A call's clock starts when it is handed to a ready worker, so time spent starting
or restarting workers never counts against it.

What it is not: a sandbox. Workers run with the parent's permissions; use it for trusted code on
untrusted *data* (grading), not for untrusted code.

Example::

    with WorkerPool(workers=2, timeout=3.0) as pool:
        results = pool.map(pow, [(2, 10), (3, 4)])
    [r.value for r in results]  # [1024, 81]
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from reasonloop.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["CallResult", "WorkerPool"]

# Give up on a worker that has not said "ready" after this long (imports hang, machine swapping).
_START_LIMIT_S = 120.0
# After this many workers in a row die before becoming ready, calls fail instead of retrying.
_MAX_START_FAILURES = 3
_BOOT = "import sys; from reasonloop.verify.pool import _serve; _serve(sys.argv[1:])"


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one call: ``ok`` with ``value``, or not ok with ``timed_out`` / ``error``."""

    ok: bool
    value: Any = None
    timed_out: bool = False
    error: str | None = None


def _serve(argv: Sequence[str]) -> None:
    """Body of a worker process: set limits, import, say ready, serve calls until told to stop.

    ``argv``: the address-space cap in MiB (0: none), an initializer ``module:function`` ("-":
    none), then module names to preload. The call channel is the original stdout; stdout itself
    is redirected to stderr so stray prints cannot corrupt it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    out_fd = os.dup(1)
    os.dup2(2, 1)
    reader = Connection(os.dup(0), writable=False)
    writer = Connection(out_fd, readable=False)
    memory_mb = int(argv[0]) if argv else 0
    init = argv[1] if len(argv) > 1 else "-"
    if memory_mb > 0:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):  # not on this platform: run without a cap
            pass
    for name in argv[2:]:
        # A failed preload surfaces again, with its message, at call time.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if init != "-":
        module, _, func = init.partition(":")
        with contextlib.suppress(Exception):  # warm-up only: a failure just means a cold worker
            getattr(importlib.import_module(module), func)()
    try:
        writer.send(("ready", os.getpid()))
        while True:
            data = reader.recv_bytes()
            try:
                msg = pickle.loads(data)
            except Exception as exc:  # e.g. the function's module does not import here
                writer.send(("err", f"call could not be read: {type(exc).__name__}: {exc}"[:500]))
                continue
            if msg is None:
                return
            fn, args = msg
            try:
                reply: tuple[str, Any] = ("ok", fn(*args))
            except MemoryError:
                reply = ("err", "MemoryError")
            except BaseException as exc:  # the call's failure is data for the parent
                reply = ("err", f"{type(exc).__name__}: {exc}"[:500])
            try:
                writer.send(reply)
            except Exception as exc:  # an unpicklable result
                writer.send(("err", f"result could not be sent: {type(exc).__name__}: {exc}"[:500]))
    except (EOFError, OSError):
        return


class _Slot:
    """One worker process and its two pipe ends."""

    __slots__ = ("deadline", "proc", "reader", "started", "state", "task", "writer")

    def __init__(self, proc: subprocess.Popen, reader: Connection, writer: Connection):
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.state = "starting"  # starting | idle | busy
        self.task = -1
        self.deadline = 0.0
        self.started = time.monotonic()


class WorkerPool:
    """Persistent worker processes evaluating picklable calls under a per-call time limit.

    ``workers``: number of processes; ``timeout``: default seconds per call; ``preload``: module
    names every worker imports before it reports ready; ``init``: a ``"module:function"`` every
    worker calls after that (warm caches, so first calls are not slow); ``memory_mb``:
    address-space cap per worker (None: no cap). Workers start lazily on the first call, or with
    :meth:`start`. Safe to share between threads (calls are serialised).
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        timeout: float = 3.0,
        preload: Sequence[str] = (),
        init: str | None = None,
        memory_mb: int | None = None,
    ):
        if workers < 1:
            raise ConfigError(f"must be >= 1, got {workers}", field="workers")
        if not timeout > 0:
            raise ConfigError(f"must be > 0 seconds, got {timeout}", field="timeout")
        self.workers = int(workers)
        self.timeout = float(timeout)
        self.preload = tuple(preload)
        if init is not None and not (":" in init and all(init.partition(":")[::2])):
            raise ConfigError(f"must be 'module:function', got {init!r}", field="init")
        self.init = init
        self.memory_mb = memory_mb
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._start_failures = 0
        self._closed = False
        self.kills = 0  # workers killed for running past their limit (for tests and stats)

    # -- lifecycle -------------------------------------------------------------------------
    def _spawn(self) -> _Slot:
        env = dict(os.environ)
        paths = [p for p in sys.path if p and isinstance(p, str)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        argv = [str(int(self.memory_mb or 0)), self.init or "-", *self.preload]
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        reader = Connection(os.dup(proc.stdout.fileno()), writable=False)
        writer = Connection(os.dup(proc.stdin.fileno()), readable=False)
        proc.stdout.close()
        proc.stdin.close()
        return _Slot(proc, reader, writer)

    def start(self, wait_ready: bool = False, limit: float = _START_LIMIT_S) -> None:
        """Start the workers now; with ``wait_ready`` block until all have imported ``preload``."""
        with self._lock:
            self._fill()
            if wait_ready:
                end = time.monotonic() + limit
                while any(s.state == "starting" for s in self._slots) and time.monotonic() < end:
                    if self._start_failures >= _MAX_START_FAILURES:
                        break
                    self._poll(min(0.5, max(0.0, end - time.monotonic())), results=None)
                    self._fill()

    def _fill(self) -> None:
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        while len(self._slots) < self.workers and self._start_failures < _MAX_START_FAILURES:
            self._slots.append(self._spawn())

    def _kill(self, slot: _Slot) -> None:
        with contextlib.suppress(Exception):
            slot.proc.kill()
        with contextlib.suppress(Exception):
            slot.proc.wait(1.0)
        for conn in (slot.reader, slot.writer):
            with contextlib.suppress(Exception):
                conn.close()
        if slot in self._slots:
            self._slots.remove(slot)

    def close(self) -> None:
        """Stop every worker (politely, then by force). The pool cannot be used afterwards."""
        with self._lock:
            self._closed = True
            for slot in list(self._slots):
                with contextlib.suppress(Exception):
                    if slot.state == "idle":
                        slot.writer.send(None)
            for slot in list(self._slots):
                with contextlib.suppress(Exception):
                    slot.proc.wait(0.2 if slot.state == "idle" else 0.0)
                self._kill(slot)
            self._slots.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed:
                self.close()

    # -- calls -----------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> CallResult:
        """Run ``fn(*args)`` in a worker; never raises for what the call does."""
        return self.map(fn, [args], timeout=timeout)[0]

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[tuple[Any, ...]],
        *,
        timeout: float | None = None,
    ) -> list[CallResult]:
        """``fn(*item)`` for every item, spread over the workers; results in input order.

        Each call gets ``timeout`` seconds (the pool's default when None) from the moment a
        ready worker receives it; past that its worker is killed and the result is
        ``CallResult(ok=False, timed_out=True)``.
        """
        limit = self.timeout if timeout is None else float(timeout)
        if not items:
            return []
        results: list[CallResult | None] = [None] * len(items)
        with self._lock:
            self._start_failures = 0
            try:
                self._run(fn, items, limit, results)
            finally:
                # Interrupted (KeyboardInterrupt): workers still busy hold stale calls; drop them.
                for slot in [s for s in self._slots if s.state == "busy"]:
                    self._kill(slot)
        return [r if r is not None else CallResult(False, error="lost") for r in results]

    def _run(
        self,
        fn: Callable[..., Any],
        items: Sequence[tuple[Any, ...]],
        limit: float,
        results: list[CallResult | None],
    ) -> None:
        self._fill()
        todo = deque(range(len(items)))
        while todo or any(s.state == "busy" for s in self._slots):
            if self._start_failures >= _MAX_START_FAILURES and not any(
                s.state in ("idle", "busy") for s in self._slots
            ):
                err = CallResult(False, error="worker processes fail to start")
                for i in todo:
                    results[i] = err
                return
            for slot in list(self._slots):
                if slot.state != "idle" or not todo:
                    continue
                i = todo.popleft()
                try:
                    payload = pickle.dumps((fn, items[i]))
                except Exception as exc:  # an unpicklable call: the caller's bug, reported
                    results[i] = CallResult(False, error=f"could not send call: {exc}")
                    continue
                try:
                    slot.writer.send_bytes(payload)
                except OSError:
                    todo.appendleft(i)
                    self._died(slot, None)
                    continue
                slot.state, slot.task = "busy", i
                slot.deadline = time.monotonic() + limit
            self._fill()
            busy = [s.deadline for s in self._slots if s.state == "busy"]
            wait_s = max(0.0, min(busy) - time.monotonic()) if busy else 0.5
            self._poll(wait_s, results)
            self._reap_overdue(results)

    def _poll(self, wait_s: float, results: list[CallResult | None] | None) -> None:
        """Wait up to ``wait_s`` for messages from workers and handle them."""
        live = {s.reader: s for s in self._slots if s.state in ("busy", "starting")}
        if not live:
            time.sleep(min(wait_s, 0.05))
            return
        for conn in wait(list(live), timeout=wait_s):
            slot = live[conn]
            try:
                kind, value = slot.reader.recv()
            except (EOFError, OSError, pickle.UnpicklingError, ValueError):
                self._died(slot, results)
                continue
            if kind == "ready":
                slot.state = "idle"
                self._start_failures = 0
            elif slot.state == "busy" and results is not None:
                results[slot.task] = (
                    CallResult(True, value=value)
                    if kind == "ok"
                    else CallResult(False, error=value)
                )
                slot.state, slot.task = "idle", -1

    def _died(self, slot: _Slot, results: list[CallResult | None] | None) -> None:
        code = slot.proc.poll()
        if slot.state == "starting":
            self._start_failures += 1
            logger.warning("worker process died while starting (exit code %s)", code)
        elif slot.state == "busy" and results is not None:
            results[slot.task] = CallResult(False, error=f"worker died (exit code {code})")
        self._kill(slot)

    def _reap_overdue(self, results: list[CallResult | None]) -> None:
        now = time.monotonic()
        for slot in list(self._slots):
            if slot.state == "busy" and now >= slot.deadline:
                results[slot.task] = CallResult(False, timed_out=True, error="timeout")
                self.kills += 1
                self._kill(slot)
            elif slot.state == "starting" and now - slot.started > _START_LIMIT_S:
                self._start_failures += 1
                self._kill(slot)
        # Replacements start now, in the background; the next dispatch waits for "ready".
        if not self._closed:
            self._fill()
