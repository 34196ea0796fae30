"""What every preference-store backend offers the store: transactions, reads, and a wait for changes.

The store (forensics.preference_store) writes its SQL once, in SQLite's dialect with `?` parameters
and `"user"` quoted; a backend runs it as its database needs and turns driver errors into StoreError.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from router.errors import RouterError

Row = dict[str, Any]


class StoreError(RouterError):
    """The preference store cannot be opened, read or written; the message says what to do."""


class Cursor(Protocol):
    """The result of one statement: rows by column name, and how many rows it changed."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction; `execute` takes SQLite-dialect SQL with `?` parameters."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


class StoreBackend(Protocol):
    """One database behind the preference store."""

    location: str  # for messages: the file, or the URL without its password

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        ...

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one query, as dicts."""
        ...

    def schema_version(self, conn: Connection) -> int: ...

    def set_schema_version(self, conn: Connection, version: int) -> None: ...

    def changed(self, conn: Connection) -> None:
        """Tell other processes, once this transaction commits, that the corrections changed."""
        ...

    def wait_for_change(self, timeout_s: float) -> None:
        """Return when another process may have changed the corrections, or after `timeout_s`."""
        ...

    def close(self) -> None: ...


def redact(url: str) -> str:
    """The URL without its password, fit for a log line.

    >>> redact("postgresql://bob:s3cret@db:5432/prefs")
    'postgresql://bob@db:5432/prefs'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def rows(cursor: Any) -> Iterator[Row]:
    """Each row of a DB-API cursor whose rows have keys() (sqlite3.Row, psycopg dict rows) as a dict."""
    for row in cursor:
        yield {k: row[k] for k in row.keys()}
