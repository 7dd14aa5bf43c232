"""Run model-written Python behind an operating-system boundary and report what happened; never
raise on what the code does.

**The boundary** (Linux) is bubblewrap (``bwrap``), the distribution's package, run without
setuid. Each run gets:

- new user, PID, network, mount, IPC and UTS namespaces (and cgroup where the kernel allows): no
  network device but a loopback of its own, no view of the grader's processes;
- a fresh root holding, read-only, only what the interpreter needs: the library directories
  (``/usr/lib*``, ``/lib*``, ``/usr/local/lib``, ``/etc/ld.so.cache``) and the interpreter's
  prefix (e.g. ``/root/.pyenv/versions/3.11.7``); no ``/usr/bin`` (no shell, no compiler), no
  ``/home``, ``/root``, ``/work``, ``/tmp`` of the host. The store, the run directory and the
  grader's own files are not forbidden in there; they are absent;
- one writable directory, ``/tmp`` (a tmpfs of ``tmp_mb``, the working directory), gone with the
  sandbox; ``/proc`` of the new PID namespace only; a minimal ``/dev``;
- uid 65534 with no capabilities and ``no_new_privs``. When the grader runs as root, bwrap alone
  would map that uid to root outside, where ``RLIMIT_NPROC`` does not bind; so the grader writes
  the namespace's uid map itself (``--userns-block-fd``): inside uid 0 (bwrap's setup only) is
  outside root, inside 65534 is outside 65534, and the harness drops to 65534 before it reads
  the job;
- a seccomp filter (a small BPF program built here, for x86-64 and aarch64; elsewhere there is
  no boundary, see below): other syscall ABIs (i386, x32) kill the process; ``ptrace``,
  ``process_vm_*``, ``mount`` and the new mount API, ``unshare``/``setns``/``clone`` with
  namespace flags, ``keyctl``, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``,
  ``kexec``, modules, ``personality``, handle-based opens and clock setting fail with EPERM;
  ``clone3`` says ENOSYS (so libc falls back to ``clone``, whose flags the filter can read);
  sockets other than Unix, IPv4 and IPv6 are refused. It is a denylist: the interpreter and its
  C modules use a wide, version-dependent set of syscalls, and the boundary is the namespaces;
  the filter removes the kernel surface that namespace escapes have used;
- limits set inside as the unprivileged uid, so they hold when the grader is root: address space
  per process, CPU seconds, file size, open files, and tasks (``RLIMIT_NPROC`` counts per uid of
  the sandbox's own user namespace, i.e. this sandbox's processes and threads only); the tmpfs
  size caps disk use; the wall time is kept from outside. cgroups would give one memory cap for
  the whole tree, but a grader rarely owns a writable cgroup-v2 subtree (a container with cgroup
  v1, as here, has none), so memory is bounded by ``(max_processes + 2) * memory_mb + tmp_mb``;
- death together: bwrap's ``--die-with-parent`` and its own PID 1 tie everything the code starts
  (``setsid`` orphans and fork bombs included) to the sandbox; the grader kills bwrap at the wall
  time, and the kernel then kills the whole PID namespace.

Why bubblewrap rather than ``unshare(1)`` or the syscalls by hand: it does the fragile part
(a fresh tmpfs root, ``pivot_root``, ``/proc`` of the new namespace, a reaping PID 1, parent-death
signals, seccomp right before ``exec``) in one audited program that Flatpak relies on, is packaged
everywhere, and takes the seccomp program and the uid-map handshake on file descriptors.

**Verdicts** come from :mod:`reasonloop.verify.harness`: the tests run in a separate process that
never runs candidate code and compares plain data; the verdict travels on a pipe only that process
holds. Output caps apply to stdout and stderr, never to the verdict.

**What it does not guard**: kernel bugs (a namespace sandbox shares the host's kernel; an exploit
through an allowed syscall escapes), side channels (timing, cache, Spectre-class), the host's load
within the limits above, and what the read-only view shows (system libraries, the interpreter).
Model-written code at scale (RL, many hosts) belongs in a boundary with its own kernel as well:
one disposable gVisor (``runsc``) sandbox, Kata or Firecracker microVM per grading worker, with no
secrets and no network, and this sandbox inside it.

**Where there is none** (macOS, Windows, a kernel or container without user namespaces, no
``bwrap``): code grading raises :class:`SandboxUnavailable` with one line saying what to install,
unless unsafe execution was allowed (``--unsafe-code-exec``, or the environment variable
:data:`UNSAFE_ENV`); then the same harness runs as a plain child process with the same rlimits and
no containment at all (boundary ``"none"``: it can read and write what the grader can).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonloop.errors import ConfigError
from reasonloop.verify.harness import read_frame

logger = logging.getLogger(__name__)

__all__ = [
    "UNSAFE_ENV",
    "ExecResult",
    "Limits",
    "SandboxUnavailable",
    "TestRun",
    "allow_unsafe_exec",
    "bwrap_problem",
    "resolve_boundary",
    "run_python",
    "run_tests",
]

UNSAFE_ENV = "REASONLOOP_UNSAFE_CODE_EXEC"
"""Set to 1 to let code grading run unconfined where no sandbox can run (what
``--unsafe-code-exec`` does)."""

_BOUNDARIES = ("auto", "bwrap", "none")
_SANDBOX_UID = 65534  # nobody: owns nothing, and is the uid inside as well
_HARNESS_PATH = "/sandbox/harness.py"
_INSTALL = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap) on Linux with unprivileged user namespaces enabled, or pass --unsafe-code-exec "
    "to run model-written code with no boundary"
)


class SandboxUnavailable(ConfigError):
    """Code must be run, no OS sandbox can run here, and unsafe execution was not allowed."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one run may use. Every limit holds for root too (see the module docstring)."""

    timeout_s: float = 10.0  # wall time from start to verdict
    memory_mb: int = 1024  # address space of each process
    max_processes: int = 4  # tasks (processes and threads) the code may start besides itself
    max_output_bytes: int = 64_000  # of stdout, and of stderr, kept (the rest is read and dropped)
    max_file_mb: int = 16  # the largest file it may write
    tmp_mb: int = 64  # all it may write

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "max_output_bytes", "max_file_mb", "tmp_mb"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"must be > 0, got {value!r}", field=name)
        if self.max_processes < 0:
            raise ConfigError(f"must be >= 0, got {self.max_processes!r}", field="max_processes")


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What a plain program run did (:func:`run_python`); ``boundary`` is the sandbox it ran in."""

    success: bool  # exited 0 within the limits
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    memory_exceeded: bool
    output_truncated: bool
    duration_s: float
    boundary: str = "bwrap"

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


@dataclass(frozen=True, slots=True)
class TestRun:
    """The outcome of running tests against a solution (:func:`run_tests`).

    ``outcome``: ``pass``, ``fail`` (a test failed, the solution raised, did not load, or ended),
    ``memory`` (it ran out of memory), ``timeout``, or ``error`` (no verdict came back: the
    sandbox did not start, or the solution killed the tester). Only the tester's verdict pipe can
    say ``pass``.
    """

    __test__ = False  # not a pytest class

    outcome: str
    detail: str
    stdout: str
    stderr: str
    output_truncated: bool
    duration_s: float
    boundary: str


# -- choosing the boundary ---------------------------------------------------------------------
def allow_unsafe_exec() -> None:
    """Let code grading in this process (and its children) run unconfined where no sandbox can
    run; the CLI's ``--unsafe-code-exec``."""
    os.environ[UNSAFE_ENV] = "1"


def unsafe_exec_allowed() -> bool:
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@functools.cache
def bwrap_problem() -> str | None:
    """Why the bubblewrap sandbox cannot run here, or None when it can (checked once, by starting
    one and looking at what the code inside gets)."""
    if sys.platform != "linux":
        return f"{sys.platform} has no Linux namespaces"
    if platform.machine() not in _ARCH:
        return f"no seccomp filter for {platform.machine()}"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    raw = _execute("bwrap", "probe", [], Limits(timeout_s=30))
    if raw.verdict is None:
        lines = [ln for ln in raw.stderr.splitlines() if ln.strip()]
        return "bwrap cannot start a sandbox: " + (lines[-1] if lines else f"exit {raw.code}")
    status = dict(
        line.split(":", 1) for line in raw.verdict.get("status", "").splitlines() if ":" in line
    )
    want = {"Uid": str(_SANDBOX_UID), "CapEff": "0" * 16, "NoNewPrivs": "1", "Seccomp": "2"}
    for key, value in want.items():
        got = status.get(key, "").split()
        if not got or got[0] != value:
            return f"the sandbox came up with {key} {got[:1]}, expected {value}"
    # Run by root, the grader wrote the map: 65534 must be 65534 outside, not root (where process
    # limits would not bind). Run by a user, the processes are that user's outside, whatever the
    # (possibly nested) map inside reads.
    outside = [ln.split() for ln in raw.verdict.get("uid_map", "").splitlines()]
    mapped = [str(_SANDBOX_UID), str(_SANDBOX_UID), "1"]
    if os.getuid() == 0 and mapped not in outside:
        return "the sandbox's uid is root outside (process limits would not bind)"
    return None


def resolve_boundary(requested: str = "auto") -> str:
    """The boundary code runs behind: ``"bwrap"`` or ``"none"``.

    ``auto``: bwrap where it runs, else ``none`` if unsafe execution is allowed, else raise
    :class:`SandboxUnavailable`; ``bwrap``: bwrap or raise; ``none``: no boundary (benchmarks of
    the boundary's cost, machines that are themselves the boundary).
    """
    if requested not in _BOUNDARIES:
        raise ConfigError(f"boundary must be one of {_BOUNDARIES}, got {requested!r}")
    if requested == "none":
        return "none"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if requested == "auto" and unsafe_exec_allowed():
        _warn_unsafe(problem)
        return "none"
    raise SandboxUnavailable(f"code grading needs an OS sandbox, but {problem}; {_INSTALL}")


@functools.cache
def _warn_unsafe(problem: str) -> None:
    logger.warning("running model-written code with NO sandbox (%s; unsafe exec allowed)", problem)


# -- entry points ------------------------------------------------------------------------------
def run_tests(
    program: str,
    setup: str,
    tests: str,
    entry_point: str | None,
    names: Sequence[str],
    *,
    limits: Limits = Limits(),  # frozen, so one default is safe to share
    boundary: str = "auto",
) -> TestRun:
    """Run ``tests`` against ``program`` (see :mod:`reasonloop.verify.harness`).

    ``program`` is what the candidate's process runs (the prompt's definitions, then the
    response's); ``setup`` the trusted part the tests also need (the prompt's imports and
    helpers); ``names`` the response's functions and classes the tests may call; ``check`` in
    the tests is called with ``entry_point``. Raises only :class:`SandboxUnavailable`.
    """
    where = resolve_boundary(boundary)
    first = json.dumps({"program": program}).encode()
    second = json.dumps(
        {"setup": setup, "tests": tests, "entry_point": entry_point, "names": list(names)}
    ).encode()
    raw = _execute(where, "tests", [first, second], limits)
    verdict = raw.verdict or {}
    outcome, detail = verdict.get("outcome"), str(verdict.get("detail", ""))
    if outcome not in ("pass", "fail", "memory"):
        if raw.timed_out:
            outcome, detail = "timeout", f"no verdict within {limits.timeout_s:g} s"
        else:
            outcome = "error"
            lines = [ln for ln in raw.stderr.splitlines() if ln.strip()]
            detail = detail or (lines[-1] if lines else f"no verdict (exit code {raw.code})")
            if detail.startswith("bwrap:"):
                logger.warning("the code sandbox failed: %s", detail)
    return TestRun(
        outcome,
        detail[:400],
        raw.stdout,
        raw.stderr,
        raw.truncated,
        raw.duration_s,
        where,
    )


def run_python(
    source: str,
    *,
    limits: Limits = Limits(),  # frozen, so one default is safe to share
    boundary: str = "auto",
) -> ExecResult:
    """Run ``source`` as a program (``__main__``) behind the boundary; its exit status is the
    result (the program says it, so this is for running code, not for grading it)."""
    where = resolve_boundary(boundary)
    raw = _execute(where, "program", [json.dumps({"program": source}).encode()], limits)
    code = raw.code
    return ExecResult(
        success=code == 0 and not raw.timed_out,
        returncode=code,
        stdout=raw.stdout,
        stderr=raw.stderr,
        timed_out=raw.timed_out,
        memory_exceeded="MemoryError" in raw.stderr,
        output_truncated=raw.truncated,
        duration_s=raw.duration_s,
        boundary=where,
    )


# -- one run -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Raw:
    verdict: dict | None
    code: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_s: float


def _execute(boundary: str, mode: str, frames: Sequence[bytes], limits: Limits) -> _Raw:
    t0 = time.perf_counter()
    root = boundary == "bwrap" and os.getuid() == 0
    limit = (limits.memory_mb + 64) * 2**20
    owned: list[int] = []  # descriptors this function closes
    workdir = None
    try:
        job_fd = _job_file(frames)
        owned.append(job_fd)
        verdict_r, verdict_w = os.pipe()
        owned += [verdict_r, verdict_w]
        cfg = {
            "mode": mode,
            "job_fd": job_fd,
            "verdict_fd": verdict_w,
            "frame_limit": limit,
            "memory_mb": limits.memory_mb,
            "cpu_s": max(1, int(limits.timeout_s) + 1),
            "file_mb": limits.max_file_mb,
            "max_processes": limits.max_processes,
            "confined": boundary == "bwrap",
            "drop_uid": _SANDBOX_UID if root else -1,
        }
        python = os.path.realpath(sys.executable)
        flags = ["-S", "-s", "-B", "-X", "utf8"]
        pass_fds = [job_fd, verdict_w]
        handshake = None
        if boundary == "bwrap":
            harness_fd = _memfd("harness", _harness_source().encode())
            seccomp_fd = _memfd("seccomp", _seccomp_program(platform.machine()))
            owned += [harness_fd, seccomp_fd]
            pass_fds += [harness_fd, seccomp_fd]
            argv = ["bwrap", *_bwrap_options(limits, harness_fd, seccomp_fd, python)]
            if root:
                info_r, info_w = os.pipe()
                block_r, block_w = os.pipe()
                owned += [info_r, info_w, block_r, block_w]
                pass_fds += [info_w, block_r]
                argv += ["--info-fd", str(info_w), "--userns-block-fd", str(block_r)]
                handshake = (info_r, block_w)
            else:
                argv += ["--uid", str(_SANDBOX_UID), "--gid", str(_SANDBOX_UID)]
            argv += ["--", python, *flags, _HARNESS_PATH, json.dumps(cfg)]
            cwd, env = "/", {"PATH": "/usr/bin:/bin"}
        else:
            workdir = tempfile.mkdtemp(prefix="reasonloop-sandbox-")
            argv = [python, *flags, "-c", _harness_source(), json.dumps(cfg)]
            cwd, env = workdir, {**_SANDBOX_ENV, "HOME": workdir}
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        except OSError as exc:
            return _Raw(None, None, "", f"could not start: {exc}", False, False, 0.0)
        for fd in pass_fds:  # the sandbox holds these now; the verdict pipe's write end included
            _close(fd, owned)
        deadline = t0 + limits.timeout_s
        out = _Capture(proc.stdout, limits.max_output_bytes)
        err = _Capture(proc.stderr, limits.max_output_bytes)
        if handshake is not None:
            _map_users(proc, *handshake, deadline)
        timed_out = not _wait_unreaped(proc, max(0.0, deadline - time.perf_counter()))
        # Its session (bwrap, whose PID namespace dies with it; or the unconfined harness and
        # what it left), while the leader is still unreaped so the group id cannot be reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        verdict = _read_verdict(verdict_r, limit)
        out.join()
        err.join()
        return _Raw(
            verdict,
            proc.returncode,
            out.text(),
            err.text(),
            out.truncated or err.truncated,
            timed_out,
            time.perf_counter() - t0,
        )
    finally:
        for fd in owned:
            with contextlib.suppress(OSError):
                os.close(fd)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


_SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def _bwrap_options(limits: Limits, harness_fd: int, seccomp_fd: int, python: str) -> list[str]:
    opts = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    opts += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    opts += ["--clearenv", "--setenv", "HOME", "/tmp"]
    for key, value in _SANDBOX_ENV.items():
        opts += ["--setenv", key, value]
    made = {"/"}
    for path, kind, target in _system_view(python):
        # bwrap makes missing parents 0700: the unprivileged uid could not walk to the binds
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                opts += ["--perms", "0755", "--dir", str(parent)]
        if kind == "symlink":
            opts += ["--symlink", target, path]
        else:
            opts += ["--ro-bind", path, path]
    opts += ["--proc", "/proc", "--dev", "/dev"]
    opts += ["--size", str(limits.tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
    opts += ["--perms", "0444", "--ro-bind-data", str(harness_fd), _HARNESS_PATH]
    opts += ["--remount-ro", "/", "--chdir", "/tmp", "--seccomp", str(seccomp_fd)]
    return opts


# Directories the interpreter and its C modules load libraries from.
_LIBRARY_DIRS = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/usr/local/lib",
    "/lib",
    "/lib64",
    "/lib32",
)
_SYSTEM_PREFIXES = ("/", "/usr", "/usr/local")


@functools.cache
def _system_view(python: str) -> tuple[tuple[str, str, str], ...]:
    """(path, "bind" | "symlink", target) for the read-only view of the interpreter and system."""
    view: list[tuple[str, str, str]] = []
    for path in _LIBRARY_DIRS:
        if os.path.islink(path):
            view.append((path, "symlink", os.readlink(path)))
        elif os.path.isdir(path):
            view.append((path, "bind", ""))
    if os.path.isfile("/etc/ld.so.cache"):
        view.append(("/etc/ld.so.cache", "bind", ""))
    bound = [p for p, kind, _ in view if kind == "bind"]
    prefixes = {sys.base_prefix, sys.base_exec_prefix, str(Path(python).parent.parent)}
    for prefix in sorted(os.path.realpath(p) for p in prefixes):
        if prefix in _SYSTEM_PREFIXES:
            continue
        if not any(prefix == b or prefix.startswith(b + "/") for b in bound):
            view.append((prefix, "bind", ""))
            bound.append(prefix)
    if not any(python.startswith(b + "/") for b in bound):
        view.append((python, "bind", ""))  # a system interpreter: the binary, not all of /usr/bin
    return tuple(view)


@functools.cache
def _harness_source() -> str:
    return Path(__file__).with_name("harness.py").read_text(encoding="utf-8")


def _job_file(frames: Sequence[bytes]) -> int:
    """A descriptor to read the job's frames from (a file, so the grader never blocks on it)."""
    data = b"".join(struct.pack(">Q", len(f)) + f for f in frames)
    if hasattr(os, "memfd_create"):
        return _memfd("job", data)
    fd, path = tempfile.mkstemp(prefix="reasonloop-job-")
    os.unlink(path)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, False)
    return fd


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _close(fd: int, owned: list[int]) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(ValueError):
        owned.remove(fd)


def _wait_unreaped(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``proc`` to exit without reaping it; True if it exited."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: reaps, and the group may be empty
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _map_users(proc: subprocess.Popen, info_r: int, block_w: int, deadline: float) -> None:
    """Root only: map the new user namespace (0 → 0 for bwrap's setup, 65534 → 65534), then let
    bwrap go on. Any failure leaves bwrap to fail on its own (it then gives no verdict)."""
    buf = b""
    info = None
    while info is None and time.perf_counter() < deadline:
        ready, _, _ = select.select([info_r], [], [], max(0.0, deadline - time.perf_counter()))
        if not ready:
            break
        chunk = os.read(info_r, 4096)
        if not chunk:
            break
        buf += chunk
        with contextlib.suppress(ValueError):
            info = json.loads(buf)
    pid = info.get("child-pid") if isinstance(info, dict) else None
    if not isinstance(pid, int):
        return
    mapping = f"0 0 1\n{_SANDBOX_UID} {_SANDBOX_UID} 1\n"
    try:
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w", encoding="ascii") as fh:
                fh.write(mapping)
        os.write(block_w, b"1")
    except OSError as exc:
        logger.warning("could not map the sandbox's users: %s", exc)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _read_verdict(fd: int, limit: int) -> dict | None:
    """The tester's verdict, if it wrote one (read after every writer is gone)."""
    os.set_blocking(fd, False)
    try:
        frame = read_frame(fd, limit)
    except (BlockingIOError, OSError):
        return None
    try:
        verdict = json.loads(frame) if frame else None
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


class _Capture:
    """Drain a pipe in a thread, keeping the first ``cap`` bytes (so the writer never blocks)."""

    def __init__(self, stream, cap: int):
        self.stream, self.cap = stream, cap
        self.chunks: list[bytes] = []
        self.total = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(65536):
                if self.total < self.cap:
                    self.chunks.append(chunk[: self.cap - self.total])
                self.total += len(chunk)

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def join(self) -> None:
        self.thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.stream.close()

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


# -- the seccomp filter ------------------------------------------------------------------------
_ARCH = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}  # index in _NR, AUDIT_ARCH_*

# Denied with EPERM: (x86-64, aarch64) syscall numbers. None where the architecture lacks it.
_DENIED = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "personality": (135, 92),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "pidfd_getfd": (438, 438),
    "kcmp": (312, 272),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "syslog": (103, 116),
    "iopl": (172, None),
    "ioperm": (173, None),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "adjtimex": (159, 171),
    "clock_adjtime": (305, 266),
    "fanotify_init": (300, 262),
    "lookup_dcookie": (212, 18),
    "vhangup": (153, 58),
    "uselib": (134, None),
}
_NR = {"clone": (56, 220), "clone3": (435, 435), "ioctl": (16, 29), "socket": (41, 198)}
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
_NAMESPACE_FLAGS |= 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
_TTY_INJECTION = (0x5412, 0x541C)  # TIOCSTI, TIOCLINUX
_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_KILL_PROCESS, _ALLOW, _ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS, _EAFNOSUPPORT = 1, 38, 97
_X32_BIT = 0x40000000


def _seccomp_program(machine: str) -> bytes:
    """The filter as a classic BPF program (``struct sock_filter[]``), for bwrap ``--seccomp``.

    Offsets into ``struct seccomp_data``: nr at 0, arch at 4, argument i's low 32 bits at
    16 + 8i (little-endian; the syscalls checked take 32-bit flags, cmd and family).
    """
    index, audit_arch = _ARCH[machine]
    code: list[tuple[int, int, str | None, str | None]] = []  # op, k, jump-if-true, if-false

    def op(opcode: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        code.append((opcode, k, jt, jf))

    labels: dict[str, int] = {}

    def label(name: str) -> None:
        labels[name] = len(code)

    op(_LD_ABS, 4)
    op(_JEQ, audit_arch, "nr", "kill")  # another ABI (i386 on x86-64, arm32 on arm64)
    label("nr")
    op(_LD_ABS, 0)
    if machine == "x86_64":
        op(_JGE, _X32_BIT, "kill", None)
    for numbers in _DENIED.values():
        if numbers[index] is not None:
            op(_JEQ, numbers[index], "eperm", None)
    op(_JEQ, _NR["clone3"][index], "enosys", None)
    op(_JEQ, _NR["clone"][index], "clone", None)
    op(_JEQ, _NR["ioctl"][index], "ioctl", None)
    op(_JEQ, _NR["socket"][index], "socket", None)
    op(_RET, _ALLOW)
    label("clone")  # classic BPF jumps only forward: the checks, then the returns
    op(_LD_ABS, 16)
    op(_JSET, _NAMESPACE_FLAGS, "eperm", "allow")
    label("ioctl")
    op(_LD_ABS, 24)
    for cmd in _TTY_INJECTION:
        op(_JEQ, cmd, "eperm", None)
    op(_RET, _ALLOW)
    label("socket")
    op(_LD_ABS, 16)
    for family in _SOCKET_FAMILIES:
        op(_JEQ, family, "allow", None)
    op(_RET, _ERRNO | _EAFNOSUPPORT)
    label("allow")
    op(_RET, _ALLOW)
    label("eperm")
    op(_RET, _ERRNO | _EPERM)
    label("enosys")
    op(_RET, _ERRNO | _ENOSYS)
    label("kill")
    op(_RET, _KILL_PROCESS)

    out = bytearray()
    for i, (opcode, k, jt, jf) in enumerate(code):
        offsets = []
        for target in (jt, jf):
            off = 0 if target is None else labels[target] - (i + 1)
            if not 0 <= off <= 255:
                raise AssertionError(f"seccomp jump out of range at {i}: {off}")
            offsets.append(off)
        out += struct.pack("=HBBI", opcode, offsets[0], offsets[1], k)
    return bytes(out)
