"""The durable record of what users told the workbench: answer votes, route corrections, routed turns.

One SQLite file in WAL mode; every record is written in its own transaction, so a record whose
`add_*` call returned is on disk even if the process is killed the next instant. The schema is
versioned with `PRAGMA user_version`; `MIGRATIONS[i]` (forensics.store_migrations) takes a file
from version i to i + 1.

Text is stored exactly, control characters included, except that lone UTF-16 surrogates (which
UTF-8, and so SQLite and JSON files, cannot hold) become U+FFFD when a record is written, and that
free text longer than `max_text_chars` is clipped to its start (the prompt's or query's full length is
kept in `original_chars`), so a public visitor cannot fill the disk with one request.
The record types and text helpers live in forensics.preference_records and are re-exported here.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from forensics.preference_records import (
    SCOPES,
    VERDICTS,
    Correction,
    Preference,
    RoutingEvent,
    clean_text,
    clean_value,
    clip_text,
    utc_iso,
)
from forensics.store_migrations import MIGRATIONS
from router.errors import RouterError

__all__ = [
    "MIGRATIONS", "Correction", "Preference", "PreferenceStore", "RoutingEvent", "StoreError", "clean_text",
    "clip_text",
]


class StoreError(RouterError):
    """The preference store cannot be opened, read or written; the message says what to do."""


Record = Preference | Correction | RoutingEvent
# table -> (record type, columns stored as JSON text)
TABLES: dict[str, tuple[type, frozenset[str]]] = {
    "preferences": (Preference, frozenset({"history", "decision", "timings"})),
    "corrections": (Correction, frozenset({"decision"})),
    "routing_events": (RoutingEvent, frozenset()),
}
# table -> free-text columns clipped to max_text_chars; the first one's full length goes in original_chars
CLIPPED: dict[str, tuple[str, ...]] = {
    "preferences": ("prompt", "answer_a", "answer_b"),
    "corrections": ("query",),
    "routing_events": ("query", "error"),
}




def _installed_version() -> str:
    try:
        return version("llm-router-workbench")
    except PackageNotFoundError:
        return "unknown"


def _explain(e: BaseException) -> tuple[str, str]:
    """(what went wrong, what to do) for an OS or SQLite error, in words a user can act on."""
    writable = "Set store.path to a writable file."
    if isinstance(e, OSError):
        reasons = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                   errno.EPERM: "operation not permitted", errno.ENOSPC: "the disk is full",
                   errno.ENOTDIR: f"{e.filename} is not a directory",
                   errno.EEXIST: f"{e.filename} is not a directory"}
        return reasons.get(e.errno, e.strerror or str(e)), writable
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    text = str(e)
    if code == 13 or "is full" in text:  # SQLITE_FULL
        return ("the disk is full (or the database reached its size limit)",
                "Free space on that disk, or set store.path to a file on another one.")
    if code == 8 or "readonly" in text:  # SQLITE_READONLY
        return "the file or its directory is read-only", writable
    if code == 14 or "unable to open" in text:  # SQLITE_CANTOPEN
        return "the file or its directory cannot be opened for writing", writable
    if code in (11, 26) or "malformed" in text or "not a database" in text:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return (f"the file is corrupted or is not a SQLite database ({text})",
                "Move it aside to start a new store, or set store.path to another file.")
    if code in (5, 6) or "locked" in text:  # SQLITE_BUSY, SQLITE_LOCKED
        return "another process kept it locked", "Close the other program using it, or retry."
    return text, "Check the file, or set store.path to another one."


def _owned_by(user: str | None) -> tuple[str, tuple[str, ...]]:
    """(SQL, parameters) that restrict a statement to one user's rows; nothing when user is None."""
    return ("", ()) if user is None else (" AND user = ?", (user,))


class PreferenceStore:
    """Preferences, corrections and routing events in one SQLite file, safe to share between threads."""

    def __init__(self, path: str | Path, app_version: str | None = None, busy_timeout_s: float = 5.0, *,
                 max_text_chars: int = 20_000) -> None:
        if isinstance(max_text_chars, bool) or not isinstance(max_text_chars, int) or max_text_chars < 1:
            raise ValueError(f"max_text_chars must be a whole number of characters >= 1, got {max_text_chars!r}.")
        self.path = Path(path).expanduser()
        self.app_version = app_version or _installed_version()
        self.max_text_chars = max_text_chars
        # One connection behind a lock: SQLite takes one writer at a time anyway, and in-process
        # writers then queue on the lock instead of polling SQLite's busy handler.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and not os.access(self.path, os.W_OK):  # else it opens, and the first vote fails
                raise StoreError(f"Cannot write preferences to {self.path}: the file is read-only. "
                                 "Set store.path to a writable file.")
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode syncs at checkpoints, not at each commit: a committed transaction is
            # in the WAL file (the OS holds it) when the call returns, so it survives the process
            # being killed; only a power loss or OS crash can undo the last commits. FULL would add
            # an fsync per record for that case.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as e:
            self.close()
            raise self._error("write", e) from e
        except StoreError:
            self.close()
            raise

    def _error(self, doing: str, e: BaseException) -> StoreError:
        reason, advice = _explain(e)
        where = "write preferences to" if doing == "write" else "read preferences from"
        return StoreError(f"Cannot {where} {self.path}: {reason}. {advice}")

    def _migrate(self) -> None:
        with self._transaction() as conn:  # IMMEDIATE: two processes opening a new file migrate once
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {found}, but this workbench knows versions up to "
                    f"{len(MIGRATIONS)}: it was written by a newer release. Upgrade the workbench, "
                    "or set store.path to another file.")
            for migrate in MIGRATIONS[found:]:
                migrate(conn)
            if found < len(MIGRATIONS):
                conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            raise StoreError(f"The preference store at {self.path} is closed.")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # SQLite has already rolled back after some errors (disk full)
                self._conn.execute("ROLLBACK")
            raise

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                with self._transaction() as conn:
                    return conn.execute(sql, params)
            except sqlite3.Error as e:
                raise self._error("write", e) from e

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"The preference store at {self.path} is closed.")
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise self._error("read", e) from e

    def _row(self, table: str, record: Record) -> dict[str, Any]:
        """The record as column values: defaults filled in, text cleaned and clipped, JSON columns dumped."""
        kind, json_columns = TABLES[table]
        clipped = CLIPPED[table]
        row: dict[str, Any] = {}
        original = record.original_chars  # a caller that clipped the text itself knows its full length
        for f in fields(kind):
            if f.name == "id":
                continue
            value = clean_value(getattr(record, f.name))  # clean, then clip: clipping never splits a surrogate pair
            if f.name == "created_at" and value is None:
                value = utc_iso()
            elif f.name == "app_version" and not value:
                value = self.app_version
            elif f.name in clipped and value is not None:
                value, full = clip_text(value, self.max_text_chars)
                if f.name == clipped[0] and full is not None:
                    original = full
            elif f.name == "history":
                value = [{**m, "content": clip_text(m["content"], self.max_text_chars)[0]} for m in value]
            if f.name in json_columns and value is not None:
                try:
                    value = json.dumps(value, ensure_ascii=False)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{kind.__name__}.{f.name} must be JSON-serializable: {e}") from e
            row[f.name] = value
        row["original_chars"] = original
        return row

    def _insert(self, table: str, record: Record) -> int:
        row = self._row(table, record)
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        cursor = self._write(sql, list(row.values()))
        return int(cursor.lastrowid)  # type: ignore[arg-type]

    def _select(self, table: str, where: Sequence[str] = (), params: Sequence[Any] = (),
                limit: int | None = None) -> list[Any]:
        kind, json_columns = TABLES[table]
        sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created_at DESC, id DESC" + (" LIMIT ?" if limit is not None else "")
        records = []
        for row in self._read(sql, [*params, *([limit] if limit is not None else [])]):
            values = {k: row[k] for k in row.keys()}
            for column in json_columns:
                values[column] = None if values[column] is None else json.loads(values[column])
            if "history" in values:
                values["history"] = tuple(values["history"])
            records.append(kind(**values))
        return records

    def add_preference(self, p: Preference) -> int:
        """Store a vote; returns its id.

        One vote per pair per user: when `p.pair_id` is set and this user already voted on that pair,
        the earlier row takes all of this vote's values (verdict, answers, models, decision, timings,
        time) and keeps its id; the check and the write are one statement.
        """
        if p.pair_id is None:
            return self._insert("preferences", p)
        row = self._row("preferences", p)
        updates = ", ".join(f"{column} = excluded.{column}" for column in row if column not in ("pair_id", "user"))
        sql = (f"INSERT INTO preferences ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
               f"ON CONFLICT (pair_id, user) WHERE pair_id IS NOT NULL DO UPDATE SET {updates} RETURNING id")
        with self._lock:
            try:
                with self._transaction() as conn:
                    return int(conn.execute(sql, list(row.values())).fetchone()[0])
            except sqlite3.Error as e:
                raise self._error("write", e) from e

    def preference_for_pair(self, pair_id: str, user: str) -> Preference | None:
        """This user's vote on this pair, or None if they have not voted on it."""
        found = self._select("preferences", ("pair_id = ?", "user = ?"), (pair_id, user))
        return found[0] if found else None

    def preferences(self, route: str | None = None, expert: str | None = None, verdict: str | None = None,
                    since: str | date | None = None, user: str | None = None) -> list[Preference]:
        """Votes, newest first; `expert` matches either side, `since` keeps those created on or after it."""
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"Unknown verdict {verdict!r}. Allowed: {', '.join(VERDICTS)}")
        where, params = [], []
        for clause, value in (("route = ?", route), ("? IN (expert_a, expert_b)", expert),
                              ("verdict = ?", verdict), ("user = ?", user)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if since is not None:
            where.append("created_at >= ?")
            params.append(utc_iso(since))
        return self._select("preferences", where, params)

    def delete_preference(self, id: int, user: str | None = None) -> bool:
        """Remove a vote; False when there was none with this id (or, with `user`, none that user made)."""
        owned, params = _owned_by(user)
        return self._write("DELETE FROM preferences WHERE id = ?" + owned, (id, *params)).rowcount == 1

    def win_rates(self, user: str | None = None) -> list[dict[str, Any]]:
        """Per (route, expert): wins, losses, ties, both_bad, n and wins / decisive votes (None if none).

        A comparison of an expert with itself says nothing about the expert, so it is left out.
        """
        owned, params = _owned_by(user)
        sides = ("SELECT route, {me} AS expert, CASE verdict WHEN '{won}' THEN 'win' WHEN '{lost}' THEN 'loss' "
                 "ELSE verdict END AS result FROM preferences WHERE expert_a != expert_b" + owned)
        rows = self._read(
            "SELECT route, expert, SUM(result = 'win') AS wins, SUM(result = 'loss') AS losses, "
            "SUM(result = 'tie') AS ties, SUM(result = 'both_bad') AS both_bad, COUNT(*) AS n FROM ("
            + sides.format(me="expert_a", won="a", lost="b") + " UNION ALL "
            + sides.format(me="expert_b", won="b", lost="a") + ") GROUP BY route, expert ORDER BY route, expert",
            [*params, *params])
        return [{**dict(r), "win_rate": r["wins"] / (r["wins"] + r["losses"]) if r["wins"] + r["losses"] else None}
                for r in rows]

    def add_correction(self, c: Correction) -> int:
        """Store a route correction; returns its id."""
        return self._insert("corrections", c)

    def undo_correction(self, id: int, user: str | None = None) -> bool:
        """Mark a correction undone (it stays on record); False when there is no active one with this id.

        With `user`, only a correction that user made is undone.
        """
        owned, params = _owned_by(user)
        cursor = self._write("UPDATE corrections SET undone_at = ? WHERE id = ? AND undone_at IS NULL" + owned,
                             (utc_iso(), id, *params))
        return cursor.rowcount == 1

    def promote_correction(self, id: int) -> bool:
        """Make an active session correction global; False when there is no active session one with this id."""
        cursor = self._write("UPDATE corrections SET scope = 'global' "
                             "WHERE id = ? AND scope = 'session' AND undone_at IS NULL", (id,))
        return cursor.rowcount == 1

    def correction(self, id: int) -> Correction | None:
        """The correction with this id, undone or not; None if there is none."""
        found = self._select("corrections", ("id = ?",), (id,))
        return found[0] if found else None

    def corrections(self, include_undone: bool = False, user: str | None = None,
                    scope: str | None = None) -> list[Correction]:
        """Corrections, newest first; only the active ones unless `include_undone`."""
        if scope is not None and scope not in SCOPES:
            raise ValueError(f"Unknown scope {scope!r}. Allowed: {', '.join(SCOPES)}")
        where = [] if include_undone else ["undone_at IS NULL"]
        params = []
        for clause, value in (("user = ?", user), ("scope = ?", scope)):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self._select("corrections", where, params)

    def add_routing_event(self, e: RoutingEvent) -> int:
        """Store one routed turn; returns its id."""
        return self._insert("routing_events", e)

    def routing_events(self, limit: int | None = None, user: str | None = None) -> list[RoutingEvent]:
        """Routed turns, newest first; at most `limit` of them."""
        if user is None:
            return self._select("routing_events", limit=limit)
        return self._select("routing_events", ("user = ?",), (user,), limit=limit)

    def count(self, table: str) -> int:
        """Number of rows in one table."""
        if table not in TABLES:
            raise ValueError(f"Unknown table '{table}'. Available: {', '.join(TABLES)}")
        return int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])

    def close(self) -> None:
        """Close the file; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
