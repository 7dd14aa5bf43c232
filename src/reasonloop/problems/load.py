"""Read problem files into :class:`~reasonloop.records.Problem` records.

Formats, picked by the path:

- ``*.jsonl`` / ``*.jsonl.gz``: one JSON object per line (blank lines skipped); errors say ``file:LINE``
  (1-based, as an editor shows it).
- ``*.json``: a JSON list of objects (errors say ``file:item N``, 0-based); a ``.json`` file that is
  really JSON Lines is read as such.
- ``*.parquet``: one row per problem, read with pyarrow; errors say ``file:row N`` (0-based, as
  ``pyarrow`` / ``pandas`` index it).
- a directory written by HF ``datasets`` ``save_to_disk`` (``state.json`` + Arrow shards): read with
  pyarrow, so ``datasets`` itself need not be installed; a saved ``DatasetDict`` with one split is
  read as that split, one with several must be named as ``DIR/<split>``.
- any other directory: its ``*.jsonl`` / ``*.json`` / ``*.parquet`` files, in name order.

Columns are those of ``Problem`` (id, domain, problem, answer, solution, choices, tests, entry_point,
source, level, subject); extra columns are ignored. Leniencies, because datasets store these as
numbers: an integer ``id``, ``answer`` or ``level`` becomes its decimal string, and so does an
integral float ``answer`` (``27.0`` -> ``"27"``); any other non-string answer is an error. A code row
may leave out ``answer`` (its reference completion) or set it to null: it reads as ``""``, since its
``tests`` grade it. A row with no ``domain`` takes the ``domain=`` argument; a row's own domain is
never overridden. Duplicate ids within one load are an error (the trajectory store keys on them).

What it does not do: no schema guessing (a ``question`` column is not read as ``problem``; the
benchmark registry does such mappings), no download, no GPQA zip (see :mod:`reasonloop.problems.gpqa`).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, DataError
from reasonloop.records import DOMAINS, Problem, from_dict

log = logging.getLogger(__name__)

_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


def load_problems(path: str | Path, *, domain: str | None = None) -> list[Problem]:
    """All problems in ``path`` (a file or directory; see the module docstring), in file order.

    Raises :class:`~reasonloop.errors.DataError` naming file, line/row and field on the first bad
    row; nothing is returned partially.
    """
    problems = list(iter_problems(path, domain=domain))
    log.info("loaded %d problems from %s", len(problems), path)
    return problems


def iter_problems(path: str | Path, *, domain: str | None = None) -> Iterator[Problem]:
    """Yield the problems in ``path`` one by one (same rules as :func:`load_problems`).

    Problems before a bad row have already been yielded when the DataError is raised.
    """
    if domain is not None and domain not in DOMAINS:
        raise ConfigError(f"domain must be one of {list(DOMAINS)}, got {domain!r}")
    seen: dict[str, str] = {}
    for where, row in _rows(Path(path)):
        problem = problem_from_row(row, where=where, domain=domain)
        if problem.id in seen:
            raise DataError(
                f"duplicate id {problem.id!r} (first at {seen[problem.id]})",
                where=where,
                field="id",
            )
        seen[problem.id] = where
        yield problem


def problem_from_row(row: Any, *, where: str, domain: str | None = None) -> Problem:
    """One ``Problem`` from one raw row (a dict), applying the leniencies in the module docstring."""
    if not isinstance(row, dict):
        raise DataError(f"expected an object, got {type(row).__name__}", where=where)
    row = dict(row)
    if row.get("domain") is None:
        if domain is None:
            raise DataError(
                "missing required field (or pass domain=, --domain, to set it for the whole file)",
                where=where,
                field="domain",
            )
        row["domain"] = domain
    for name in ("id", "level"):
        if _is_int(row.get(name)):
            row[name] = str(row[name])
    if row.get("answer") is None and row["domain"] == "code":
        row["answer"] = ""  # a code problem is graded by its tests; the reference is optional
    elif "answer" in row:
        row["answer"] = _answer_text(row["answer"], where=where)
    return from_dict(Problem, row, where=where)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _answer_text(value: Any, *, where: str) -> Any:
    if _is_int(value):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        raise DataError(
            f"non-integral number {value!r}; store a non-integer answer as a string",
            where=where,
            field="answer",
        )
    return value  # from_dict reports any other type, naming the field


# --- row sources ------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    if path.is_dir():
        yield from _dir_rows(path)
        return
    if not path.exists():
        raise DataError(f"no such file or directory: {path}")
    name = path.name.lower()
    if name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as f:
            yield from _jsonl_rows(path, f)
    elif name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from _jsonl_rows(path, f)
    elif name.endswith(".json"):
        yield from _json_rows(path)
    elif name.endswith(".parquet"):
        yield from _parquet_rows(path)
    else:
        raise DataError(
            f"unknown problem file type {path.name!r}; expected one of {list(_FILE_SUFFIXES)} "
            "or a directory (HF datasets save_to_disk, or one holding such files)"
        )


def _jsonl_rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"invalid JSON ({exc.msg} at column {exc.colno})", where=where
                ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path)
        ) from None


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines under a .json name
            yield from _jsonl_rows(path, text.splitlines())
            return
        raise DataError(
            f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", where=str(path)
        ) from None
    if not isinstance(data, list):
        raise DataError(
            f"expected a JSON list of problems, got {type(data).__name__}", where=str(path)
        )
    for index, row in enumerate(data):
        yield f"{path}:item {index}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        batches = reader.iter_batches(batch_size=1024)
        index = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield f"{path}:row {index}", row
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read parquet: {exc}", where=str(path)) from None


def _arrow_dir_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa

    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        shards = [path / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"unreadable HF datasets state.json: {exc}", where=str(path)) from None
    index = 0
    for shard in shards:
        try:
            with pa.memory_map(str(shard)) as source:
                table = pa.ipc.open_stream(source).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Arrow shard: {exc}", where=str(shard)) from None
        for batch in table.to_batches(max_chunksize=1024):
            for row in batch.to_pylist():
                yield f"{path}:row {index}", row
                index += 1


def _dir_rows(path: Path) -> Iterator[tuple[str, Any]]:
    if (path / "state.json").is_file():
        yield from _arrow_dir_rows(path)
        return
    dict_file = path / "dataset_dict.json"
    if dict_file.is_file():
        try:
            splits = json.loads(dict_file.read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"unreadable HF datasets dataset_dict.json: {exc}", where=str(path)
            ) from None
        if len(splits) != 1:
            raise DataError(
                f"a saved DatasetDict with splits {splits}; name one as {path}/<split>",
                where=str(path),
            )
        yield from _arrow_dir_rows(path / splits[0])
        return
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_FILE_SUFFIXES)
    )
    if not files:
        raise DataError(
            f"directory holds no problem files ({list(_FILE_SUFFIXES)}) and is not an HF datasets "
            "save_to_disk directory",
            where=str(path),
        )
    for file in files:
        yield from _rows(file)
