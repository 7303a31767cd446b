"""The history's SQLite database: one table of images, an FTS5 index of their prompts, WAL journaling.

WAL with ``synchronous=NORMAL``: a process killed mid-write loses at most its last transactions, never the
database (SQLite replays or drops the log at the next open). The schema's version is ``PRAGMA user_version``;
:data:`MIGRATIONS` brings an older file up to date. One connection, used under a lock, serves every thread
(the Gradio workers, the API and the background scan); each call is short, so nobody waits long.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any

from pipelines.history.records import HistoryEntry, HistoryQuery
from pipelines.history.search_text import fts_query, like_pattern, parse_terms

log = logging.getLogger(__name__)

COLUMNS = tuple(f.name for f in fields(HistoryEntry))  # id first; the table's columns in the same order
_STORED = COLUMNS[1:]

_TABLE = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, mode TEXT NOT NULL, kind TEXT NOT NULL,
    prompt TEXT NOT NULL, negative_prompt TEXT NOT NULL, seed INTEGER, width INTEGER NOT NULL,
    height INTEGER NOT NULL, sampler TEXT NOT NULL, steps INTEGER, cfg_scale REAL, model TEXT NOT NULL,
    model_hash TEXT NOT NULL, vae TEXT NOT NULL, vae_hash TEXT NOT NULL, loras TEXT NOT NULL,
    created REAL NOT NULL, favourite INTEGER NOT NULL DEFAULT 0, trashed INTEGER NOT NULL DEFAULT 0,
    original TEXT NOT NULL, infotext TEXT NOT NULL,
    file_mtime_ns INTEGER NOT NULL DEFAULT 0, file_size INTEGER NOT NULL DEFAULT 0)
"""
_INDEXES = [
    "CREATE INDEX images_created ON images (trashed, created DESC)",
    "CREATE INDEX images_model ON images (model, created DESC)",
    "CREATE INDEX images_mode ON images (mode, created DESC)",
    "CREATE INDEX images_favourite ON images (favourite, created DESC)",
]
_FTS = [
    "CREATE VIRTUAL TABLE images_fts USING fts5(prompt, negative, loras, content='')",
    # contentless: the triggers give it each row's words; deleting needs the old values, which the triggers have
    """CREATE TRIGGER images_ai AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt, negative, loras) VALUES (new.id, new.prompt, new.negative_prompt,
                                                                         new.loras); END""",
    """CREATE TRIGGER images_ad AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative, loras)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.loras); END""",
    """CREATE TRIGGER images_au AFTER UPDATE OF prompt, negative_prompt, loras ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative, loras)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.loras);
        INSERT INTO images_fts (rowid, prompt, negative, loras) VALUES (new.id, new.prompt, new.negative_prompt,
                                                                         new.loras); END""",
]
SCHEMA_VERSION = 2
# A text search's matches up to this many are fetched through the FTS index and sorted; more, and walking the
# (trashed, created) index newest first is faster (bench/history_search.py).
TEXT_FIRST_LIMIT = 3000


def has_fts5() -> bool:
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(a)")
        return True
    except sqlite3.OperationalError:
        return False


def _migrate_to_1(db: sqlite3.Connection, fts: bool) -> None:
    db.execute(_TABLE)
    for statement in [*_INDEXES, *(_FTS if fts else [])]:
        db.execute(statement)


def _migrate_to_2(db: sqlite3.Connection, fts: bool) -> None:
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")  # e.g. "scanned": a full scan ended


MIGRATIONS = {1: _migrate_to_1, 2: _migrate_to_2}  # version -> what brings the version before it there


def _day_start(day: _dt.date) -> float:
    return _dt.datetime.combine(day, _dt.time()).timestamp()  # local midnight, as the file dates are shown


class HistoryDatabase:
    """The images table of one database file; every method is safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.fts = has_fts5()
        self._migrate()
        self.fts = self.fts and bool(self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'images_fts'").fetchone())

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](db, self.fts)
                log.info("history database %s: schema version %d", self.path, target)
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- writing
    def upsert(self, rows: Iterable[tuple[HistoryEntry, int, int]]) -> int:
        """Insert or update (by path) each ``(entry, file_mtime_ns, file_size)``; the favourite flag of a path
        already known is kept. Returns how many rows were written."""
        names = [*_STORED, "file_mtime_ns", "file_size"]
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in ("path", "favourite"))
        sql = (f"INSERT INTO images ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
               f"ON CONFLICT (path) DO UPDATE SET {updates}")
        values = [(*_row_values(entry), mtime, size) for entry, mtime, size in rows]
        with self.transaction() as db:
            db.executemany(sql, values)
        return len(values)

    def remove_paths(self, paths: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in paths])

    def set_favourite(self, entry_id: int, favourite: bool) -> bool:
        with self.transaction() as db:
            return db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), entry_id)).rowcount > 0

    def move(self, entry_id: int, *, path: str, trashed: bool, original: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM images WHERE path = ? AND id != ?", (path, entry_id))  # a stale row there
            db.execute("UPDATE images SET path = ?, trashed = ?, original = ? WHERE id = ?",
                       (path, int(trashed), original, entry_id))

    # ---- reading
    def get(self, entry_id: int) -> HistoryEntry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def get_by_path(self, path: str) -> HistoryEntry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images WHERE path = ?", (path,)).fetchone()
        return _entry(row) if row else None

    def file_states(self) -> dict[str, tuple[int, int]]:
        """Every indexed path with the modification time and size its file had when indexed."""
        with self._lock:
            return {p: (m, s) for p, m, s in self._db.execute("SELECT path, file_mtime_ns, file_size FROM images")}

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM images").fetchone()[0]

    def distinct(self, column: str) -> list[str]:
        """The different non-empty values of ``model`` or ``mode``, sorted."""
        if column not in ("model", "mode"):
            raise ValueError(column)
        # one index seek per value (a plain DISTINCT reads the whole index: 35 ms at 100,000 images)
        sql = (f"WITH RECURSIVE v(x) AS (SELECT min({column}) FROM images WHERE {column} > '' UNION ALL "
               f"SELECT (SELECT min({column}) FROM images WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
               "SELECT x FROM v WHERE x IS NOT NULL")
        with self._lock:
            return [value for (value,) in self._db.execute(sql)]

    def search(self, query: HistoryQuery) -> tuple[list[HistoryEntry], int]:
        """One page of the rows matching ``query``, newest first, and how many match in all."""
        texts = bool(query.text.strip()) and self.fts
        where, params = self._conditions(query, text_first=texts)
        offset = (query.page - 1) * query.page_size
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM images WHERE {' AND '.join(where)}", params).fetchone()[0]
            if texts and total > TEXT_FIRST_LIMIT:  # many matches: walk the newest first, stop at the page's end
                where, params = self._conditions(query, text_first=False)
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images WHERE {' AND '.join(where)} "
                                    "ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                                    [*params, query.page_size, offset]).fetchall()
        return [_entry(row) for row in rows], total

    def _conditions(self, query: HistoryQuery, *, text_first: bool = False) -> tuple[list[str], list[Any]]:
        # text_first: "+trashed" keeps SQLite off the (trashed, created) index, so the FTS matches drive the query
        where, params = ["+trashed = ?" if text_first else "trashed = ?"], [int(query.trashed)]
        for column in ("model", "mode", "width", "height"):
            value = getattr(query, column)
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if query.favourite is not None:
            where.append("favourite = ?")
            params.append(int(query.favourite))
        if query.date_from:
            where.append("created >= ?")
            params.append(_day_start(query.date_from))
        if query.date_to:
            where.append("created < ?")
            params.append(_day_start(query.date_to + _dt.timedelta(days=1)))
        if query.text.strip():
            self._text_conditions(query.text, where, params)
        return where, params

    def _text_conditions(self, text: str, where: list[str], params: list[Any]) -> None:
        if self.fts:
            match = fts_query(text)
            if match.include:
                where.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
                params.append(match.include)
            if match.exclude:
                where.append("id NOT IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
                params.append(match.exclude)
            return
        for term in parse_terms(text):  # no FTS5 in this SQLite: substring matches, slower but the same filters
            column = "negative_prompt" if term.negative_prompt else "prompt || ' ' || loras"
            where.append(f"({column}) {'NOT ' if term.excluded else ''}LIKE ? ESCAPE '\\'")
            params.append(like_pattern(term.words))

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                       "excluded.value", (key, value))

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _row_values(entry: HistoryEntry) -> tuple[Any, ...]:
    values = dict(zip(COLUMNS, astuple(entry), strict=True))
    values["loras"] = "\n".join(entry.loras)  # names may hold spaces
    values["favourite"], values["trashed"] = int(entry.favourite), int(entry.trashed)
    return tuple(values[name] for name in _STORED)


def _entry(row: tuple[Any, ...]) -> HistoryEntry:
    values = dict(zip(COLUMNS, row, strict=True))
    values["loras"] = tuple(name for name in values["loras"].split("\n") if name)
    values["favourite"], values["trashed"] = bool(values["favourite"]), bool(values["trashed"])
    return HistoryEntry(**values)
