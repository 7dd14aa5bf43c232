"""The Ray executor: the engine work of a stage done by engines in Ray actors.

``reasonloop generate|explore|distill|eval|annotate-steps --ray local`` (a cluster started on
127.0.0.1 for the run and stopped after) or ``--ray ADDRESS`` / ``--ray auto`` (an existing
cluster; ``auto`` reads ``RAY_ADDRESS``). :class:`RayExecutor` implements
:class:`reasonloop.generate.Executor`: each of ``actors`` Ray actors loads the engine once and
either draws whole batches (:meth:`RayExecutor.run` of :class:`~reasonloop.generate.Chunk`: generate,
distill, explore's queue, eval's samples), grading them where it drew them (code runs in that
worker's sandbox), or computes ``fn(engine, unit)`` for units that are not batches
(:meth:`RayExecutor.map`: a search strategy on one problem, one trajectory's step labels). Results
stream back to the driver in the order they finish; the driver is the only writer of the SQLite
store and a unit is the same unit the single-process run computes (same problems together, same
seeds), so the ids, resume and deduplication are those of the single-process run.

A lost actor (its process killed, its node gone) is restarted by Ray and its in-flight units are
sent again (``max_restarts`` / ``max_task_retries``); a unit whose result arrives is written once
(its rows have deterministic ids, and a re-sent unit's result replaces the lost one, never adds
to it). :func:`grade_on_ray` grades a large file's items the same way, in shards.

What this does not do: it does not start vLLM/SGLang servers (give the actors an ``openai:`` engine
spec naming running ones), it does not place actors on particular nodes beyond ``num_cpus``, it
loads no reward model (``eval --ray`` refuses reward-model scorers), and a unit that fails
``max_task_retries`` times fails the run (rows already written stay).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import reasonloop
from reasonloop.engines import load_engine, parse_engine_spec
from reasonloop.engines.base import Engine
from reasonloop.errors import EngineError, MissingDependency
from reasonloop.generate import Chunk, DrawJob, Drawn, draw
from reasonloop.records import Verdict
from reasonloop.verify.batch import GradeItem, grade_many
from reasonloop.verify.sandbox import allow_unsafe_exec

log = logging.getLogger(__name__)

# A killed actor is restarted this many times, and a batch sent again this many times, before the
# run fails: enough for a few lost workers, few enough that a batch that kills its worker every
# time (a crashing engine) stops the run instead of looping.
MAX_RESTARTS = 4
MAX_TASK_RETRIES = 4
IN_FLIGHT = 2  # batches queued per actor: one drawing, one waiting, so an actor never idles


def _reason(exc: BaseException) -> str:
    """One line for a Ray error: the last line of its text (the remote exception, for a remote
    failure; Ray's text holds the whole remote traceback, kept in the log)."""
    log.debug("ray error: %s", exc)
    lines = [x.strip() for x in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if x.strip()]
    return lines[-1] if lines else type(exc).__name__


# Ray (2.60 here) warns on every new local cluster that it enabled token authentication (its
# default), on stderr past any logging setup. That default is what we want, so the notice goes to this
# run's log instead; Ray's other warnings (e.g. authentication *disabled*) stay where Ray puts them.
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _AuthNoticeToLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Token authentication is enabled"):
            log.info("ray: %s", message)
            return False
        return True


def import_ray() -> Any:
    """The ``ray`` module, or MissingDependency naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("ray (needed by --ray)", "ray") from None
    return ray


class EngineActor:
    """One engine in one Ray worker process (wrapped by ``ray.remote`` at start)."""

    def __init__(self, engine: str | Callable[[], Engine], cpus: float, unsafe: bool):
        if unsafe:
            allow_unsafe_exec()  # the flag is this process's environment: set it here too
        if callable(engine):
            self.engine = engine()
        else:
            kind, _ = parse_engine_spec(engine)
            # llama.cpp takes every core by default; an actor owns only the CPUs Ray gave it
            options = {"n_threads": max(1, int(cpus))} if kind in ("default", "llamacpp") else {}
            self.engine = load_engine(engine, **options)

    def identity(self) -> tuple[str, str, int]:
        return self.engine.spec, self.engine.model, os.getpid()

    def call(self, fn: Callable[[Engine, Any], Any], unit: Any) -> Any:
        return fn(self.engine, unit)

    def grade(self, items: Sequence[GradeItem]) -> list[Verdict]:
        return grade_many(items, workers=1)


class RayExecutor:
    """Engines in ``actors`` Ray actors of ``cpus`` CPUs each (see the module docstring).

    ``address``: ``"local"`` starts a cluster of ``ceil(actors * cpus)`` CPUs on 127.0.0.1 (shut
    down by :meth:`close`); anything else is passed to ``ray.init`` (``"auto"``, ``HOST:PORT``,
    ``ray://HOST:PORT``). When this process is already connected, that connection is used and left
    open. ``engine``: an engine spec, or a zero-argument callable that builds the engine (tests).
    Nothing starts before the first use of :attr:`spec`, :meth:`run` or :meth:`start`."""

    def __init__(
        self,
        address: str,
        *,
        engine: str | Callable[[], Engine],
        actors: int = 2,
        cpus: float = 1.0,
        unsafe_code_exec: bool = False,
    ):
        self.address = address
        self.engine = engine
        self.n_actors = actors
        self.cpus = cpus
        self.unsafe = unsafe_code_exec
        self.actors: list[Any] = []
        self._identity: tuple[str, str] | None = None
        self._owns_cluster = False
        self._ray: Any = None

    def start(self) -> None:
        if self.actors:
            return
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            if self.address == "local":
                # the workers import the reasonloop this process runs (a checkout on sys.path, not
                # only an installed copy): on this machine that is always the same code
                here = str(Path(reasonloop.__file__).resolve().parents[1])
                path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
                notice = _AuthNoticeToLog()
                logging.getLogger(RAY_AUTH_LOGGER).addFilter(notice)
                try:
                    ray.init(
                        address="local",
                        num_cpus=max(1, math.ceil(self.n_actors * self.cpus)),
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        logging_level=logging.WARNING,
                        runtime_env={"env_vars": {"PYTHONPATH": path}},
                    )
                finally:
                    logging.getLogger(RAY_AUTH_LOGGER).removeFilter(notice)
            else:
                ray.init(address=self.address, logging_level=logging.WARNING)
            self._owns_cluster = True
        free = ray.available_resources().get("CPU", 0.0)
        if free < self.n_actors * self.cpus:
            # an actor waits for its CPUs (e.g. for an autoscaler to add a node): say so, since
            # on a fixed cluster that wait never ends
            log.warning(
                "ray: %d actors x %g CPUs wanted, %g CPUs free: the actors wait for CPUs "
                "(--ray-actors / --ray-cpus ask for fewer)",
                self.n_actors,
                self.cpus,
                free,
            )
        remote = ray.remote(
            num_cpus=self.cpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES
        )(EngineActor)
        self.actors = [
            remote.remote(self.engine, self.cpus, self.unsafe) for _ in range(self.n_actors)
        ]
        try:
            ids = ray.get([a.identity.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise EngineError(f"ray: the engine actors did not start: {_reason(exc)}") from exc
        self._identity = ids[0][:2]
        log.info("ray: %d engine actors (%s), pids %s", len(ids), ids[0][0], [i[2] for i in ids])

    def pids(self) -> list[int]:
        """The process ids of the actors now (a restarted actor has a new one)."""
        self.start()
        return [i[2] for i in self._ray.get([a.identity.remote() for a in self.actors])]

    @property
    def spec(self) -> str:
        self.start()
        assert self._identity is not None
        return self._identity[0]

    @property
    def model(self) -> str:
        self.start()
        assert self._identity is not None
        return self._identity[1]

    def _stream(self, calls: Sequence[Callable[[Any], Any]]) -> Iterator[tuple[int, Any]]:
        """``(i, result of calls[i](actor))`` in the order they finish, each call sent to an actor
        with a free slot (at most IN_FLIGHT each)."""
        self.start()
        ray = self._ray
        waiting = list(range(len(calls)))[::-1]
        pending: dict[Any, tuple[int, int]] = {}  # ref -> (call index, actor index)
        load = [0] * len(self.actors)

        def send() -> None:
            for a, actor in enumerate(self.actors):
                while waiting and load[a] < IN_FLIGHT:
                    i = waiting.pop()
                    pending[calls[i](actor)] = (i, a)
                    load[a] += 1

        send()
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ref)
            load[a] -= 1
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise EngineError(f"ray: batch {i} failed after retries: {_reason(exc)}") from exc
            send()
            yield i, result

    def run(self, chunks: Sequence[Chunk], job: DrawJob) -> Iterator[Drawn]:
        """The chunks drawn by the actors, each yielded once, in the order they finish."""
        for _, drawn in self.map(functools.partial(draw, job=job), chunks):
            yield drawn

    def map(
        self, fn: Callable[[Engine, Any], Any], units: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        """``(i, fn(engine, units[i]))`` computed by the actors, each yielded once, in the order
        they finish. ``fn`` is pickled once (a module-level function or a partial of one)."""
        if not units:
            return
        self.start()
        shared = self._ray.put(fn)  # sent once, not with every unit
        calls = [lambda actor, u=u: actor.call.remote(shared, u) for u in units]
        yield from self._stream(calls)

    def grade(self, items: Sequence[GradeItem], shard: int = 256) -> list[Verdict]:
        """Verdicts for ``items``, in order, graded in shards of ``shard`` items by the actors."""
        shards = [items[i : i + shard] for i in range(0, len(items), shard)]
        calls = [lambda actor, s=s: actor.grade.remote(s) for s in shards]
        out: list[list[Verdict]] = [[] for _ in shards]
        for i, verdicts in self._stream(calls):
            out[i] = verdicts
        return [v for part in out for v in part]

    def close(self) -> None:
        if self._ray is None:
            return
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
        if self._owns_cluster:
            self._ray.shutdown()
        self._ray = None


@contextmanager
def ray_executor(config: Any, engine: str | Callable[[], Engine] | None = None):
    """The executor a stage config asks for: a :class:`RayExecutor` when its ``ray`` option is set
    (closed on exit), else None (the stage runs here). ``engine``: the spec (or factory) the
    actors load, by default ``config.engine`` (``distill`` passes its teacher). Ray is imported
    now, so that a missing install fails before any work."""
    address = getattr(config, "ray", None)
    if not address:
        yield None
        return
    import_ray()
    if engine is None:
        engine = config.engine
    if isinstance(engine, str):
        parse_engine_spec(engine, key="engine")  # a bad spec fails here, not in the actors
    ex = RayExecutor(
        address,
        engine=engine,
        actors=config.ray_actors,
        cpus=config.ray_cpus,
        unsafe_code_exec=getattr(config, "unsafe_code_exec", False),
    )
    try:
        yield ex
    finally:
        ex.close()


def grade_on_ray(
    items: Sequence[GradeItem],
    address: str,
    *,
    actors: int = 2,
    cpus: float = 1.0,
    unsafe_code_exec: bool = False,
    shard: int = 256,
) -> list[Verdict]:
    """``grade_many(items)`` on Ray: the same verdicts, in order. The actors load no model (their
    engine is the model-free ``countdown`` one)."""
    import_ray()
    ex = RayExecutor(
        address, engine="countdown", actors=actors, cpus=cpus, unsafe_code_exec=unsafe_code_exec
    )
    try:
        return ex.grade(items, shard=shard)
    finally:
        ex.close()
