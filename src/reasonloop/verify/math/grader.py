"""The grader: :class:`MathGrader` (in-process decisions first, a pool of sympy workers for the rest,
a verdict cache) and the module-level :func:`grade_math`, :func:`answers_equal` and
:func:`compare_answers` on a shared default grader.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.format import parse as parse_response
from reasonloop.records import Verdict
from reasonloop.verify.extract import extract_from_solution
from reasonloop.verify.math.compare import _fast_compare
from reasonloop.verify.math.sympy_worker import _full_compare
from reasonloop.verify.pool import WorkerPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MathGraderConfig:
    """How :class:`MathGrader` runs.

    ``timeout``: seconds one sympy comparison may take in a worker before it is killed (verdict
    ``timeout``). ``workers``: worker processes for what the in-process fast path cannot decide
    (0: one per CPU, at most 4). ``cache_size``: remembered (gold, prediction) decisions (0: no
    cache). ``memory_mb``: address-space cap per worker (0: none).
    """

    timeout: float = 3.0
    workers: int = 0
    cache_size: int = 65_536
    memory_mb: int = 2048

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise ConfigError(f"MathGraderConfig.timeout must be > 0 seconds, got {self.timeout!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(
                f"MathGraderConfig.workers must be an integer >= 0, got {self.workers!r}"
            )
        if not isinstance(self.cache_size, int) or self.cache_size < 0:
            raise ConfigError(
                f"MathGraderConfig.cache_size must be an integer >= 0, got {self.cache_size!r}"
            )
        if not isinstance(self.memory_mb, int) or self.memory_mb < 0:
            raise ConfigError(
                f"MathGraderConfig.memory_mb must be an integer >= 0, got {self.memory_mb!r}"
            )


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(4, n))


class MathGrader:
    """Grades math responses against gold answers: fast path in-process, sympy in workers.

    >>> with MathGrader() as g:
    ...     g.grade("\\\\frac{1}{2}", "so $\\\\boxed{0.5}$").correct
    True

    Thread-safe. ``close()`` stops the workers (also done at interpreter exit).
    """

    def __init__(self, config: MathGraderConfig | None = None):
        self.config = config or MathGraderConfig()
        self._pool: Any = None
        self._cache: OrderedDict[tuple[str, str, float], str] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"fast": 0, "worker": 0, "cached": 0, "timeout": 0}

    # -- workers -----------------------------------------------------------------------------
    def _get_pool(self) -> Any:
        if self._pool is None:
            self._pool = WorkerPool(
                self.config.workers or _default_workers(),
                timeout=self.config.timeout,
                preload=("sympy", "math_verify", "reasonloop.verify.math.sympy_worker"),
                init="reasonloop.verify.math.sympy_worker:_warm_worker",
                memory_mb=self.config.memory_mb or None,
            )
            _LIVE.add(self)
        return self._pool

    def warm(self) -> None:
        """Start the worker processes now and wait until they are ready."""
        self._get_pool().start(wait_ready=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        _LIVE.discard(self)

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache -------------------------------------------------------------------------------
    def _cached(self, key: tuple[str, str, float]) -> str | None:
        with self._lock:
            r = self._cache.get(key)
            if r is not None:
                self._cache.move_to_end(key)
            return r

    def _store(self, key: tuple[str, str, float], reason: str) -> None:
        if self.config.cache_size <= 0:
            return
        with self._lock:
            self._cache[key] = reason
            self._cache.move_to_end(key)
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)

    # -- comparing answers -------------------------------------------------------------------
    def compare(self, gold: str, pred: str, *, timeout: float | None = None) -> str:
        """The reason for an already-extracted prediction: ``correct``, ``wrong``,
        ``unparseable``, ``timeout`` or ``error``. Never raises."""
        return self.compare_many([(gold, pred)], timeout=timeout)[0]

    def compare_many(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> list[str]:
        limit = self.config.timeout if timeout is None else float(timeout)
        out: list[str | None] = [None] * len(pairs)
        pending: dict[tuple[str, str, float], list[int]] = {}
        for i, (gold, pred) in enumerate(pairs):
            gold = gold if isinstance(gold, str) else ""
            pred = pred if isinstance(pred, str) else ""
            key = (gold, pred, limit)
            hit = self._cached(key)
            if hit is not None:
                out[i] = hit
                self.stats["cached"] += 1
                continue
            if key in pending:
                pending[key].append(i)
                continue
            try:
                fast = _fast_compare(gold, pred)
            except Exception:  # never let a normaliser bug become a raised error
                logger.debug("fast path failed on %r vs %r", gold, pred, exc_info=True)
                fast = None
            if fast is not None:
                self.stats["fast"] += 1
                out[i] = fast
                self._store(key, fast)
            else:
                pending[key] = [i]
        if pending:
            keys = list(pending)
            try:
                results = self._get_pool().map(_full_compare, [k[:2] for k in keys], timeout=limit)
            except Exception as exc:
                logger.warning("math grading workers failed: %s", exc)
                results = None
            for j, key in enumerate(keys):
                if results is None:
                    reason = "error"
                else:
                    res = results[j]
                    if res.ok and res.value in ("correct", "wrong", "unparseable"):
                        reason = res.value
                    elif res.timed_out:
                        reason = "timeout"
                        self.stats["timeout"] += 1
                    else:
                        reason = "error"
                        logger.debug("worker error on %r: %s", key[:2], res.error)
                self.stats["worker"] += 1
                if reason != "error":
                    self._store(key, reason)
                for i in pending[key]:
                    out[i] = reason
        return [r if r is not None else "error" for r in out]

    # -- grading responses -------------------------------------------------------------------
    def grade(self, gold: str, response: str, *, timeout: float | None = None) -> Verdict:
        """The verdict of one response against a gold answer. Never raises, never hangs."""
        return self.grade_many([(gold, response)], timeout=timeout)[0]

    def grade_many(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> list[Verdict]:
        """Verdicts for ``(gold, response)`` pairs, in input order; undecided pairs are
        compared in parallel worker processes."""
        verdicts: list[Verdict | None] = [None] * len(pairs)
        todo: list[int] = []
        extracted: list[str | None] = [None] * len(pairs)
        golds: list[str] = [""] * len(pairs)
        for i, pair in enumerate(pairs):
            try:
                gold, response = pair
            except (TypeError, ValueError):
                verdicts[i] = Verdict(False, None, "bad_gold")
                continue
            if isinstance(gold, int) and not isinstance(gold, bool):
                gold = str(gold)  # AMC/AIME answers read from JSON as numbers
            if not isinstance(gold, str) or not gold.strip():
                verdicts[i] = Verdict(False, None, "bad_gold")
                continue
            parsed = parse_response(response if isinstance(response, str) else "")
            if parsed.solution is None:
                verdicts[i] = Verdict(False, None, "thought_unfinished")
                continue
            try:
                pred = extract_from_solution(parsed.solution)
            except Exception:
                logger.debug("extraction failed", exc_info=True)
                pred = None
            if pred is None:
                verdicts[i] = Verdict(False, None, "no_answer")
                continue
            extracted[i], golds[i] = pred, gold
            todo.append(i)
        reasons = self.compare_many([(golds[i], extracted[i] or "") for i in todo], timeout=timeout)
        for i, reason in zip(todo, reasons, strict=True):
            verdicts[i] = Verdict(reason == "correct", extracted[i], reason)
        return [v if v is not None else Verdict(False, None, "error") for v in verdicts]


_LIVE: set[MathGrader] = set()
_DEFAULT: MathGrader | None = None
_DEFAULT_LOCK = threading.Lock()


def _default_grader() -> MathGrader:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MathGrader()
        return _DEFAULT


@atexit.register
def _close_all() -> None:
    for grader in list(_LIVE):
        with contextlib.suppress(Exception):
            grader.close()


def grade_math(gold: str, response: str, *, timeout: float = 3.0) -> Verdict:
    """Grade one math response against its gold answer (see the module docstring).

    Reasons: ``correct``, ``wrong``, ``no_answer``, ``thought_unfinished``, ``unparseable``,
    ``timeout`` (and ``bad_gold`` / ``error`` for an empty gold or a failed worker). Never
    raises, never hangs.
    """
    try:
        return _default_grader().grade(gold, response, timeout=timeout)
    except Exception:  # the contract is "never raises"
        logger.exception("grade_math failed")
        return Verdict(False, None, "error")


def answers_equal(a: str, b: str, *, timeout: float = 3.0) -> bool:
    """Whether two already-extracted answers are equivalent (``a`` is read as the reference).

    Used to group answers for majority voting; symmetric for everything but equations, where
    ``x=5`` vs ``5`` is equal both ways but a general equation never equals a bare value.
    """
    try:
        return compare_answers(a, b, timeout=timeout) == "correct"
    except Exception:
        logger.exception("answers_equal failed")
        return False


def compare_answers(gold: str, pred: str, *, timeout: float = 3.0) -> str:
    """``correct`` / ``wrong`` / ``unparseable`` / ``timeout`` / ``error`` for two extracted
    answers (gold first). Uses the shared default grader."""
    return _default_grader().compare(gold, pred, timeout=timeout)
