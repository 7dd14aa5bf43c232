"""Full-text search of stored trajectories with SQLite FTS5, in a private index beside the store.

The store is never written: the index lives in a private temporary SQLite database (the empty file
name, which SQLite deletes on close and spills to disk only when large), filled from a read-only
store connection. Trajectories are append-only, so :meth:`SearchIndex.refresh` only adds rows whose
``seq`` is past the last one indexed — cheap enough to run before every query, and safe while a job
is writing the store (it reads a consistent snapshot).

What it is not: ranked by anything but FTS5's bm25, nor a search of problem texts.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from dataclasses import dataclass

from markupsafe import Markup, escape

from reasonloop.store import Store

log = logging.getLogger(__name__)

# Snippet highlight markers: control characters that are removed from indexed text, so a
# trajectory cannot forge them; they become <mark> only after the snippet is HTML-escaped.
_OPEN, _CLOSE = "\x02", "\x03"
_MARKERS = re.compile("[\x02\x03]")


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: which trajectory, and a snippet with the matches marked (safe HTML)."""

    id: str
    problem_id: str
    stage: str
    correct: bool | None
    snippet: Markup


def highlight(snippet: str) -> Markup:
    """Escape a snippet, then turn the FTS markers into ``<mark>`` tags."""
    html = str(escape(snippet))
    return Markup(html.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))


def safe_query(q: str) -> str:
    """The query with each whitespace-separated word as a quoted FTS5 string (implicit AND), for
    input that is not valid FTS5 syntax (a stray quote, a bare ``-``)."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in q.split())


class SearchIndex:
    """An FTS5 index of trajectory text and critique; thread-safe (one lock around its connection)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._conn.execute(
            "CREATE VIRTUAL TABLE docs USING fts5("
            "text, critique, tid UNINDEXED, problem_id UNINDEXED, stage UNINDEXED, "
            "correct UNINDEXED, tokenize = 'unicode61')"
        )
        self.last_seq = 0

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def refresh(self, store: Store) -> int:
        """Index trajectories stored since the last refresh; how many were added."""
        with self._lock:
            cur = store.conn.execute(
                "SELECT seq, text, critique, id, problem_id, stage, correct FROM trajectories "
                "WHERE seq > ? ORDER BY seq",
                (self.last_seq,),
            )
            added = 0
            self._conn.execute("BEGIN")
            try:
                while batch := cur.fetchmany(500):
                    self._conn.executemany(
                        "INSERT INTO docs (rowid, text, critique, tid, problem_id, stage, correct)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (seq, _MARKERS.sub(" ", text), _MARKERS.sub(" ", crit or ""), *rest)
                            for seq, text, crit, *rest in batch
                        ],
                    )
                    added += len(batch)
                    self.last_seq = batch[-1][0]
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if added:
            log.info("search index: %d trajectories added (up to seq %d)", added, self.last_seq)
        return added

    def search(
        self,
        q: str,
        *,
        stage: str | None = None,
        correct: bool | None | str = "any",
        problem_id: str | None = None,
        limit: int = 100,
    ) -> list[Hit]:
        """Trajectories matching ``q`` (FTS5 syntax, or plain words when that fails to parse),
        best first. ``correct``: True / False / None (ungraded) / ``"any"``."""
        if not q.strip():
            return []
        where, args = ["docs MATCH ?"], [q]
        if stage:
            where.append("stage = ?")
            args.append(stage)
        if problem_id:
            where.append("problem_id = ?")
            args.append(problem_id)
        if correct is None:
            where.append("correct IS NULL")
        elif isinstance(correct, bool):
            where.append("correct = ?")
            args.append(int(correct))
        sql = (
            f"SELECT tid, problem_id, stage, correct, "
            f"snippet(docs, -1, '{_OPEN}', '{_CLOSE}', '…', 24) "
            f"FROM docs WHERE {' AND '.join(where)} ORDER BY rank LIMIT ?"
        )
        with self._lock:
            try:
                rows = self._conn.execute(sql, [*args, limit]).fetchall()
            except sqlite3.OperationalError:
                args[0] = safe_query(q)
                try:
                    rows = self._conn.execute(sql, [*args, limit]).fetchall()
                except sqlite3.OperationalError:
                    return []
        return [
            Hit(tid, pid, st, None if c is None else bool(c), highlight(snip))
            for tid, pid, st, c, snip in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
