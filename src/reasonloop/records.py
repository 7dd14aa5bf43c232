"""Typed records that flow between stages: frozen, slotted dataclasses with a JSON round trip.

``to_dict`` / ``from_dict`` are the only (de)serialisers; ``from_dict`` checks every field's type
and raises :class:`~reasonloop.errors.DataError` naming the field (and ``where``, e.g. ``file:line``)
instead of letting a bad value travel on. Unknown keys are ignored only where a record says so
(``Problem`` ignores extra dataset columns such as ``subject`` variants); elsewhere they are errors.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from reasonloop.errors import DataError

Domain = Literal["math", "science", "code", "puzzle"]
DOMAINS: tuple[str, ...] = get_args(Domain)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The grade of one response.

    ``reason`` is one of: ``correct``, ``wrong``, ``no_answer`` (nothing to extract),
    ``thought_unfinished`` (the thought never ended), ``unparseable`` (an answer that could not be
    read as math), ``timeout``, ``memory``, ``error`` (code raised / failed tests), ``bad_gold``.
    ``boundary`` is the sandbox that ran a code verdict's program: ``bwrap`` (namespaces, seccomp,
    an unprivileged uid) or ``none`` (unsafe execution allowed); None where no code ran.
    """

    correct: bool
    extracted: str | None
    reason: str
    boundary: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem with a known answer.

    ``answer`` is the gold answer: LaTeX / plain text for math, a letter for choice questions
    (``choices`` then holds the option texts in letter order), and the reference completion for code.
    """

    id: str
    domain: Domain
    problem: str
    answer: str
    solution: str | None = None
    choices: tuple[str, ...] | None = None
    tests: str | None = None
    entry_point: str | None = None
    source: str | None = None
    level: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Generator:
    """Provenance of a sampled text: which engine/model made it, with which settings, in which round."""

    engine: str
    model: str
    round: int = 0
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    role: str = "sample"  # sample | teacher | rel-generator | rel-revision | explore | eval ...


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One full response to a problem, split into the format's parts, with its verdict."""

    problem_id: str
    text: str
    thought: str | None = None
    solution: str | None = None
    extracted: str | None = None
    verdict: Verdict | None = None
    tokens: int = 0
    mean_logprob: float | None = None
    perplexity: float | None = None
    finish_reason: str | None = None
    generator: Generator | None = None
    parent: str | None = None
    critic_scores: dict[str, float] | None = None
    critique: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class PreferencePair:
    """A DPO pair: the prompt and a chosen and a rejected response, with their trajectory ids."""

    problem_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_id: str | None = None
    rejected_id: str | None = None
    chosen_perplexity: float | None = None
    rejected_perplexity: float | None = None


@dataclass(frozen=True, slots=True)
class StepLabel:
    """A Math-Shepherd step label: of ``n`` completions from the step prefix, ``n_correct`` reached
    the gold answer. ``soft`` = n_correct / n, ``hard`` = n_correct > 0."""

    problem_id: str
    trajectory_id: str
    step_index: int
    steps: tuple[str, ...]
    n: int
    n_correct: int

    @property
    def soft(self) -> float:
        return self.n_correct / self.n if self.n else 0.0

    @property
    def hard(self) -> bool:
        return self.n_correct > 0


@dataclass(frozen=True, slots=True)
class EvalResult:
    """The outcome of one evaluation run: a benchmark, a model, a strategy and its metrics.
    ``scores``: each problem's accuracy (the mean verdict of its samples) by problem id, so that
    two runs on the same problems can be compared pair by pair (empty in files written before
    it was kept)."""

    benchmark: str
    model: str
    strategy: str
    n_problems: int
    metrics: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    mean_tokens: float | None = None
    scores: dict[str, float] = field(default_factory=dict)


Record = Verdict | Problem | Generator | Trajectory | PreferencePair | StepLabel | EvalResult
R = TypeVar("R")

# Records that tolerate extra keys (datasets carry extra columns); the rest reject them.
_LENIENT: frozenset[type] = frozenset({Problem})


def to_dict(record: Any) -> dict[str, Any]:
    """A JSON-ready dict of a record (nested records become dicts, tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        out[f.name] = _dump(getattr(record, f.name))
    return out


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def to_json(record: Any) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False)


def from_dict(cls: type[R], data: Any, *, where: str | None = None) -> R:
    """Build ``cls`` from a dict, checking every field; raises DataError naming the bad field."""
    if not isinstance(data, dict):
        raise DataError(
            f"expected a JSON object for {cls.__name__}, got {type(data).__name__}", where=where
        )
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown and cls not in _LENIENT:
        raise DataError(
            f"unknown key(s) {sorted(unknown)} for {cls.__name__}; valid keys: {sorted(names)}",
            where=where,
        )
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DataError(
                    f"missing required field for {cls.__name__}", where=where, field=f.name
                )
            continue
        kwargs[f.name] = _load(hints[f.name], data[f.name], where=where, field=f.name)
    return cls(**kwargs)


def from_json(cls: type[R], line: str, *, where: str | None = None) -> R:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", where=where) from None
    return from_dict(cls, data, where=where)


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINT_CACHE:
        _HINT_CACHE[cls] = get_type_hints(cls)
    return _HINT_CACHE[cls]


def load_union(
    tp: Any,
    load: Callable[[Any], R],
    catch: type[Exception],
    fail: Callable[[list[Exception]], Exception],
) -> R:
    """A value of the union type ``tp``: ``load(member)`` for each member but ``None`` in order,
    the first that does not raise ``catch``; when every one does, ``fail(the errors)`` is raised.
    The records' loader and the recipe's config loader read unions this way."""
    errors: list[Exception] = []
    for arg in get_args(tp):
        if arg is not type(None):
            try:
                return load(arg)
            except catch as exc:
                errors.append(exc)
    raise fail(errors)


def _load(tp: Any, value: Any, *, where: str | None, field: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        return load_union(
            tp,
            lambda arg: _load(arg, value, where=where, field=field),
            DataError,
            lambda errors: (
                errors[0]
                if errors
                else DataError("value may not be null", where=where, field=field)
            ),
        )
    if origin is Literal:
        if value not in get_args(tp):
            raise DataError(
                f"{value!r} is not one of {list(get_args(tp))}", where=where, field=field
            )
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise DataError(
                f"expected a list, got {type(value).__name__}", where=where, field=field
            )
        (item,) = get_args(tp)[:1]
        return tuple(_load(item, v, where=where, field=field) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(
                f"expected an object, got {type(value).__name__}", where=where, field=field
            )
        _, vt = get_args(tp)
        return {str(k): _load(vt, v, where=where, field=field) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"expected a number, got {value!r}", where=where, field=field)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"expected an integer, got {value!r}", where=where, field=field)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise DataError(
                f"expected a string, got {type(value).__name__} {value!r:.40}",
                where=where,
                field=field,
            )
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise DataError(f"expected true/false, got {value!r}", where=where, field=field)
        return value
    return value
