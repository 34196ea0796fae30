"""The preference store in one SQLite file (the default): embedded, one writer at a time, WAL mode.

Every record is written in its own transaction, so a record whose `add_*` call returned is on disk
even if the process is killed the next instant. The schema version is `PRAGMA user_version`.
Processes sharing the file see each other's changes by polling the store's version counter.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forensics.store_base import Row, StoreError

__all__ = ["SqliteBackend"]


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


class SqliteBackend:
    """One SQLite connection behind a lock, safe to share between threads."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        # One connection behind a lock: SQLite takes one writer at a time anyway, and in-process
        # writers then queue on the lock instead of polling SQLite's busy handler.
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and not os.access(self.path, os.W_OK):  # else it opens, and the first vote fails
                raise StoreError(f"Cannot write preferences to {self.path}: the file is read-only. "
                                 "Set store.path to a writable file.")
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                        check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode syncs at checkpoints, not at each commit: a committed transaction is
            # in the WAL file (the OS holds it) when the call returns, so it survives the process
            # being killed; only a power loss or OS crash can undo the last commits. FULL would add
            # an fsync per record for that case.
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as e:
            self.close()
            raise self.error("write", e) from e

    def error(self, doing: str, e: BaseException) -> StoreError:
        reason, advice = _explain(e)
        where = "write preferences to" if doing == "write" else "read preferences from"
        return StoreError(f"Cannot {where} {self.path}: {reason}. {advice}")

    def _open(self) -> sqlite3.Connection:
        if self.conn is None:
            raise StoreError(f"The preference store at {self.path} is closed.")
        return self.conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE: the write lock is taken at BEGIN, so two processes never both read-then-write."""
        with self._lock:
            conn = self._open()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite has already rolled back after some errors (disk full)
                        conn.execute("ROLLBACK")
                    raise
            except (OSError, sqlite3.Error) as e:
                raise self.error("write", e) from e

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            conn = self._open()
            try:
                return [dict(zip(r.keys(), r)) for r in conn.execute(sql, params).fetchall()]
            except sqlite3.Error as e:
                raise self.error("read", e) from e

    def schema_version(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, conn: sqlite3.Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def changed(self, conn: sqlite3.Connection) -> None:
        """Nothing to send: other processes poll the version counter."""

    def wait_for_change(self, timeout_s: float) -> None:
        self._closed.wait(timeout_s)

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            if self.conn is not None:
                self.conn.close()
                self.conn = None
