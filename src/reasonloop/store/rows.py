"""The codec between trajectory records and the store's rows: checking a record before it is
written, encoding it as a row of :data:`~reasonloop.store.schema.STORED_COLUMNS`, decoding a row
back, and the flat dict exports write.

What it is not: the schema (:mod:`reasonloop.store.schema`) or the store (:mod:`reasonloop.store.db`).
NaN floats are encoded as SQL NULL, so they decode as ``None``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import DataError
from reasonloop.records import Generator, Trajectory, Verdict
from reasonloop.store.schema import EXPORTED_COLUMNS, STORED_COLUMNS, TRAJECTORY_COLUMNS

_JSON = tuple(c.name for c in TRAJECTORY_COLUMNS if c.kind == "json" and c.sql is not None)


@dataclass(frozen=True, slots=True)
class StoredTrajectory:
    """A trajectory as stored: the record (with ``id`` set) plus what only the store knows.

    ``meta`` is the batch metadata given to :meth:`Store.add_trajectories`; ``created_at`` an
    ISO-8601 UTC time."""

    trajectory: Trajectory
    stage: str
    sample_index: int
    created_at: str
    meta: dict[str, Any] | None = None


def real_or_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


_OPTIONAL_STR = ("thought", "solution", "extracted", "finish_reason", "parent", "critique", "id")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def validated(t: Any, i: int) -> Trajectory:
    """The trajectory, its field types checked (what SQLite's loose typing would let through).

    Hand-written rather than ``from_dict(to_dict(t))``: that round trip was 80% of insert time."""
    where = f"trajectory {i}"

    def bad(field: str, expected: str, value: Any) -> DataError:
        return DataError(f"expected {expected}, got {value!r:.60}", where=where, field=field)

    if not isinstance(t, Trajectory):
        raise DataError(f"{where}: expected a Trajectory, got {type(t).__name__}")
    if not isinstance(t.problem_id, str) or not t.problem_id:
        raise bad("problem_id", "a non-empty string", t.problem_id)
    if not isinstance(t.text, str):
        raise bad("text", "a string", t.text)
    for name in _OPTIONAL_STR:
        value = getattr(t, name)
        if value is not None and not isinstance(value, str):
            raise bad(name, "a string or null", value)
    if not is_int(t.tokens):
        raise bad("tokens", "an integer", t.tokens)
    for name in ("mean_logprob", "perplexity"):
        value = getattr(t, name)
        if value is not None and not is_num(value):
            raise bad(name, "a number or null", value)
    v = t.verdict
    if v is not None:
        if not isinstance(v, Verdict):
            raise bad("verdict", "a Verdict", v)
        if not isinstance(v.correct, bool):
            raise bad("verdict.correct", "true/false", v.correct)
        if not isinstance(v.reason, str):
            raise bad("verdict.reason", "a string", v.reason)
        if v.extracted is not None and not isinstance(v.extracted, str):
            raise bad("verdict.extracted", "a string or null", v.extracted)
        if v.boundary is not None and not isinstance(v.boundary, str):
            raise bad("verdict.boundary", "a string or null", v.boundary)
    g = t.generator
    if g is not None:
        if not isinstance(g, Generator):
            raise bad("generator", "a Generator", g)
        for name in ("engine", "model", "role"):
            if not isinstance(getattr(g, name), str):
                raise bad(f"generator.{name}", "a string", getattr(g, name))
        if not is_int(g.round):
            raise bad("generator.round", "an integer", g.round)
        for name in ("temperature", "top_p"):
            value = getattr(g, name)
            if value is not None and not is_num(value):
                raise bad(f"generator.{name}", "a number or null", value)
        for name in ("max_tokens", "seed"):
            value = getattr(g, name)
            if value is not None and not is_int(value):
                raise bad(f"generator.{name}", "an integer or null", value)
    cs = t.critic_scores
    if cs is not None and (
        not isinstance(cs, dict) or not all(isinstance(k, str) and is_num(x) for k, x in cs.items())
    ):
        raise bad("critic_scores", "an object of numbers", cs)
    return t


def encode(
    t: Trajectory, tid: str, stage: str, idx: int, settings: str, meta_json: str | None, now: str
) -> tuple[Any, ...]:
    v, g = t.verdict, t.generator
    return (
        tid,
        t.problem_id,
        stage,
        idx,
        settings,
        t.text,
        t.thought,
        t.solution,
        t.extracted,
        None if v is None else int(v.correct),
        None if v is None else v.reason,
        None if v is None else v.extracted,
        None if v is None else v.boundary,
        t.tokens,
        real_or_none(t.mean_logprob),
        real_or_none(t.perplexity),
        t.finish_reason,
        None if g is None else g.engine,
        None if g is None else g.model,
        None if g is None else g.round,
        None if g is None else real_or_none(g.temperature),
        None if g is None else real_or_none(g.top_p),
        None if g is None else g.max_tokens,
        None if g is None else g.seed,
        None if g is None else g.role,
        t.parent,
        json_or_none(
            None if t.critic_scores is None else {k: float(x) for k, x in t.critic_scores.items()}
        ),
        t.critique,
        meta_json,
        now,  # keep last: duplicate detection compares everything before it
    )


def decode_trajectory(row: Sequence[Any]) -> Trajectory:
    r = dict(zip(STORED_COLUMNS, row, strict=True))
    verdict = (
        None
        if r["reason"] is None
        else Verdict(
            correct=bool(r["correct"]),
            extracted=r["verdict_extracted"],
            reason=r["reason"],
            boundary=r["boundary"],
        )
    )
    generator = (
        None
        if r["engine"] is None
        else Generator(**{f.name: r[f.name] for f in dataclasses.fields(Generator)})
    )
    scores = None if r["critic_scores"] is None else json.loads(r["critic_scores"])
    # the columns named as the record's fields, stored as they are (the rest decoded here)
    same = {f.name for f in dataclasses.fields(Trajectory)} & set(r) - {"critic_scores"}
    return Trajectory(
        **{name: r[name] for name in same},
        verdict=verdict,
        generator=generator,
        critic_scores=scores,
    )


def decode(row: Sequence[Any]) -> StoredTrajectory:
    r = dict(zip(STORED_COLUMNS, row, strict=True))
    return StoredTrajectory(
        trajectory=decode_trajectory(row),
        stage=r["stage"],
        sample_index=r["sample_index"],
        created_at=r["created_at"],
        meta=None if r["meta"] is None else json.loads(r["meta"]),
    )


def flat(stored: StoredTrajectory, scores: dict[str, float | None]) -> dict[str, Any]:
    """The export row of a stored trajectory (keys :data:`~reasonloop.store.schema.EXPORTED_COLUMNS`):
    the columns as stored, ``correct`` as a bool, JSON columns as objects, plus its ``scores``."""
    t = stored.trajectory
    meta_json = json_or_none(stored.meta)
    row = dict(
        zip(
            STORED_COLUMNS,
            encode(
                t,
                t.id or "",
                stored.stage,
                stored.sample_index,
                "",  # settings: not exported
                meta_json,
                stored.created_at,
            ),
            strict=True,
        )
    )
    if row["correct"] is not None:
        row["correct"] = bool(row["correct"])
    for name in _JSON:
        if row[name] is not None:
            row[name] = json.loads(row[name])
    row["scores"] = scores
    return {name: row[name] for name in EXPORTED_COLUMNS}


__all__ = [
    "StoredTrajectory",
    "decode",
    "decode_trajectory",
    "encode",
    "flat",
    "is_int",
    "is_num",
    "json_or_none",
    "real_or_none",
    "validated",
]
