"""The trajectory store: one embedded SQLite file holding problems and every trajectory ever sampled.

It is the global pool that outlives runs. Rows are append-only: a trajectory, once written, is never
updated or deleted through this API; later annotations (a perplexity under a newer model, a reward)
go to a side table with :meth:`Store.set_scores`. Every trajectory has a deterministic id
(:func:`trajectory_key`) and is inserted with ``INSERT OR IGNORE``, so running a stage again never
doubles a row; :meth:`Store.existing_keys` tells a stage which samples it may skip.

Each :meth:`Store.add_trajectories` call is one transaction: a process killed at any moment loses at
most the batch it was writing, never half of it. The file is in WAL mode with
``synchronous=NORMAL`` and a busy timeout, so one writer and any number of reader processes can use
it at once (a second concurrent *writer* waits for the lock, up to the timeout).

Math-Shepherd step labels (:class:`~reasonloop.records.StepLabel`) live in their own table, keyed
by trajectory, labeller (the settings that produced them, see
:func:`reasonloop.search.annotate.labeler_key`) and step index; :meth:`Store.add_step_labels` is
``INSERT OR IGNORE`` like trajectories, and stores each step's own text only (a label's ``steps``
prefix is rebuilt from the rows of lower indices when read).

The schema, its versions and migrations are :mod:`reasonloop.store.schema`; the codec between
records and rows is :mod:`reasonloop.store.rows`. A store opened for writing is migrated in place;
opened read-only it keeps its version and reads what it lacks as empty.

What it is not: a server, a cache of model calls, or thread-safe — open one :class:`Store` per
thread or process. NaN floats are stored as SQL NULL, so they read back as ``None``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonloop import __version__
from reasonloop.errors import DataError
from reasonloop.records import (
    Generator,
    Problem,
    StepLabel,
    Trajectory,
    from_json,
    to_dict,
)
from reasonloop.store.rows import (
    StoredTrajectory,
    decode,
    decode_trajectory,
    encode,
    is_int,
    json_or_none,
    real_or_none,
    validated,
)
from reasonloop.store.schema import (
    APPLICATION,
    INSERT_TRAJECTORY,
    SCHEMA_VERSION,
    create_statements,
    migrate,
    select_trajectories,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 60.0
_SQLITE_HEADER = b"SQLite format 3\x00"
_CHECKED: set[tuple[int, int, int, int]] = set()  # file versions that passed quick_check

# --- keys -----------------------------------------------------------------------------------------
# The recipes below are persisted in every store: changing them would make a re-run write every
# row again. tests/store pins them with exact digests.


def _num(x: float | None) -> float | None:
    """1 and 1.0 are the same setting; JSON would spell them differently."""
    return None if x is None else float(x)


def _generator_parts(g: Generator | None) -> list[Any]:
    if g is None:
        return [None]
    return [
        g.engine,
        g.model,
        g.round,
        _num(g.temperature),
        _num(g.top_p),
        g.max_tokens,
        g.seed,
        g.role,
    ]


def _digest(parts: list[Any]) -> str:
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


def settings_key(stage: str, generator: Generator | None) -> str:
    """The hash of a stage tag and a generator's provenance and sampling settings (engine spec,
    model, round, temperature, top_p, max_tokens, seed, role): every sample drawn the same way
    shares it. The problem, parent and sample index are not part of it."""
    return "s-" + _digest(["settings", stage, *_generator_parts(generator)])


def trajectory_key(
    problem_id: str,
    *,
    stage: str,
    generator: Generator | None,
    sample_index: int = 0,
    parent: str | None = None,
) -> str:
    """The deterministic id of one sample: the same problem, stage, generator settings, parent and
    sample index always give the same id, so storing it twice stores it once.

    ``generator.seed`` should be the seed of the request (sample ``i`` of a request uses
    ``seed + i``); ``sample_index`` tells the samples of one request apart.
    """
    return "t-" + _digest(
        ["trajectory", problem_id, stage, *_generator_parts(generator), parent, sample_index]
    )


# --- records --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Added:
    """What :meth:`Store.add_trajectories` did: the id of every given trajectory, in order, and how
    many rows were new (the rest were already stored)."""

    ids: tuple[str, ...]
    inserted: int


@dataclass(frozen=True, slots=True)
class StageStats:
    stage: str
    trajectories: int
    problems: int
    correct: int
    incorrect: int
    ungraded: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    problems: int
    trajectories: int
    stages: tuple[StageStats, ...]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check_stage(stage: Any) -> str:
    if not isinstance(stage, str) or not stage.strip():
        raise DataError(f"stage must be a non-empty string, got {stage!r}", field="stage")
    return stage


def _recover(path: Path) -> str:
    return (
        "restore it from a backup, or save what is readable into a new store with "
        f"`sqlite3 {path} .recover | sqlite3 NEW.db`"
    )


# --- the store ------------------------------------------------------------------------------------


class Store:
    """An open trajectory store (see the module docstring). Use as a context manager or call
    :meth:`close`.

    >>> with Store("pool.sqlite") as store:                       # doctest: +SKIP
    ...     store.add_problems(problems)
    ...     store.add_trajectories(trajs, stage="explore-r1", sample_indices=range(len(trajs)))

    ``create``: make a new store when the file is missing (or empty); ``readonly``: open for
    reading only (the file must exist). Raises :class:`DataError` when the file is not a reasonloop
    store, is corrupted (``PRAGMA quick_check`` on open) or was written by a newer reasonloop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ):
        self.path = Path(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(create=create and not readonly, busy_timeout=busy_timeout)
        self._select = select_trajectories(self._conn)

    # opening -------------------------------------------------------------------------------------

    def _open(self, *, create: bool, busy_timeout: float) -> sqlite3.Connection:
        p = self.path
        if p.is_dir():
            raise DataError(f"{p} is not a reasonloop store (it is a directory)")
        size = p.stat().st_size if p.exists() else None
        if size is None and not create:
            raise DataError(
                f"{p}: no reasonloop store there"
                + ("" if self.readonly else " (open it with create=True to make one)")
            )
        if size:
            with p.open("rb") as fh:
                if fh.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                    raise DataError(f"{p} is not a reasonloop store (not an SQLite database)")
        if size is None:
            p.parent.mkdir(parents=True, exist_ok=True)
        if self.readonly:
            conn = sqlite3.connect(
                p.resolve().as_uri() + "?mode=ro",
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
            )
        else:
            conn = sqlite3.connect(str(p), timeout=busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if size:
                self._quick_check(conn)
            tables = self._tables(conn)
            if tables:
                self._check(conn, tables)
            elif not create:
                raise DataError(f"{p} is not a reasonloop store (an empty SQLite database)")
            if not self.readonly:
                # WAL must be switched on outside a transaction; it persists in the file.
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not tables:
                self._create(conn)
            elif not self.readonly:
                self._migrate(conn)
        except sqlite3.OperationalError:  # e.g. "database is locked": not damage
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:  # damage that quick_check cannot see (a bad header)
            conn.close()
            raise DataError(f"{p} is corrupted or not a database ({exc}); {_recover(p)}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        """SQLite's ``PRAGMA quick_check`` (every page and b-tree, not index contents), once per
        process for each version of the file: the viewer opens the store on every request, and
        the check reads the whole file (about a second per few hundred MB)."""
        st = self.path.stat()
        version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if version in _CHECKED:
            return
        try:
            found = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.OperationalError:  # e.g. "database is locked": not damage
            raise
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed"
            found = [str(exc)]
        if found != ["ok"]:
            raise DataError(
                f"{self.path} is corrupted (SQLite quick_check: {'; '.join(found)}); "
                + _recover(self.path)
            )
        _CHECKED.add(version)

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [r[0] for r in rows]

    def _check(self, conn: sqlite3.Connection, tables: list[str]) -> None:
        p = self.path
        if "meta" not in tables:
            raise DataError(
                f"{p} is not a reasonloop store (an SQLite database without a reasonloop meta "
                f"table; its tables: {', '.join(tables)})"
            )
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise DataError(
                f"{p} is not a reasonloop store (unreadable meta table: {exc})"
            ) from None
        if meta.get("application") != APPLICATION:
            raise DataError(
                f"{p} is not a reasonloop store (its meta table says application = "
                f"{meta.get('application')!r})"
            )
        raw = meta.get("schema_version")
        try:
            version = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(
                f"{p} is not a reasonloop store (schema_version {raw!r} is not an integer)"
            ) from None
        if version > SCHEMA_VERSION:
            raise DataError(
                f"{p} has store schema version {version}, newer than version {SCHEMA_VERSION} "
                f"that this reasonloop reads; upgrade reasonloop (pip install -U reasonloop) "
                f"to open it"
            )
        if version < 1:
            raise DataError(f"{p} is not a reasonloop store (schema_version {version} < 1)")

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it between our look and our lock.
            tables = self._tables(conn)
            if tables:
                conn.execute("ROLLBACK")
                self._check(conn, tables)
                return
            for statement in create_statements():
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("application", APPLICATION),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_at", _now()),
                    ("created_by", f"reasonloop {__version__}"),
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("created trajectory store %s (schema version %d)", self.path, SCHEMA_VERSION)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an older store up to :data:`SCHEMA_VERSION` (see :mod:`reasonloop.store.schema`)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            old = int(row[0])
            if old < SCHEMA_VERSION:  # another process may have migrated it meanwhile
                migrate(conn, old)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if old < SCHEMA_VERSION:
            log.info(
                "migrated store %s from schema version %d to %d", self.path, old, SCHEMA_VERSION
            )

    # plumbing ------------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DataError(f"{self.path}: the store is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self.readonly else "open")
        return f"Store({str(self.path)!r}, {state})"

    def _write(self, statements: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run ``executemany`` statements in one IMMEDIATE transaction; rows changed by each."""
        if self.readonly:
            raise DataError(f"{self.path}: the store was opened read-only")
        conn = self.conn
        counts: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                counts.append(conn.executemany(sql, rows).rowcount)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return counts

    def meta(self) -> dict[str, str]:
        """The meta table: application, schema_version, created_at, created_by."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # problems ------------------------------------------------------------------------------------

    def add_problems(self, problems: Iterable[Problem]) -> int:
        """Store problems not stored yet (by id), in one transaction; the number added. A problem
        whose id is stored with different content keeps the stored version (logged)."""
        problems = list(problems)
        for i, pr in enumerate(problems):
            if not isinstance(pr, Problem):
                raise DataError(
                    f"add_problems item {i}: expected a Problem, got {type(pr).__name__}"
                )
        if not problems:
            return 0
        now = _now()
        rows = [(pr.id, json.dumps(to_dict(pr), ensure_ascii=False), now) for pr in problems]
        (added,) = self._write(
            [("INSERT OR IGNORE INTO problems (id, record, added_at) VALUES (?, ?, ?)", rows)]
        )
        if added < len(rows):
            self._warn_changed_problems(rows)
        return added

    def _warn_changed_problems(self, rows: list[tuple[str, str, str]]) -> None:
        changed = [pid for pid, record, _ in rows if self._problem_json(pid) != record]
        if changed:
            log.warning(
                "%s: %d problem(s) already stored with different content kept as stored: %s",
                self.path,
                len(changed),
                ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else ""),
            )

    def _problem_json(self, problem_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT record FROM problems WHERE id = ?", (problem_id,)
        ).fetchone()
        return row[0] if row else None

    def get_problem(self, problem_id: str) -> Problem | None:
        record = self._problem_json(problem_id)
        if record is None:
            return None
        return from_json(Problem, record, where=f"{self.path}:problems[{problem_id}]")

    def problems(self) -> Iterator[Problem]:
        """Every stored problem, in the order they were added."""
        cur = self.conn.execute("SELECT id, record FROM problems ORDER BY seq")
        while batch := cur.fetchmany(1000):
            for pid, record in batch:
                yield from_json(Problem, record, where=f"{self.path}:problems[{pid}]")

    def n_problems(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM problems").fetchone()[0]

    # trajectories --------------------------------------------------------------------------------

    def add_trajectories(
        self,
        trajectories: Iterable[Trajectory],
        *,
        stage: str,
        sample_indices: Iterable[int] | None = None,
        meta: Mapping[str, Any] | None = None,
        done: Iterable[str] | Mapping[str, Any] = (),
    ) -> Added:
        """Store a batch of trajectories in one transaction (all of it or none of it).

        A trajectory's id is its own ``id`` when set, else :func:`trajectory_key` of its problem,
        ``stage``, generator, parent and sample index (``sample_indices``, parallel to
        ``trajectories``; 0 for all when omitted). Ids already stored are skipped, so re-adding a
        batch is a no-op. ``meta`` is JSON stored with every row of the batch. ``done`` marks
        progress items of ``stage`` (see :meth:`mark_done`) in the same transaction, so "these
        samples exist" and "this problem is finished" are committed together.

        Raises DataError, before writing anything, on a malformed trajectory or when two
        different trajectories of the batch get the same id (pass ``sample_indices``).
        """
        stage = _check_stage(stage)
        trajs = list(trajectories)
        indices = [0] * len(trajs) if sample_indices is None else list(sample_indices)
        if len(indices) != len(trajs):
            raise DataError(
                f"{len(indices)} sample_indices for {len(trajs)} trajectories",
                field="sample_indices",
            )
        meta_json = json_or_none(dict(meta) if meta is not None else None)
        now = _now()
        rows: list[tuple[Any, ...]] = []
        seen: dict[str, tuple[Any, ...]] = {}
        settings: dict[Generator | None, str] = {}
        ids: list[str] = []
        for i, (t, idx) in enumerate(zip(trajs, indices, strict=True)):
            t = validated(t, i)
            if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
                raise DataError(
                    f"trajectory {i}: sample index must be an integer >= 0, got {idx!r}",
                    field="sample_indices",
                )
            tid = t.id or trajectory_key(
                t.problem_id, stage=stage, generator=t.generator, sample_index=idx, parent=t.parent
            )
            if t.generator not in settings:
                settings[t.generator] = settings_key(stage, t.generator)
            row = encode(t, tid, stage, idx, settings[t.generator], meta_json, now)
            ids.append(tid)
            if tid in seen:
                if seen[tid][:-1] != row[:-1]:
                    raise DataError(
                        f"trajectory {i} of the batch has the same id {tid} as an earlier, "
                        "different one; give each sample its own sample index (sample_indices=)",
                        field="sample_indices",
                    )
                continue
            seen[tid] = row
            rows.append(row)
        progress = self._progress_rows(stage, done, now)
        statements: list[tuple[str, Sequence[Sequence[Any]]]] = [(INSERT_TRAJECTORY, rows)]
        if progress:
            statements.append((_PROGRESS_UPSERT, progress))
        if not rows and not progress:
            return Added(ids=(), inserted=0)
        inserted = self._write(statements)[0]
        log.debug("%s: stage %s: %d new of %d", self.path, stage, inserted, len(rows))
        return Added(ids=tuple(ids), inserted=inserted)

    def get(self, trajectory_id: str) -> Trajectory | None:
        row = self.conn.execute(f"{self._select} WHERE id = ?", (trajectory_id,)).fetchone()
        return None if row is None else decode_trajectory(row)

    def get_stored(self, trajectory_id: str) -> StoredTrajectory | None:
        row = self.conn.execute(f"{self._select} WHERE id = ?", (trajectory_id,)).fetchone()
        return None if row is None else decode(row)

    def _where(
        self,
        problem_id: str | None = None,
        stage: str | None = None,
        correct: bool | None = None,
        role: str | None = None,
        round: int | None = None,
    ) -> tuple[str, list[Any]]:
        """The SQL filter of :meth:`stored`, :meth:`trajectories` and :meth:`count` (the one
        declaration of their filters)."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("problem_id", problem_id),
            ("stage", stage),
            ("role", role),
            ("round", round),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if correct is not None:
            clauses.append("correct = ?")
            args.append(int(bool(correct)))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def stored(self, *filters: Any, **named: Any) -> Iterator[StoredTrajectory]:
        """Like :meth:`trajectories` (the same filters), with the stage, sample index, time and
        batch meta."""
        where, args = self._where(*filters, **named)
        cur = self.conn.execute(f"{self._select}{where} ORDER BY seq", args)
        while batch := cur.fetchmany(500):
            for row in batch:
                yield decode(row)

    def trajectories(self, *filters: Any, **named: Any) -> Iterator[Trajectory]:
        """Stored trajectories matching every given filter (those of :meth:`stored`: problem_id,
        stage, correct, role, round), oldest first, with ``id`` set.

        ``correct=True``/``False`` selects graded ones by verdict; ungraded ones (no verdict) match
        only ``correct=None``. ``role`` and ``round`` filter on the generator's.
        """
        for s in self.stored(*filters, **named):
            yield s.trajectory

    def count(self, *filters: Any, **named: Any) -> int:
        """How many stored trajectories match (the filters of :meth:`stored`)."""
        where, args = self._where(*filters, **named)
        return self.conn.execute(f"SELECT COUNT(*) FROM trajectories{where}", args).fetchone()[0]

    def existing_keys(
        self,
        stage: str,
        generator: Generator | None,
        problem_ids: Iterable[str] | None = None,
    ) -> set[tuple[str, int]]:
        """The ``(problem_id, sample_index)`` pairs already stored for this stage and these
        generator settings (:func:`settings_key`) — what a resumed stage may skip. Parents are not
        compared: a refinement stage should check ids with :meth:`existing_ids`."""
        settings = settings_key(_check_stage(stage), generator)
        rows = self.conn.execute(
            "SELECT problem_id, sample_index FROM trajectories WHERE settings = ?", (settings,)
        )
        pairs = {(pid, idx) for pid, idx in rows}
        if problem_ids is not None:
            wanted = set(problem_ids)
            pairs = {p for p in pairs if p[0] in wanted}
        return pairs

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored."""
        ids = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(f"SELECT id FROM trajectories WHERE id IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found

    def __contains__(self, trajectory_id: object) -> bool:
        if not isinstance(trajectory_id, str):
            return False
        row = self.conn.execute("SELECT 1 FROM trajectories WHERE id = ?", (trajectory_id,))
        return row.fetchone() is not None

    def __len__(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0]

    def stats(self) -> StoreStats:
        """Counts of problems and trajectories, and per stage: trajectories, distinct problems,
        correct / incorrect / ungraded."""
        rows = self.conn.execute(
            "SELECT stage, COUNT(*), COUNT(DISTINCT problem_id), "
            "COALESCE(SUM(correct = 1), 0), COALESCE(SUM(correct = 0), 0), "
            "COALESCE(SUM(correct IS NULL), 0) FROM trajectories GROUP BY stage ORDER BY stage"
        ).fetchall()
        stages = tuple(StageStats(*row) for row in rows)
        return StoreStats(
            problems=self.n_problems(),
            trajectories=sum(s.trajectories for s in stages),
            stages=stages,
        )

    # annotations ---------------------------------------------------------------------------------

    def set_scores(self, name: str, values: Mapping[str, float | None]) -> int:
        """Record (or replace) the score ``name`` (e.g. ``"ppl:round1"``) of stored trajectories,
        in one transaction. Unknown trajectory ids raise DataError before anything is written."""
        if not isinstance(name, str) or not name:
            raise DataError(f"score name must be a non-empty string, got {name!r}", field="name")
        values = dict(values)
        missing = set(values) - self.existing_ids(values)
        if missing:
            shown = ", ".join(sorted(missing)[:5])
            raise DataError(
                f"{self.path}: score {name!r} for {len(missing)} trajectory id(s) not in the "
                f"store: {shown}"
            )
        for tid, value in values.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise DataError(
                    f"score {name!r} of {tid}: expected a number, got {value!r}", field="value"
                )
        now = _now()
        rows = [(tid, name, real_or_none(v), now) for tid, v in values.items()]
        return self._write(
            [
                (
                    "INSERT OR REPLACE INTO scores (trajectory_id, name, value, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
            ]
        )[0]

    def set_score(self, trajectory_id: str, name: str, value: float | None) -> None:
        self.set_scores(name, {trajectory_id: value})

    def scores(self, name: str) -> dict[str, float | None]:
        """Every stored value of score ``name``, by trajectory id."""
        rows = self.conn.execute("SELECT trajectory_id, value FROM scores WHERE name = ?", (name,))
        return dict(rows.fetchall())

    def scores_of(self, trajectory_id: str) -> dict[str, float | None]:
        """Every score of one trajectory, by name."""
        rows = self.conn.execute(
            "SELECT name, value FROM scores WHERE trajectory_id = ? ORDER BY name",
            (trajectory_id,),
        )
        return dict(rows.fetchall())

    def all_scores(self) -> dict[str, dict[str, float | None]]:
        """Every score, as ``{trajectory_id: {name: value}}`` (names in sorted order)."""
        out: dict[str, dict[str, float | None]] = {}
        rows = self.conn.execute(
            "SELECT trajectory_id, name, value FROM scores ORDER BY trajectory_id, name"
        )
        for tid, name, value in rows:
            out.setdefault(tid, {})[name] = value
        return out

    # progress ------------------------------------------------------------------------------------

    @staticmethod
    def _progress_rows(
        stage: str, items: Iterable[str] | Mapping[str, Any], now: str
    ) -> list[tuple[Any, ...]]:
        if isinstance(items, Mapping):
            pairs = list(items.items())
        else:
            pairs = [(item, None) for item in items]
        for item, _ in pairs:
            if not isinstance(item, str) or not item:
                raise DataError(f"progress item must be a non-empty string, got {item!r}")
        return [(stage, item, json_or_none(value), now) for item, value in pairs]

    def mark_done(self, stage: str, items: Iterable[str] | Mapping[str, Any]) -> None:
        """Record that ``items`` (e.g. problem ids) of ``stage`` are finished, with an optional
        JSON value each (pass a mapping). Marking again replaces the value."""
        rows = self._progress_rows(_check_stage(stage), items, _now())
        if rows:
            self._write([(_PROGRESS_UPSERT, rows)])

    def done(self, stage: str) -> dict[str, Any]:
        """The finished items of ``stage`` and their values (``None`` when none was given)."""
        rows = self.conn.execute(
            "SELECT item, value FROM progress WHERE stage = ? ORDER BY item", (stage,)
        )
        return {item: (None if value is None else json.loads(value)) for item, value in rows}

    # step labels ---------------------------------------------------------------------------------

    def _has_step_labels(self) -> bool:
        """False only for a version-1 store opened read-only (never migrated)."""
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'step_labels'"
        ).fetchone()
        return row is not None

    def add_step_labels(self, labels: Iterable[StepLabel], *, labeler: str) -> int:
        """Store step labels made by ``labeler`` (a settings key) in one transaction; the number
        of new rows (labels already stored for the same trajectory, labeller and step are kept).

        Raises DataError, before writing anything, on a malformed label: ``steps`` must hold the
        steps up to and including ``step_index`` (so ``len(steps) == step_index + 1``), and
        ``0 <= n_correct <= n``; or when a label's trajectory is not in the store."""
        if not isinstance(labeler, str) or not labeler:
            raise DataError(f"labeler must be a non-empty string, got {labeler!r}", field="labeler")
        labels = list(labels)
        now = _now()
        rows = []
        for i, lab in enumerate(labels):
            where = f"step label {i}"
            if not isinstance(lab, StepLabel):
                raise DataError(f"{where}: expected a StepLabel, got {type(lab).__name__}")
            if not is_int(lab.step_index) or lab.step_index < 0:
                raise DataError(
                    f"expected an integer >= 0, got {lab.step_index!r}",
                    where=where,
                    field="step_index",
                )
            if len(lab.steps) != lab.step_index + 1 or not all(
                isinstance(x, str) for x in lab.steps
            ):
                raise DataError(
                    f"expected the {lab.step_index + 1} step texts up to step_index, got "
                    f"{len(lab.steps)}",
                    where=where,
                    field="steps",
                )
            if not (is_int(lab.n) and is_int(lab.n_correct) and 0 <= lab.n_correct <= lab.n):
                raise DataError(
                    f"expected 0 <= n_correct <= n, got n={lab.n!r}, n_correct={lab.n_correct!r}",
                    where=where,
                    field="n_correct",
                )
            rows.append(
                (
                    lab.trajectory_id,
                    labeler,
                    lab.step_index,
                    lab.problem_id,
                    lab.steps[-1],
                    lab.n,
                    lab.n_correct,
                    now,
                )
            )
        if not rows:
            return 0
        missing = {r[0] for r in rows} - self.existing_ids(r[0] for r in rows)
        if missing:
            raise DataError(
                f"{self.path}: step labels for {len(missing)} trajectory id(s) not in the store: "
                + ", ".join(sorted(missing)[:5])
            )
        return self._write(
            [
                (
                    "INSERT OR IGNORE INTO step_labels (trajectory_id, labeler, step_index, "
                    "problem_id, step, n, n_correct, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            ]
        )[0]

    def labelled_steps(self, labeler: str) -> set[tuple[str, int]]:
        """The ``(trajectory_id, step_index)`` pairs ``labeler`` has labelled: what a resumed
        annotation may skip."""
        if not self._has_step_labels():
            return set()
        rows = self.conn.execute(
            "SELECT trajectory_id, step_index FROM step_labels WHERE labeler = ?", (labeler,)
        )
        return {(tid, idx) for tid, idx in rows}

    def step_labelers(self) -> dict[str, int]:
        """Every labeller's key and how many step labels it stored."""
        if not self._has_step_labels():
            return {}
        rows = self.conn.execute(
            "SELECT labeler, COUNT(*) FROM step_labels GROUP BY labeler ORDER BY labeler"
        )
        return dict(rows.fetchall())

    def step_labels(
        self,
        *,
        labeler: str | None = None,
        trajectory_id: str | None = None,
        problem_id: str | None = None,
    ) -> Iterator[tuple[str, list[StepLabel]]]:
        """``(labeler, labels)`` per labelled trajectory, trajectories in store order, each
        trajectory's labels in step order. ``steps`` of a label is rebuilt from the stored step
        texts of indices ``0..step_index``; a trajectory whose labels have a gap (an index
        missing) yields only the labels before it."""
        if not self._has_step_labels():
            return
        clauses, args = [], []
        for column, value in (
            ("l.labeler", labeler),
            ("l.trajectory_id", trajectory_id),
            ("l.problem_id", problem_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        cur = self.conn.execute(
            "SELECT l.trajectory_id, l.labeler, l.step_index, l.problem_id, l.step, l.n, "
            "l.n_correct FROM step_labels l JOIN trajectories t ON t.id = l.trajectory_id"
            f"{where} ORDER BY t.seq, l.labeler, l.step_index",
            args,
        )
        key: tuple[str, str] | None = None
        group: list[StepLabel] = []
        steps: list[str] = []
        for tid, lab, idx, pid, step, n, n_correct in cur:
            if (tid, lab) != key:
                if key is not None and group:
                    yield key[1], group
                key, group, steps = (tid, lab), [], []
            if idx != len(steps):  # a gap: the prefix cannot be rebuilt past it
                continue
            steps.append(step)
            group.append(StepLabel(pid, tid, idx, tuple(steps), n, n_correct))
        if key is not None and group:
            yield key[1], group


_PROGRESS_UPSERT = (
    "INSERT OR REPLACE INTO progress (stage, item, value, updated_at) VALUES (?, ?, ?, ?)"
)


def open_store(path: str | Path, *, create: bool = True, readonly: bool = False) -> Store:
    """Open (or create) the store at ``path``; see :class:`Store`."""
    return Store(path, create=create, readonly=readonly)
