"""Export the store to JSON Lines, parquet or a ``datasets.Dataset``, in the shapes TRL reads.

Three kinds of rows:

- ``"trajectories"``: one flat record per stored trajectory, every column (:data:`TRAJECTORY_FIELDS`),
  plus ``scores`` (the annotations of :meth:`Store.set_scores`). In parquet and HF datasets the
  object columns (``critic_scores``, ``scores``, ``meta``) are JSON text, since their keys vary by
  row; in JSONL they are objects.
- ``"sft"``: TRL's conversational language-modelling rows, ``{"messages": [{"role": "system", …}?,
  {"role": "user", "content": prompt}, {"role": "assistant", "content": response}]}`` — correct
  trajectories only unless ``correct=`` says otherwise. LLaMA-Factory reads the same rows as its
  ``sharegpt`` format with ``messages`` / ``role`` / ``content`` tags.
- ``"preference"``: TRL's conversational preference rows, ``{"prompt": [user turn], "chosen":
  [assistant turn], "rejected": [assistant turn]}``, from :class:`PreferencePair` records given by
  the caller (choosing pairs is the pair-selection stage's job, not the export's).
- ``"stepwise"``: TRL's stepwise-supervision rows, ``{"prompt": str, "completions": [step, ...],
  "labels": [bool, ...]}``, one per labelled trajectory (and labeller) from the store's Math-Shepherd
  step labels (:mod:`reasonloop.search.annotate`): hard labels by default, the fraction of correct
  completions with ``soft=True``. Only a trajectory's steps labelled from its first step on
  without a gap are written.

Files are written to a temporary file beside the target and renamed over it, so a crash never leaves
a half-written export. It does not deduplicate, filter for quality, or apply a chat template.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reasonloop.errors import ConfigError, DataError, MissingDependency
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import PreferencePair, Problem
from reasonloop.store.db import Store
from reasonloop.store.rows import flat
from reasonloop.store.schema import EXPORTED_COLUMNS, TRAJECTORY_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

Kind = Literal["trajectories", "sft", "preference", "stepwise"]
KINDS: tuple[str, ...] = ("trajectories", "sft", "preference", "stepwise")

TRAJECTORY_FIELDS: tuple[str, ...] = EXPORTED_COLUMNS
_KIND = {c.name: c.kind for c in TRAJECTORY_COLUMNS}
_JSON_COLUMNS = tuple(name for name in TRAJECTORY_FIELDS if _KIND[name] == "json")

# "auto": correct only for SFT, everything for the trajectory dump.
Correct = bool | None | Literal["auto"]


# --- rows -----------------------------------------------------------------------------------------


def trajectory_rows(
    store: Store,
    *,
    stage: str | None = None,
    correct: bool | None = None,
    problem_id: str | None = None,
    role: str | None = None,
    round: int | None = None,
) -> Iterator[dict[str, Any]]:
    """One flat dict per stored trajectory (keys :data:`TRAJECTORY_FIELDS`), oldest first."""
    scores = store.all_scores()
    for s in store.stored(problem_id, stage, correct, role, round):
        yield flat(s, scores.get(s.trajectory.id or "", {}))


def sft_rows(
    store: Store,
    *,
    stage: str | None = None,
    correct: bool | None = True,
    problem_id: str | None = None,
    role: str | None = None,
    round: int | None = None,
    system: str | None = None,
    prompt: Callable[[Problem], str] | None = None,
) -> Iterator[dict[str, Any]]:
    """TRL conversational SFT rows: the problem's user prompt (``prompt(problem)``, by default
    :func:`reasonloop.problems.prompt.prompt_for`) and the trajectory's full text as the reply.

    Raises DataError when a trajectory's problem is not in the store (add the problems first)."""
    make_prompt = prompt or prompt_for
    cache: dict[str, str] = {}
    for t in store.trajectories(problem_id, stage, correct, role, round):
        if t.problem_id not in cache:
            problem = store.get_problem(t.problem_id)
            if problem is None:
                raise DataError(
                    f"{store.path}: trajectory {t.id} belongs to problem {t.problem_id!r}, which is "
                    "not in the store; add the problems (Store.add_problems) before exporting SFT"
                )
            cache[t.problem_id] = make_prompt(problem)
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": cache[t.problem_id]})
        messages.append({"role": "assistant", "content": t.text})
        yield {"messages": messages}


def preference_rows(
    pairs: Iterable[PreferencePair], *, system: str | None = None
) -> Iterator[dict[str, Any]]:
    """TRL conversational preference rows from pairs; the system turn, if any, opens the prompt."""
    for i, pair in enumerate(pairs):
        if not isinstance(pair, PreferencePair):
            raise DataError(f"pair {i}: expected a PreferencePair, got {type(pair).__name__}")
        prompt = [{"role": "system", "content": system}] if system else []
        prompt.append({"role": "user", "content": pair.prompt})
        yield {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
        }


def stepwise_rows(
    store: Store,
    *,
    stage: str | None = None,
    problem_id: str | None = None,
    labeler: str | None = None,
    soft: bool = False,
    prompt: Callable[[Problem], str] | None = None,
) -> Iterator[dict[str, Any]]:
    """TRL stepwise-supervision rows from the store's step labels (see the module docstring).
    ``labeler`` picks one labeller's labels (:meth:`Store.step_labelers` lists them); by default
    every labeller's labels make their own rows. Raises DataError when a labelled trajectory's
    problem is not in the store."""
    make_prompt = prompt or prompt_for
    cache: dict[str, str] = {}
    in_stage = None if stage is None else {t.id for t in store.trajectories(stage=stage)}
    for _, labels in store.step_labels(labeler=labeler, problem_id=problem_id):
        first = labels[0]
        if in_stage is not None and first.trajectory_id not in in_stage:
            continue
        if first.problem_id not in cache:
            problem = store.get_problem(first.problem_id)
            if problem is None:
                raise DataError(
                    f"{store.path}: step labels of trajectory {first.trajectory_id} belong to "
                    f"problem {first.problem_id!r}, which is not in the store"
                )
            cache[first.problem_id] = make_prompt(problem)
        yield {
            "prompt": cache[first.problem_id],
            "completions": list(labels[-1].steps),
            "labels": [lab.soft if soft else lab.hard for lab in labels],
        }


def rows(
    store: Store | None,
    kind: Kind = "trajectories",
    *,
    pairs: Iterable[PreferencePair] | None = None,
    stage: str | None = None,
    correct: Correct = "auto",
    problem_id: str | None = None,
    role: str | None = None,
    round: int | None = None,
    system: str | None = None,
    prompt: Callable[[Problem], str] | None = None,
    labeler: str | None = None,
    soft: bool = False,
) -> Iterator[dict[str, Any]]:
    """The rows of one export ``kind`` (see the module docstring); ``correct="auto"`` means
    correct only for ``sft`` and all for ``trajectories``. ``pairs`` is required for
    ``preference`` (where ``store`` may be None) and refused otherwise; ``labeler`` and ``soft``
    are for ``stepwise``."""
    if kind not in KINDS:
        raise ConfigError(f"unknown export kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == "preference":
        if pairs is None:
            raise ConfigError("export kind 'preference' needs pairs= (PreferencePair records)")
        return preference_rows(pairs, system=system)
    if pairs is not None:
        raise ConfigError(f"pairs= is only used by export kind 'preference', not {kind!r}")
    if store is None:
        raise ConfigError(f"export kind {kind!r} needs a store")
    filters: dict[str, Any] = {
        "stage": stage,
        "problem_id": problem_id,
        "role": role,
        "round": round,
    }
    if kind == "stepwise":
        return stepwise_rows(
            store,
            stage=stage,
            problem_id=problem_id,
            labeler=labeler,
            soft=soft,
            prompt=prompt,
        )
    if kind == "sft":
        return sft_rows(
            store,
            correct=True if correct == "auto" else correct,
            system=system,
            prompt=prompt,
            **filters,
        )
    return trajectory_rows(store, correct=None if correct == "auto" else correct, **filters)


# --- writers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def export_jsonl(
    store: Store | None,
    path: str | Path,
    *,
    kind: Kind = "trajectories",
    **selection: Any,
) -> int:
    """Write the rows of ``kind`` to ``path`` as JSON Lines; the row count. ``selection``: the
    keyword options of :func:`rows` (pairs, stage, correct, problem_id, role, round, system,
    prompt, labeler, soft)."""
    it = rows(store, kind, **selection)
    n = 0
    with _atomic(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in it:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    log.info("wrote %d %s rows to %s", n, kind, path)
    return n


def _arrow_schema(kind: str, soft: bool = False) -> pa.Schema:
    import pyarrow as pa

    turns = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    if kind == "stepwise":
        labels = pa.list_(pa.float64() if soft else pa.bool_())
        return pa.schema(
            [("prompt", pa.string()), ("completions", pa.list_(pa.string())), ("labels", labels)]
        )
    if kind == "sft":
        return pa.schema([("messages", turns)])
    if kind == "preference":
        return pa.schema([("prompt", turns), ("chosen", turns), ("rejected", turns)])
    fields = []
    arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    for name in TRAJECTORY_FIELDS:
        fields.append((name, arrow.get(_KIND[name], pa.string())))  # JSON columns as text
    return pa.schema(fields)


def _arrow_row(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    if kind != "trajectories":
        return row
    out = dict(row)
    for name in _JSON_COLUMNS:
        if out[name] is not None:
            out[name] = json.dumps(out[name], ensure_ascii=False)
    return out


def _arrow_batches(
    kind: str, it: Iterable[dict[str, Any]], size: int, soft: bool = False
) -> Iterator[pa.Table]:
    import pyarrow as pa

    schema = _arrow_schema(kind, soft)
    chunk: list[dict[str, Any]] = []
    for row in it:
        chunk.append(_arrow_row(kind, row))
        if len(chunk) >= size:
            yield pa.Table.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.Table.from_pylist(chunk, schema=schema)


def export_parquet(
    store: Store | None,
    path: str | Path,
    *,
    kind: Kind = "trajectories",
    row_group_size: int = 5000,
    **selection: Any,
) -> int:
    """Write the rows of ``kind`` to ``path`` as parquet (written in row groups of
    ``row_group_size``, so memory stays bounded); the row count. ``selection``: as for
    :func:`export_jsonl`."""
    import pyarrow.parquet as pq

    soft = bool(selection.get("soft", False))
    it = rows(store, kind, **selection)
    n = 0
    with _atomic(path) as tmp:
        writer = pq.ParquetWriter(str(tmp), _arrow_schema(kind, soft))
        try:
            for table in _arrow_batches(kind, it, row_group_size, soft):
                writer.write_table(table)
                n += table.num_rows
        finally:
            writer.close()
    log.info("wrote %d %s rows to %s", n, kind, path)
    return n


def to_hf_dataset(
    store: Store | None,
    *,
    kind: Kind = "trajectories",
    **selection: Any,
) -> Any:
    """The rows of ``kind`` as an in-memory ``datasets.Dataset`` (nothing is written to the HF
    cache, nothing is downloaded). Needs ``datasets`` (the ``train`` extra). ``selection``: as
    for :func:`export_jsonl`."""
    try:
        import datasets
    except ImportError:
        raise MissingDependency("datasets", "train") from None
    import pyarrow as pa

    soft = bool(selection.get("soft", False))
    it = rows(store, kind, **selection)
    tables = list(_arrow_batches(kind, it, 5000, soft))
    table = pa.concat_tables(tables) if tables else _arrow_schema(kind, soft).empty_table()
    return datasets.Dataset(table)


__all__ = [
    "KINDS",
    "TRAJECTORY_FIELDS",
    "export_jsonl",
    "export_parquet",
    "preference_rows",
    "rows",
    "sft_rows",
    "stepwise_rows",
    "to_hf_dataset",
    "trajectory_rows",
]
