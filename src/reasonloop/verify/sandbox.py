"""Run untrusted Python in a child process with limits, and return what happened (never raise).

Limits: wall time (enforced by the parent, which kills the child's whole process group), CPU time,
address space, file size, open files and process count (rlimits), a throwaway working directory
(removed afterwards), output capped while it is read. Inside the child an audit hook, installed
before the code runs, refuses sockets, new processes (fork, exec, spawn, subprocess, os.system)
and writes outside the working directory. Run as root, the child also drops to user ``nobody``
when that user can run this Python (not when the interpreter lives under a private /root; the
process-count rlimit does not bind root, so there the audit hook alone stops fork bombs).

This is **not** a security boundary against a determined attacker (an audit hook can be evaded
from C code, e.g. through ``ctypes``); it keeps model-written code from hurting the machine by
accident or by the obvious routes. Run untrusted code at scale inside a container or VM.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

_BOOTSTRAP = r"""
import os, sys
_root = os.path.realpath(os.getcwd())
_BLOCK = {"socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.sendto",
          "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
          "subprocess.Popen", "os.kill", "os.killpg", "ctypes.dlopen", "pty.spawn"}
_WRITE_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
                 "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree"}
def _inside(path):
    try:
        p = os.path.realpath(os.path.join(_root, os.fsdecode(path)))
    except Exception:
        return False
    return p == _root or p.startswith(_root + os.sep)
def _hook(event, args):
    if event in _BLOCK:
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, 0])[:3]
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        if writing and isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
            raise PermissionError("sandbox: writing outside the sandbox directory is not allowed")
    elif event in _WRITE_EVENTS:
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)) and not _inside(a):
                raise PermissionError("sandbox: " + event + " outside the sandbox directory")
_src = open("program.py", encoding="utf-8").read()
sys.addaudithook(_hook)
del _hook
exec(compile(_src, "program.py", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True, slots=True)
class ExecResult:
    success: bool  # exited 0 within the limits
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    memory_exceeded: bool
    output_truncated: bool
    duration_s: float

    @property
    def error(self) -> str:
        """A one-line summary of what went wrong ('' on success)."""
        if self.success:
            return ""
        if self.timed_out:
            return "timeout"
        if self.memory_exceeded:
            return "memory limit exceeded"
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit code {self.returncode}"


def _limits(
    timeout_s: float, memory_mb: int, max_processes: int, max_file_mb: int, drop_to: int | None
):
    def apply() -> None:
        os.setsid()
        cpu = max(1, int(timeout_s) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        size = max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_to is not None:
            os.setgroups([])
            os.setgid(drop_to)
            os.setuid(drop_to)
        # counts every process of the (now unprivileged) user: fork bombs stop here too
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))

    return apply


def _reader(stream, cap: int, sink: list, flags: list) -> None:
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if total < cap:
            sink.append(chunk[: cap - total])
        total += len(chunk)
        if total > cap:
            flags.append(True)  # keep draining so the child never blocks on a full pipe


def run_python(
    source: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    max_processes: int = 1,
    max_output_bytes: int = 64_000,
    max_file_mb: int = 16,
    stdin: str | None = None,
) -> ExecResult:
    """Run ``source`` as a program in a sandboxed child; see the module docstring."""
    workdir = tempfile.mkdtemp(prefix="reasonloop-sandbox-")
    drop_to = None
    if os.geteuid() == 0 and _others_can_run_python():
        drop_to = 65534  # nobody
        os.chown(workdir, drop_to, drop_to)
    t0 = time.perf_counter()
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(source)
        if drop_to is not None:
            os.chown(os.path.join(workdir, "program.py"), drop_to, drop_to)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": workdir,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOTSTRAP],
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=_limits(timeout_s, memory_mb, max_processes + 1, max_file_mb, drop_to),
            )
        except OSError as exc:
            return ExecResult(
                False, None, "", f"could not start the sandbox: {exc}", False, False, False, 0.0
            )
        out, err, trunc = [], [], []
        threads = [
            threading.Thread(
                target=_reader, args=(proc.stdout, max_output_bytes, out, trunc), daemon=True
            ),
            threading.Thread(
                target=_reader, args=(proc.stderr, max_output_bytes, err, trunc), daemon=True
            ),
        ]
        for t in threads:
            t.start()
        if stdin is not None:
            try:
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
            except OSError:
                pass
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(proc)
        for t in threads:
            t.join(timeout=5)
        stdout = b"".join(out).decode("utf-8", "replace")
        stderr = b"".join(err).decode("utf-8", "replace")
        rc = proc.returncode
        cpu_killed = rc is not None and rc in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out
        memory = "MemoryError" in stderr or "Cannot allocate memory" in stderr
        return ExecResult(
            success=rc == 0 and not timed_out,
            returncode=rc,
            stdout=stdout,
            stderr=stderr,
            timed_out=timed_out or cpu_killed and rc == -signal.SIGXCPU,
            memory_exceeded=memory,
            output_truncated=bool(trunc),
            duration_s=time.perf_counter() - t0,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _others_can_run_python() -> bool:
    """Whether an unprivileged user can start this interpreter and read its standard library
    (not so when Python lives under a private home such as /root: then the child stays root and
    the audit hook and rlimits are the only guards)."""
    import stat
    import sysconfig

    paths = [os.path.realpath(sys.executable), os.path.realpath(sysconfig.get_paths()["stdlib"])]
    for path in paths:
        p = path
        while True:
            try:
                mode = os.stat(p).st_mode
            except OSError:
                return False
            if not mode & stat.S_IXOTH:
                return False
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
