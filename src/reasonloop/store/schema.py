"""The store's SQLite schema: its tables, the trajectory columns (declared once, here), and the
migrations that bring an older store up to :data:`SCHEMA_VERSION`.

Schema versions: 1 (problems, trajectories, scores, progress), 2 (adds ``step_labels``), 3 (adds
the ``boundary`` column of trajectories: the OS boundary a code verdict ran behind). A store
opened for writing is migrated in place (tables and columns are added, nothing else changes);
opened read-only it keeps its version and reads what it lacks as empty (no step labels, boundary
NULL).

What it is not: the codec between rows and records (:mod:`reasonloop.store.rows`) or the store's
API (:mod:`reasonloop.store.db`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

APPLICATION = "reasonloop"
SCHEMA_VERSION = 3


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a trajectory row. ``sql``: its SQLite type, or None for a column that only
    exports have (``scores``, read from the scores table); ``kind``: its type in exports
    (``str``, ``int``, ``float``, ``bool``, ``json``); ``exported``: whether exports show it."""

    name: str
    sql: str | None
    kind: str = "str"
    exported: bool = True


# Every column of a trajectory row, in the order exports list them. The stored ones are written by
# Store.add_trajectories and read back in this order; ``created_at`` stays last (a batch's
# duplicate check compares everything before it).
TRAJECTORY_COLUMNS: tuple[Column, ...] = (
    Column("id", "TEXT NOT NULL UNIQUE"),
    Column("problem_id", "TEXT NOT NULL"),
    Column("stage", "TEXT NOT NULL"),
    Column("sample_index", "INTEGER NOT NULL", "int"),
    Column("settings", "TEXT NOT NULL", exported=False),
    Column("text", "TEXT NOT NULL"),
    Column("thought", "TEXT"),
    Column("solution", "TEXT"),
    Column("extracted", "TEXT"),
    Column("correct", "INTEGER", "bool"),
    Column("reason", "TEXT"),
    Column("verdict_extracted", "TEXT"),
    Column("boundary", "TEXT"),  # version 3
    Column("tokens", "INTEGER NOT NULL", "int"),
    Column("mean_logprob", "REAL", "float"),
    Column("perplexity", "REAL", "float"),
    Column("finish_reason", "TEXT"),
    Column("engine", "TEXT"),
    Column("model", "TEXT"),
    Column("round", "INTEGER", "int"),
    Column("temperature", "REAL", "float"),
    Column("top_p", "REAL", "float"),
    Column("max_tokens", "INTEGER", "int"),
    Column("seed", "INTEGER", "int"),
    Column("role", "TEXT"),
    Column("parent", "TEXT"),
    Column("critic_scores", "TEXT", "json"),
    Column("critique", "TEXT"),
    Column("scores", None, "json"),
    Column("meta", "TEXT", "json"),
    Column("created_at", "TEXT NOT NULL"),
)
STORED_COLUMNS: tuple[str, ...] = tuple(c.name for c in TRAJECTORY_COLUMNS if c.sql is not None)
EXPORTED_COLUMNS: tuple[str, ...] = tuple(c.name for c in TRAJECTORY_COLUMNS if c.exported)

_TRAJECTORIES = (
    "CREATE TABLE trajectories (\n    seq INTEGER PRIMARY KEY,\n"
    + ",\n".join(f"    {c.name} {c.sql}" for c in TRAJECTORY_COLUMNS if c.sql is not None)
    + "\n)"
)

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE problems (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    added_at TEXT NOT NULL
)""",
    _TRAJECTORIES,
    "CREATE INDEX trajectories_problem ON trajectories (problem_id, stage)",
    "CREATE INDEX trajectories_stage ON trajectories (stage, correct)",
    "CREATE INDEX trajectories_settings ON trajectories (settings, problem_id)",
    """CREATE TABLE scores (
    trajectory_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (trajectory_id, name)
) WITHOUT ROWID""",
    """CREATE TABLE progress (
    stage TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (stage, item)
) WITHOUT ROWID""",
)

_STEP_LABELS = (
    """CREATE TABLE IF NOT EXISTS step_labels (
    trajectory_id TEXT NOT NULL,
    labeler TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    problem_id TEXT NOT NULL,
    step TEXT NOT NULL,
    n INTEGER NOT NULL,
    n_correct INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (trajectory_id, labeler, step_index)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS step_labels_labeler ON step_labels (labeler, trajectory_id)",
)

# version -> the statements that bring a store of the version before it up to it
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: _STEP_LABELS,
    3: ("ALTER TABLE trajectories ADD COLUMN boundary TEXT",),
}


def create_statements() -> tuple[str, ...]:
    """The statements that make a new store of :data:`SCHEMA_VERSION` (meta rows excepted)."""
    return (*_TABLES, *_STEP_LABELS)


def migrate(conn: sqlite3.Connection, old: int) -> None:
    """Run the migrations from version ``old`` to :data:`SCHEMA_VERSION` and record the new version.
    The caller holds the write lock (``BEGIN IMMEDIATE``) and re-read ``old`` under it."""
    for version in range(old + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def select_trajectories(conn: sqlite3.Connection) -> str:
    """``SELECT <the stored columns> FROM trajectories``; a column an unmigrated (read-only) store
    lacks reads as NULL."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(trajectories)")}
    cols = [name if name in have else f"NULL AS {name}" for name in STORED_COLUMNS]
    return f"SELECT {', '.join(cols)} FROM trajectories"


INSERT_TRAJECTORY = (
    f"INSERT OR IGNORE INTO trajectories ({', '.join(STORED_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in STORED_COLUMNS)})"
)

__all__ = [
    "APPLICATION",
    "EXPORTED_COLUMNS",
    "INSERT_TRAJECTORY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORED_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "Column",
    "create_statements",
    "migrate",
    "select_trajectories",
]
