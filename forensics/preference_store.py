"""The durable record of what users told the workbench: answer votes, route corrections, routed turns.

One interface over two backends, chosen by the location the store is opened with: a SQLite file
(a path or `sqlite:///data/preferences.sqlite3`, the default; forensics.store_sqlite) or a PostgreSQL
database (`postgresql://user@host/db`; forensics.store_postgres) that several replicas share. Every
record is written in its own transaction, so a record whose `add_*` call returned is stored even if
the process is killed the next instant. The schema is versioned; `MIGRATIONS[i]`
(forensics.store_migrations) takes a store from version i to i + 1, on either backend.
Every change to the corrections bumps `corrections_version()`, so replicas notice each other's.

Text is stored exactly, control characters included, except that lone UTF-16 surrogates (which
UTF-8, and so SQLite and JSON files, cannot hold) become U+FFFD when a record is written, and that
free text longer than `max_text_chars` is clipped to its start (the prompt's or query's full length is
kept in `original_chars`), so a public visitor cannot fill the disk with one request.
The record types and text helpers live in forensics.preference_records and are re-exported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
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
from forensics.store_base import StoreBackend, StoreError
from forensics.store_migrations import MIGRATIONS

__all__ = [
    "MIGRATIONS", "Correction", "Preference", "PreferenceStore", "RoutingEvent", "StoreError", "clean_text",
    "clip_text", "open_backend",
]

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
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def _installed_version() -> str:
    try:
        return version("llm-router-workbench")
    except PackageNotFoundError:
        return "unknown"


def open_backend(location: str | Path, busy_timeout_s: float = 5.0, pool_size: int = 10) -> StoreBackend:
    """The backend a store location names: a file path, `sqlite:///PATH` or `postgresql://USER@HOST/DB`.

    `sqlite:///data/p.sqlite3` is relative to the working directory, `sqlite:////srv/p.sqlite3` absolute.
    """
    text = str(location)
    scheme = _SCHEME.match(text)
    if scheme is None:
        from forensics.store_sqlite import SqliteBackend

        return SqliteBackend(text, busy_timeout_s)
    name = scheme.group(1).lower()
    if name == "sqlite":
        from forensics.store_sqlite import SqliteBackend

        if not text.startswith("sqlite:///"):
            raise StoreError(f"Invalid store URL {text!r}: write sqlite:///relative/path or sqlite:////absolute/path.")
        return SqliteBackend(text[len("sqlite:///"):], busy_timeout_s)
    if name in ("postgresql", "postgres"):
        from forensics.store_postgres import PostgresBackend

        return PostgresBackend(text, busy_timeout_s, pool_size)
    raise StoreError(f"Unknown store URL scheme '{name}'. Available: sqlite:///PATH, postgresql://USER@HOST/DB")


def _owned_by(user: str | None) -> tuple[str, tuple[str, ...]]:
    """(SQL, parameters) that restrict a statement to one user's rows; nothing when user is None."""
    return ("", ()) if user is None else (' AND "user" = ?', (user,))


class PreferenceStore:
    """Preferences, corrections and routing events in SQLite or PostgreSQL, safe to share between threads.

    `location` is a file path, `sqlite:///PATH` or `postgresql://USER@HOST/DB` (see `open_backend`).
    """

    def __init__(self, location: str | Path, app_version: str | None = None, busy_timeout_s: float = 5.0, *,
                 max_text_chars: int = 20_000, pool_size: int = 10) -> None:
        if isinstance(max_text_chars, bool) or not isinstance(max_text_chars, int) or max_text_chars < 1:
            raise ValueError(f"max_text_chars must be a whole number of characters >= 1, got {max_text_chars!r}.")
        self.app_version = app_version or _installed_version()
        self.max_text_chars = max_text_chars
        self._db: StoreBackend = open_backend(location, busy_timeout_s, pool_size)
        self.location = self._db.location
        self.path: Path | None = getattr(self._db, "path", None)  # the file, for a SQLite store
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _migrate(self) -> None:
        with self._db.transaction() as conn:  # one transaction: two processes opening a new store migrate once
            found = self._db.schema_version(conn)
            if found > len(MIGRATIONS):
                raise StoreError(
                    f"{self.location} has schema version {found}, but this workbench knows versions up to "
                    f"{len(MIGRATIONS)}: it was written by a newer release. Upgrade the workbench, "
                    "or set store.url to another store.")
            for migrate in MIGRATIONS[found:]:
                migrate(conn)  # type: ignore[arg-type]
            if found < len(MIGRATIONS):
                self._db.set_schema_version(conn, len(MIGRATIONS))

    def _write(self, sql: str, params: Sequence[Any] = (), *, corrections: bool = False) -> int:
        """Run one statement in its own transaction; returns the rows it changed.

        With `corrections`, a statement that changed any row also bumps the corrections' version.
        """
        with self._db.transaction() as conn:
            changed = conn.execute(sql, params).rowcount
            if corrections and changed:
                self._bump(conn)
            return changed

    def _bump(self, conn: Any) -> None:
        conn.execute("UPDATE store_version SET corrections = corrections + 1 WHERE id = 1")
        self._db.changed(conn)

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

    @staticmethod
    def _columns(row: dict[str, Any]) -> str:
        return ", ".join(f'"{column}"' for column in row)

    def _insert(self, table: str, record: Record) -> int:
        row = self._row(table, record)
        sql = f"INSERT INTO {table} ({self._columns(row)}) VALUES ({', '.join('?' * len(row))}) RETURNING id"
        with self._db.transaction() as conn:
            new_id = int(conn.execute(sql, list(row.values())).fetchone()["id"])
            if table == "corrections":
                self._bump(conn)
            return new_id

    def _select(self, table: str, where: Sequence[str] = (), params: Sequence[Any] = (),
                limit: int | None = None) -> list[Any]:
        kind, json_columns = TABLES[table]
        sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created_at DESC, id DESC" + (" LIMIT ?" if limit is not None else "")
        records = []
        for values in self._db.read(sql, [*params, *([limit] if limit is not None else [])]):
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
        updates = ", ".join(f'"{column}" = excluded."{column}"' for column in row if column not in ("pair_id", "user"))
        sql = (f"INSERT INTO preferences ({self._columns(row)}) VALUES ({', '.join('?' * len(row))}) "
               f'ON CONFLICT (pair_id, "user") WHERE pair_id IS NOT NULL DO UPDATE SET {updates} RETURNING id')
        with self._db.transaction() as conn:
            return int(conn.execute(sql, list(row.values())).fetchone()["id"])

    def preference_for_pair(self, pair_id: str, user: str) -> Preference | None:
        """This user's vote on this pair, or None if they have not voted on it."""
        found = self._select("preferences", ("pair_id = ?", '"user" = ?'), (pair_id, user))
        return found[0] if found else None

    def preferences(self, route: str | None = None, expert: str | None = None, verdict: str | None = None,
                    since: str | date | None = None, user: str | None = None) -> list[Preference]:
        """Votes, newest first; `expert` matches either side, `since` keeps those created on or after it."""
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"Unknown verdict {verdict!r}. Allowed: {', '.join(VERDICTS)}")
        where, params = [], []
        for clause, value in (("route = ?", route), ("? IN (expert_a, expert_b)", expert),
                              ("verdict = ?", verdict), ('"user" = ?', user)):
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
        return self._write("DELETE FROM preferences WHERE id = ?" + owned, (id, *params)) == 1

    def win_rates(self, user: str | None = None) -> list[dict[str, Any]]:
        """Per (route, expert): wins, losses, ties, both_bad, n and wins / decisive votes (None if none).

        A comparison of an expert with itself says nothing about the expert, so it is left out.
        """
        owned, params = _owned_by(user)
        sides = ("SELECT route, {me} AS expert, CASE verdict WHEN '{won}' THEN 'win' WHEN '{lost}' THEN 'loss' "
                 "ELSE verdict END AS result FROM preferences WHERE expert_a != expert_b" + owned)
        counts = ", ".join(f"SUM(CASE WHEN result = '{r}' THEN 1 ELSE 0 END) AS {name}"
                           for r, name in (("win", "wins"), ("loss", "losses"), ("tie", "ties"),
                                           ("both_bad", "both_bad")))
        rows = self._db.read(
            f"SELECT route, expert, {counts}, COUNT(*) AS n FROM ("
            + sides.format(me="expert_a", won="a", lost="b") + " UNION ALL "
            + sides.format(me="expert_b", won="b", lost="a") + ") AS sides GROUP BY route, expert "
            "ORDER BY route, expert", [*params, *params])
        return [{**{k: int(v) if k in ("wins", "losses", "ties", "both_bad", "n") else v for k, v in r.items()},
                 "win_rate": r["wins"] / (r["wins"] + r["losses"]) if r["wins"] + r["losses"] else None}
                for r in rows]

    def add_correction(self, c: Correction) -> int:
        """Store a route correction; returns its id."""
        return self._insert("corrections", c)

    def undo_correction(self, id: int, user: str | None = None) -> bool:
        """Mark a correction undone (it stays on record); False when there is no active one with this id.

        With `user`, only a correction that user made is undone.
        """
        owned, params = _owned_by(user)
        return self._write("UPDATE corrections SET undone_at = ? WHERE id = ? AND undone_at IS NULL" + owned,
                           (utc_iso(), id, *params), corrections=True) == 1

    def promote_correction(self, id: int) -> bool:
        """Make an active session correction global; False when there is no active session one with this id."""
        return self._write("UPDATE corrections SET scope = 'global' "
                           "WHERE id = ? AND scope = 'session' AND undone_at IS NULL", (id,), corrections=True) == 1

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
        for clause, value in (('"user" = ?', user), ("scope = ?", scope)):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self._select("corrections", where, params)

    def corrections_version(self) -> int:
        """A number that grows with every correction added, undone or promoted, by any process."""
        return int(self._db.read("SELECT corrections FROM store_version WHERE id = 1")[0]["corrections"])

    def wait_for_change(self, timeout_s: float) -> None:
        """Return when another process may have changed the corrections (PostgreSQL), or after `timeout_s`."""
        self._db.wait_for_change(timeout_s)

    def add_routing_event(self, e: RoutingEvent) -> int:
        """Store one routed turn; returns its id."""
        return self._insert("routing_events", e)

    def routing_events(self, limit: int | None = None, user: str | None = None) -> list[RoutingEvent]:
        """Routed turns, newest first; at most `limit` of them."""
        if user is None:
            return self._select("routing_events", limit=limit)
        return self._select("routing_events", ('"user" = ?',), (user,), limit=limit)

    def count(self, table: str) -> int:
        """Number of rows in one table."""
        if table not in TABLES:
            raise ValueError(f"Unknown table '{table}'. Available: {', '.join(TABLES)}")
        return int(self._db.read(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])

    def close(self) -> None:
        """Close the store; later calls raise StoreError. Closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
