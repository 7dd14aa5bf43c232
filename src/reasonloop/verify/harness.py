"""The program that runs inside the code sandbox: it tests model-written code so that nothing the
code does can forge the verdict.

:mod:`reasonloop.verify.sandbox` starts this file as a script (``python -S -s -B``; it imports
only the standard library) with its settings as one JSON argument, a job on an extra file
descriptor and a verdict pipe on another. Two processes take part:

- the **tester** (this process) reads the program, makes itself non-dumpable (so no other process
  of its uid can open its ``/proc/PID/fd``, ``mem`` or ``environ``) and ignores every signal it can,
  then forks the candidate;
- the **candidate** (the fork) closes the job and verdict descriptors before anything else, sets
  its own limits, runs the program (the prompt's definitions, then the response's) and then only
  answers calls: ``{"call": name, "args": ...}`` → the function's return value as *plain data*
  (None, bool, int, float, complex, str, bytes, list, tuple, set, frozenset, dict; tagged JSON,
  so a tuple stays a tuple) or the name of the exception it raised;
- after the fork the tester reads the tests (so they were never in the candidate's memory), runs
  the prompt's helpers and the tests itself, with every name the response defines bound to a stub
  that calls the candidate, and writes ``{"outcome": "pass" | "fail" | "memory", "detail": ...}``
  to the verdict pipe, which only it holds.

So comparisons run in a process that never ran candidate code, on values that are plain data: an
object whose ``__eq__`` is always true cannot cross (it is a failure), patched builtins stay in the
candidate's process, printed markers, ``atexit`` handlers and ``os._exit(0)`` say nothing (stdout
is not the verdict, and a candidate that ends before answering is a failure), and the candidate
cannot see the expected values. What the candidate can do to the tester is kill or stop it (the
same uid runs both); that gives no verdict, which the grader counts as an error or a timeout. A
class the tests construct stays in the candidate's process: the tester holds a handle whose
methods are called remotely and which equals nothing but itself; its truth value is an error.

What it does not do: contain anything. The containment is the sandbox around both processes.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import resource
import signal
import struct
import sys

_HEADER = struct.Struct(">Q")
_DEPTH = 100  # nesting depth of plain data; deeper values are refused
_DETAIL = 400  # characters of a failure's description sent back


class _NotPlain(Exception):
    pass


class _CandidateGone(Exception):
    """The candidate's process ended or broke the protocol before answering."""


# -- framing ---------------------------------------------------------------------------------
def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int) -> bytes | None:
    """One length-prefixed message, or None at end of file or past ``limit`` bytes."""
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    (size,) = _HEADER.unpack(head)
    if size > limit:
        return None
    return _read_exact(fd, size)


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


# -- plain data --------------------------------------------------------------------------------
def encode(value: object, depth: int = 0) -> object:
    """``value`` as tagged JSON; raises _NotPlain for anything but built-in data.

    Subclasses of the built-in types become their base values (a namedtuple a tuple, a Counter a
    dict): whatever they override, what crosses is the plain value.
    """
    if depth > _DEPTH:
        raise _NotPlain("a value nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        return {"complex": [complex.__complex__(value).real, complex.__complex__(value).imag]}
    if isinstance(value, bytearray):
        return {"bytearray": bytearray.hex(value)}
    if isinstance(value, bytes):
        return {"bytes": bytes.hex(value)}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, depth + 1) for v in tuple.__iter__(value)]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode(v, depth + 1) for v in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"set": [encode(v, depth + 1) for v in set.__iter__(value)]}
    if isinstance(value, dict):
        pairs = dict.items(value)
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in pairs]}
    if isinstance(value, _Handle):
        return {"handle": value._index}
    raise _NotPlain(f"a {type(value).__name__} object")


def decode(tree: object, handles=None, depth: int = 0) -> object:
    """Built-in values from tagged JSON; anything else raises ValueError."""
    if depth > _DEPTH:
        raise ValueError("nested too deeply")
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if type(tree) is list:
        return [decode(v, handles, depth + 1) for v in tree]
    if type(tree) is not dict or len(tree) != 1:
        raise ValueError("not tagged plain data")
    ((tag, v),) = tree.items()
    if tag == "handle" and handles is not None and type(v) is int:
        return handles(v)
    if type(v) is str and tag in ("bytes", "bytearray"):
        return bytes.fromhex(v) if tag == "bytes" else bytearray.fromhex(v)
    if type(v) is not list:
        raise ValueError("not tagged plain data")
    if tag == "complex" and len(v) == 2 and all(type(x) in (int, float) for x in v):
        return complex(v[0], v[1])
    items = [decode(x, handles, depth + 1) for x in v]
    if tag == "tuple":
        return tuple(items)
    if tag == "set":
        return set(items)
    if tag == "frozenset":
        return frozenset(items)
    if tag == "dict" and all(type(p) is list and len(p) == 2 for p in items):
        return {k: val for k, val in items}
    raise ValueError(f"unknown tag {tag!r}")


# -- the candidate's side ----------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # a hostile __str__
        text = type(exc).__name__
    return text[:_DETAIL]


def _serve(program: str, req_fd: int, resp_fd: int, limit: int) -> None:
    """Body of the candidate's process: run the program, then answer calls until told to stop."""
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    objects: list = []
    try:
        exec(compile(program, "solution.py", "exec"), namespace)
        hello: dict = {"ready": True}
    except MemoryError:
        hello = {"raised": "MemoryError", "message": "while loading the solution"}
    except BaseException as exc:
        hello = {"raised": type(exc).__name__, "message": _describe(exc)}
    write_frame(resp_fd, json.dumps(hello).encode())
    if "raised" in hello:
        return
    while True:
        frame = read_frame(req_fd, limit)
        if frame is None:
            return
        reply = _answer(json.loads(frame), namespace, objects)
        try:
            data = json.dumps(reply, allow_nan=True).encode()
        except (ValueError, TypeError, RecursionError) as exc:
            data = json.dumps({"unplain": f"unencodable result ({exc})"[:_DETAIL]}).encode()
        write_frame(resp_fd, data)


def _answer(req: dict, namespace: dict, objects: list) -> dict:
    target = None
    try:
        args = decode(req.get("args", []), objects.__getitem__)
        kwargs = decode(req.get("kwargs", {"dict": []}), objects.__getitem__)
        if "call" in req:
            if req["call"] not in namespace:
                raise NameError(f"name {req['call']!r} is not defined")
            target = namespace[req["call"]]
        else:
            target = getattr(objects[req["object"]], req["attribute"])
            if req.get("get"):
                if callable(target):
                    return {"callable": True}
                return {"value": encode(target)}
        result = target(*args, **kwargs)
    except MemoryError:
        return {"raised": "MemoryError", "message": ""}
    except BaseException as exc:
        return {"raised": type(exc).__name__, "message": _describe(exc)}
    try:
        return {"value": encode(result)}
    except _NotPlain as exc:
        if isinstance(target, type):  # a constructor: the object stays, the tester gets a handle
            objects.append(result)
            return {"handle": len(objects) - 1, "type": type(target).__name__}
        return {"unplain": str(exc)[:_DETAIL]}
    except BaseException as exc:
        return {"unplain": _describe(exc)}


# -- the tester's side -------------------------------------------------------------------------
class _Channel:
    """The tester's end of the call pipes; remembers whether the candidate ran out of memory."""

    def __init__(self, req_fd: int, resp_fd: int, limit: int):
        self.req_fd, self.resp_fd, self.limit = req_fd, resp_fd, limit
        self.memory = False

    def receive(self) -> dict:
        frame = read_frame(self.resp_fd, self.limit)
        if frame is None:
            raise _CandidateGone("the solution's process ended without answering")
        try:
            reply = json.loads(frame)
        except (ValueError, RecursionError):
            raise _CandidateGone("the solution's process sent garbage") from None
        if type(reply) is not dict:
            raise _CandidateGone("the solution's process sent garbage")
        return reply

    def exchange(self, request: dict) -> dict:
        try:
            write_frame(self.req_fd, json.dumps(request).encode())
        except OSError:
            raise _CandidateGone("the solution's process ended") from None
        return self.receive()

    def ask(self, request: dict) -> object:
        return self.result(self.exchange(request))

    def result(self, reply: dict) -> object:
        if "value" in reply:
            try:
                return decode(reply["value"])
            except (ValueError, TypeError, RecursionError):
                raise _CandidateGone("the solution's process sent garbage") from None
        if type(reply.get("handle")) is int:
            return _Handle(self, reply["handle"], str(reply.get("type", "object")))
        if "raised" in reply:
            name, message = str(reply["raised"]), str(reply.get("message", ""))[:_DETAIL]
            if name == "MemoryError":
                self.memory = True
            raise _rebuild(name, message)
        if "unplain" in reply:
            raise TypeError(f"the solution returned {reply['unplain']}, not plain data")
        raise _CandidateGone("the solution's process sent garbage")


def _rebuild(name: str, message: str) -> Exception:
    """The exception the candidate raised, as a built-in exception type where there is one."""
    cls = getattr(builtins, name, None)
    blocked = (StopIteration, StopAsyncIteration)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, blocked):
        try:
            return cls(message)
        except Exception:
            pass
    return RuntimeError(f"{name}: {message}")


def _arguments(args: tuple, kwargs: dict) -> dict:
    try:
        return {"args": encode(list(args)), "kwargs": encode(dict(kwargs))}
    except _NotPlain as exc:
        raise TypeError(f"cannot pass a {exc} to the solution") from None


class _Remote:
    """Stands in, in the tester, for a function or class the response defines."""

    def __init__(self, channel: _Channel, name: str):
        self._channel, self.__name__ = channel, name

    def __call__(self, *args, **kwargs):
        return self._channel.ask({"call": self.__name__, **_arguments(args, kwargs)})

    def __repr__(self) -> str:
        return f"<solution's {self.__name__}>"


class _Handle:
    """An object that lives in the candidate's process (an instance the tests constructed)."""

    def __init__(self, channel: _Channel, index: int, type_name: str):
        self._channel, self._index, self._type = channel, index, type_name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        reply = self._channel.exchange({"object": self._index, "attribute": attribute, "get": True})
        if reply.get("callable") is not True:
            return self._channel.result(reply)

        def method(*args, **kwargs):
            request = {"object": self._index, "attribute": attribute}
            return self._channel.ask({**request, **_arguments(args, kwargs)})

        return method

    def __bool__(self) -> bool:
        raise TypeError(f"a {self._type} of the solution has no truth value in the tests")

    def __repr__(self) -> str:
        return f"<solution's {self._type} object>"


def _failure(exc: BaseException) -> str:
    import traceback  # only on failure: it costs a fresh interpreter a few milliseconds

    where = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "tests.py"]
    prefix = f"tests.py:{where[-1].lineno}: " if where else ""
    return (prefix + _describe(exc))[:_DETAIL]


def _run_tests(job: dict, channel: _Channel) -> dict:
    hello = channel.receive()
    if "raised" in hello:
        outcome = "memory" if hello["raised"] == "MemoryError" else "fail"
        detail = f"the solution does not load: {hello['raised']}: {hello.get('message', '')}"
        return {"outcome": outcome, "detail": detail[:_DETAIL]}
    if hello.get("ready") is not True:
        raise _CandidateGone("the solution's process sent garbage")
    namespace: dict = {"__name__": "__tests__", "__builtins__": builtins}
    exec(compile(job["setup"], "prompt.py", "exec"), namespace)
    for name in job["names"]:
        namespace[name] = _Remote(channel, name)
    try:
        exec(compile(job["tests"], "tests.py", "exec"), namespace)
        entry = job.get("entry_point")
        if entry and callable(namespace.get("check")):
            namespace["check"](_Remote(channel, entry))
    except BaseException as exc:
        return {"outcome": "memory" if channel.memory else "fail", "detail": _failure(exc)}
    return {"outcome": "pass", "detail": ""}


# -- setup -------------------------------------------------------------------------------------
def _set_limits(cfg: dict, *, count_tasks: bool) -> None:
    """The rlimits of this process (and ``RLIMIT_NPROC`` with ``count_tasks``). Behind the
    sandbox every one must hold; without it (no boundary, maybe not Linux) they are best effort:
    there ``RLIMIT_NPROC`` would count every process of the grader's uid, so it is not set."""
    confined = bool(cfg["confined"])
    mem = int(cfg["memory_mb"]) * 2**20
    cpu = int(cfg["cpu_s"])
    size = int(cfg["file_mb"]) * 2**20
    limits = [
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, size, size),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, 256, 256),
    ]
    if count_tasks and confined:
        # Counted per uid of this user namespace (ours alone): the tasks alive now plus the
        # processes and threads the candidate may start.
        tasks = _tasks_of(os.getuid()) + int(cfg["max_processes"])
        limits.append((resource.RLIMIT_NPROC, tasks, tasks))
    for which, soft, hard in limits:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            if confined:
                raise


def _tasks_of(uid: int) -> int:
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def _nondumpable() -> None:
    """PR_SET_DUMPABLE 0: /proc/PID/{fd,mem,environ} of this process close to its own uid."""
    if not sys.platform.startswith("linux"):
        return  # no boundary there anyway (the grader refuses unless told to run unconfined)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


# Signals the tester keeps: the uncatchable ones, SIGCHLD, and the synchronous faults.
_KEEP_SIGNALS = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGSEGV, signal.SIGBUS}
_KEEP_SIGNALS |= {signal.SIGFPE, signal.SIGILL, signal.SIGABRT}


def _ignore_signals() -> dict:
    saved = {}
    for sig in signal.valid_signals():
        if sig in _KEEP_SIGNALS:
            continue
        try:
            saved[sig] = signal.signal(sig, signal.SIG_IGN)
        except (OSError, ValueError, RuntimeError):
            continue
    return saved


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[1])
    # Only the standard library: not the script's directory, not the (writable) working directory.
    sys.path[:] = [p for p in sys.path[1:] if p and os.path.isabs(p)]
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    if cfg.get("drop_uid", -1) >= 0 and os.getuid() == 0:
        uid = int(cfg["drop_uid"])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    verdict_fd, job_fd, limit = int(cfg["verdict_fd"]), int(cfg["job_fd"]), int(cfg["frame_limit"])
    if cfg["mode"] == "probe":
        _nondumpable()
        with open("/proc/self/status", encoding="ascii") as fh:
            status = fh.read()
        with open("/proc/self/uid_map", encoding="ascii") as fh:
            uid_map = fh.read()
        reply = {"outcome": "ok", "status": status, "uid_map": uid_map}
        write_frame(verdict_fd, json.dumps(reply).encode())
        os._exit(0)
    first = json.loads(read_frame(job_fd, limit) or b"null")
    if cfg["mode"] == "program":
        os.close(verdict_fd)
        os.close(job_fd)
        _set_limits(cfg, count_tasks=True)
        sys.argv = ["program.py"]
        exec(compile(first["program"], "program.py", "exec"), {"__name__": "__main__"})
        return
    _nondumpable()
    saved = _ignore_signals()
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the candidate: nothing of the tester's but the program and its own pipes
        try:
            for fd in (job_fd, verdict_fd, req_w, resp_r):
                os.close(fd)
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            _set_limits(cfg, count_tasks=True)
            _serve(first["program"], req_r, resp_w, limit)
        finally:
            os._exit(0)
    os.close(req_r)
    os.close(resp_w)
    _set_limits(cfg, count_tasks=False)
    verdict = {"outcome": "error", "detail": "the tester was interrupted"}
    try:
        job = json.loads(read_frame(job_fd, limit) or b"null")
        os.close(job_fd)
        verdict = _run_tests(job, _Channel(req_w, resp_r, limit))
    except _CandidateGone as exc:
        verdict = {"outcome": "fail", "detail": str(exc)}
    except MemoryError:
        verdict = {"outcome": "error", "detail": "the tester ran out of memory"}
    except BaseException as exc:
        verdict = {"outcome": "error", "detail": "tester: " + _describe(exc)}
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    write_frame(verdict_fd, json.dumps(verdict).encode())
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
