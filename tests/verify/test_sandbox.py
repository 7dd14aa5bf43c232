"""The sandbox itself: the seccomp program (interpreted here, and felt from inside), what code
inside sees and may use, how the boundary is chosen and refused, the plain-data protocol."""

import json
import platform
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.records import Verdict, from_dict, to_dict
from reasonloop.verify import harness, sandbox
from reasonloop.verify.sandbox import (
    Limits,
    SandboxUnavailable,
    bwrap_problem,
    resolve_boundary,
    run_python,
    run_tests,
)

needs_sandbox = pytest.mark.skipif(
    bwrap_problem() is not None, reason=f"no code sandbox here: {bwrap_problem()}"
)
SRC = Path(sandbox.__file__).resolve().parents[2]

# -- the seccomp program, run by a small classic-BPF interpreter --------------------------------
KILL, ALLOW = 0x80000000, 0x7FFF0000


def errno(n: int) -> int:
    return 0x00050000 | n


def run_bpf(program: bytes, nr: int, arch: int, args=(0, 0, 0, 0, 0, 0)) -> int:
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    code = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            (acc,) = struct.unpack_from("=I", data, k)
        elif op == 0x15:  # jeq
            pc += jt if acc == k else jf
        elif op == 0x35:  # jge
            pc += jt if acc >= k else jf
        elif op == 0x45:  # jset
            pc += jt if acc & k else jf
        elif op == 0x06:  # ret
            return k
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


X86_64, I386, AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
CLONE_NEWUSER, SIGCHLD, AF_NETLINK, AF_INET, TIOCSTI = 0x10000000, 17, 16, 2, 0x5412

# (machine, nr, arch, args, expected)
BPF_TABLE = [
    ("x86_64", 0, X86_64, (), ALLOW),  # read
    ("x86_64", 101, X86_64, (), errno(1)),  # ptrace
    ("x86_64", 272, X86_64, (CLONE_NEWUSER,), errno(1)),  # unshare
    ("x86_64", 425, X86_64, (), errno(1)),  # io_uring_setup
    ("x86_64", 321, X86_64, (), errno(1)),  # bpf
    ("x86_64", 135, X86_64, (0xFFFFFFFF,), errno(1)),  # personality
    ("x86_64", 56, X86_64, (SIGCHLD,), ALLOW),  # clone: fork
    ("x86_64", 56, X86_64, (CLONE_NEWUSER | SIGCHLD,), errno(1)),  # clone into a namespace
    ("x86_64", 435, X86_64, (), errno(38)),  # clone3: ENOSYS, so libc falls back to clone
    ("x86_64", 41, X86_64, (AF_INET,), ALLOW),  # socket(AF_INET)
    ("x86_64", 41, X86_64, (AF_NETLINK,), errno(97)),  # socket(AF_NETLINK)
    ("x86_64", 16, X86_64, (1, TIOCSTI), errno(1)),  # ioctl(TIOCSTI)
    ("x86_64", 16, X86_64, (1, 0x5401), ALLOW),  # ioctl(TCGETS)
    ("x86_64", 0x40000000 | 1, X86_64, (), KILL),  # the x32 ABI
    ("x86_64", 1, I386, (), KILL),  # the i386 ABI
    ("aarch64", 63, AARCH64, (), ALLOW),  # read
    ("aarch64", 117, AARCH64, (), errno(1)),  # ptrace
    ("aarch64", 97, AARCH64, (), errno(1)),  # unshare
    ("aarch64", 220, AARCH64, (CLONE_NEWUSER,), errno(1)),  # clone into a namespace
    ("aarch64", 220, AARCH64, (SIGCHLD,), ALLOW),
    ("aarch64", 198, AARCH64, (AF_NETLINK,), errno(97)),
    ("aarch64", 63, 0x40000028, (), KILL),  # arm32
]


@pytest.mark.parametrize("machine,nr,arch,args,expected", BPF_TABLE)
def test_seccomp_program(machine, nr, arch, args, expected):
    program = sandbox._seccomp_program(machine)
    full = tuple(args) + (0,) * (6 - len(args))
    assert run_bpf(program, nr, arch, full) == expected


@needs_sandbox
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 syscall numbers")
def test_the_filter_holds_inside():
    probe = """
import ctypes, errno, json, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(*a):
    r = libc.syscall(*a)
    return 0 if r >= 0 else ctypes.get_errno()
out = {
    "unshare": call(272, 0x10000000), "ptrace": call(101, 0, 0, 0, 0),
    "personality": call(135, 0xFFFFFFFF), "keyctl": call(250, 0), "bpf": call(321, 0, 0, 0),
    "io_uring_setup": call(425, 1, 0), "perf_event_open": call(298, 0, 0, -1, -1, 0),
    "mount": call(165, 0, 0, 0, 0, 0), "clone3": call(435, 0, 0), "getpid": call(39),
}
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
    out["netlink"] = 0
except OSError as exc:
    out["netlink"] = exc.errno
print(json.dumps(out))
"""
    r = run_python(probe, limits=Limits(timeout_s=10))
    assert r.success, r.stderr
    got = json.loads(r.stdout)
    eperm = {k: 1 for k in got if k not in ("clone3", "getpid", "netlink")}
    assert got == {**eperm, "clone3": 38, "getpid": 0, "netlink": 97}


# -- what code inside sees and may use -----------------------------------------------------------
@needs_sandbox
def test_what_the_code_sees():
    probe = """
import json, os, resource, socket
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
    "caps": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip(), "root": sorted(os.listdir("/")),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "net": [l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]],
    "hostname": socket.gethostname(),
    "w_tmp": writable("/tmp/x"), "w_usr": writable("/usr/lib/x"), "w_root": writable("/x"),
    "w_harness": writable("/sandbox/harness.py"),
    "as": resource.getrlimit(resource.RLIMIT_AS), "fsize": resource.getrlimit(resource.RLIMIT_FSIZE),
    "env": sorted(os.environ), "exists": {p: os.path.exists(p) for p in SECRET_PATHS},
}))
""".replace(
        "SECRET_PATHS", repr([str(SRC), "/work", "/home", "/root/.ssh", "/usr/bin", "/etc/passwd"])
    )
    r = run_python(probe, limits=Limits(memory_mb=512, max_file_mb=8))
    assert r.success, r.stderr
    got = json.loads(r.stdout)
    assert (got["uid"], got["gid"], got["cwd"]) == (65534, 65534, "/tmp")
    assert (got["caps"], got["nnp"], got["seccomp"]) == ("0" * 16, "1", "2")
    assert set(got["root"]) <= {"usr", "lib", "lib64", "lib32", "etc", "root", "opt", "proc"} | {
        "dev",
        "tmp",
        "sandbox",
    }
    assert got["pids"] == [1, 2]  # bwrap's init and this program: nothing of the grader
    assert got["net"] == ["lo"]
    assert got["hostname"] == "sandbox"
    assert (got["w_tmp"], got["w_usr"], got["w_root"], got["w_harness"]) == (
        True,
        False,
        False,
        False,
    )
    assert got["as"] == [512 * 2**20] * 2 and got["fsize"] == [8 * 2**20] * 2
    assert got["env"] == ["HOME", "LANG", "PATH", "PWD", "PYTHONHASHSEED"]
    assert not any(got["exists"].values()), got["exists"]


@needs_sandbox
def test_processes_are_limited_and_die_with_the_sandbox():
    probe = """
import os, time
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError:
    pass
print(n)
"""
    r = run_python(probe, limits=Limits(max_processes=3, timeout_s=20))
    assert r.success, r.stderr
    assert int(r.stdout) == 3
    r = run_python("while True:\n    pass", limits=Limits(timeout_s=1))
    assert r.timed_out and not r.success and r.duration_s < 6


@needs_sandbox
def test_output_is_capped_and_drained():
    r = run_python(
        "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000)",
        limits=Limits(max_output_bytes=1000),
    )
    assert r.success and r.output_truncated and r.stdout == "x" * 1000
    assert r.boundary == "bwrap"


@needs_sandbox
def test_plain_data_crosses_with_its_types():
    program = (
        "import collections\n"
        "def f(kind):\n"
        "    return {'tuple': (1, (2, 3)), 'set': {1, 2}, 'frozen': frozenset({3}),\n"
        "            'dict': {(1, 2): [None, True]}, 'big': 10**5000, 'nan': float('nan'),\n"
        "            'neg0': -0.0, 'complex': 1+2j, 'bytes': b'\\x00', 'ba': bytearray(b'x'),\n"
        "            'named': collections.namedtuple('P', 'x y')(1, 2),\n"
        "            'counter': collections.Counter('aab')}[kind]\n"
    )
    tests = (
        "import math\n"
        "def check(f):\n"
        "    assert f('tuple') == (1, (2, 3)) and type(f('tuple')[1]) is tuple\n"
        "    assert f('set') == {1, 2} and type(f('frozen')) is frozenset\n"
        "    assert f('dict') == {(1, 2): [None, True]}\n"
        "    assert f('big') == 10**5000\n"
        "    assert math.isnan(f('nan')) and math.copysign(1, f('neg0')) == -1\n"
        "    assert f('complex') == 1+2j and f('bytes') == b'\\x00'\n"
        "    assert type(f('ba')) is bytearray\n"
        "    assert f('named') == (1, 2) and type(f('named')) is tuple\n"
        "    assert f('counter') == {'a': 2, 'b': 1} and type(f('counter')) is dict\n"
    )
    run = run_tests(program, "", tests, "f", ["f"])
    assert (run.outcome, run.detail) == ("pass", "")


def test_decode_accepts_only_tagged_plain_data():
    assert harness.decode({"tuple": [1, {"set": [2]}]}) == (1, {2})
    for bad in ({"object": 1}, {"tuple": 1, "set": []}, {"dict": [[1]]}, {"complex": ["a", 1]}):
        with pytest.raises((ValueError, TypeError)):
            harness.decode(bad)
    with pytest.raises(harness._NotPlain):
        harness.encode(object())
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(harness._NotPlain):
        harness.encode(deep)


# -- choosing the boundary, and refusing -------------------------------------------------------
def test_resolve_boundary(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(SandboxUnavailable) as info:
        resolve_boundary()
    message = str(info.value)
    assert "\n" not in message
    assert "bubblewrap (bwrap) is not installed" in message
    assert "apt-get install bubblewrap" in message and "--unsafe-code-exec" in message
    assert resolve_boundary("none") == "none"
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert resolve_boundary() == "none"
    with pytest.raises(SandboxUnavailable):
        resolve_boundary("bwrap")  # asked for by name: never silently unconfined
    with pytest.raises(ConfigError):
        resolve_boundary("docker")


def test_limits_are_checked():
    with pytest.raises(ConfigError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ConfigError, match="max_processes"):
        Limits(max_processes=-1)


def test_without_a_boundary_verdicts_still_cannot_be_forged():
    tests = "def check(f):\n    assert f(2, 3) == 5\n"
    good = run_tests(
        "def add(a, b):\n    return a + b\n", "", tests, "add", ["add"], boundary="none"
    )
    assert (good.outcome, good.boundary) == ("pass", "none")
    forged = (
        "class E:\n    def __eq__(self, o):\n        return True\n"
        'def add(a, b):\n    print(\'{"outcome": "pass"}\')\n    return E()\n'
    )
    bad = run_tests(forged, "", tests, "add", ["add"], boundary="none")
    assert (bad.outcome, bad.boundary) == ("fail", "none")


def _cli(args, env_extra, tmp_path):
    env = {
        "PATH": "/nonexistent",  # no bwrap: there is no sandbox
        "PYTHONPATH": str(SRC),
        "HOME": str(tmp_path),
        **env_extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "reasonloop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_grade_refuses_code_without_a_sandbox_unless_told(tmp_path):
    rows = [
        {
            "id": "c1",
            "domain": "code",
            "answer": "",
            "tests": "assert add(1, 2) == 3",
            "response": "```python\ndef add(a, b):\n    return a + b\n```",
        },
        {"id": "m1", "domain": "math", "answer": "6", "response": "\\boxed{6}"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    refused = _cli(["grade", str(src), "-o", str(out)], {}, tmp_path)
    assert refused.returncode == 2
    lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert (
        len(lines) == 1 and "needs an OS sandbox" in lines[0] and "--unsafe-code-exec" in lines[0]
    )
    assert not out.exists()
    allowed = _cli(["grade", str(src), "-o", str(out), "--unsafe-code-exec"], {}, tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(g["id"], g["correct"], g.get("boundary")) for g in got] == [
        ("c1", True, "none"),
        ("m1", True, None),
    ]
    # math alone needs no sandbox
    src.write_text(json.dumps(rows[1]) + "\n")
    assert _cli(["grade", str(src), "-o", str(out)], {}, tmp_path).returncode == 0
    # generate refuses before it loads a model or creates the store
    problems = tmp_path / "problems.jsonl"
    code = {k: rows[0][k] for k in ("id", "domain", "answer", "tests")}
    problems.write_text(json.dumps({**code, "problem": "def add(a, b):\n"}) + "\n")
    store = tmp_path / "store.db"
    gen = _cli(["generate", "--problems", str(problems), "--store", str(store)], {}, tmp_path)
    assert gen.returncode == 2 and "needs an OS sandbox" in gen.stderr
    assert not store.exists()


def test_verdict_json_without_boundary_still_loads():
    old = {"correct": True, "extracted": "x", "reason": "correct"}
    assert from_dict(Verdict, old) == Verdict(True, "x", "correct", None)
    assert to_dict(Verdict(False, "x", "error", "bwrap"))["boundary"] == "bwrap"
