"""The preference store's schema versions: `MIGRATIONS[i]` takes a store from version i to i + 1.

Append a function for a new version; never edit a released one (stores in the field were made by it).
The statements are SQLite's; on PostgreSQL the same functions run through a connection that writes
`INTEGER PRIMARY KEY AUTOINCREMENT` as an identity column, REAL as DOUBLE PRECISION and TEXT with
the "C" collation (byte order, as SQLite sorts), so both backends hold the same schema.
`user` is quoted because PostgreSQL reserves the word.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def v1_tables(conn: sqlite3.Connection) -> None:
    """The first schema: votes, corrections and routed turns."""
    conn.execute("""CREATE TABLE preferences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a deleted vote's id is never reused
        prompt TEXT NOT NULL, history TEXT NOT NULL, answer_a TEXT NOT NULL, answer_b TEXT NOT NULL,
        expert_a TEXT NOT NULL, model_a TEXT NOT NULL, expert_b TEXT NOT NULL, model_b TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie', 'both_bad')),
        route TEXT, decision TEXT, timings TEXT, created_at TEXT NOT NULL, app_version TEXT NOT NULL)""")
    conn.execute("""CREATE TABLE corrections (
        id INTEGER PRIMARY KEY AUTOINCREMENT, query TEXT NOT NULL, wrong_route TEXT, right_route TEXT NOT NULL,
        decision TEXT, created_at TEXT NOT NULL, undone_at TEXT, app_version TEXT NOT NULL)""")
    conn.execute("""CREATE TABLE routing_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, query TEXT NOT NULL, route TEXT NOT NULL, expert TEXT NOT NULL,
        model TEXT, tier TEXT NOT NULL, score REAL NOT NULL, margin REAL NOT NULL, router_us REAL NOT NULL,
        ttft_ms REAL, total_ms REAL, outcome TEXT NOT NULL, error TEXT, created_at TEXT NOT NULL,
        app_version TEXT NOT NULL)""")
    for table, column in (("preferences", "created_at"), ("preferences", "route"),
                          ("corrections", "created_at"), ("routing_events", "created_at")):
        conn.execute(f"CREATE INDEX {table}_{column} ON {table} ({column})")


def v2_accounts(conn: sqlite3.Connection) -> None:
    """Who made each record, visitors' corrections kept apart, one vote per pair per user, clipped lengths."""
    for table in ("preferences", "corrections", "routing_events"):
        conn.execute(f"""ALTER TABLE {table} ADD COLUMN "user" TEXT NOT NULL DEFAULT ''""")  # '': before accounts
        conn.execute(f"ALTER TABLE {table} ADD COLUMN original_chars INTEGER")
        conn.execute(f'CREATE INDEX {table}_user ON {table} ("user")')
    conn.execute("ALTER TABLE corrections ADD COLUMN scope TEXT NOT NULL DEFAULT 'global' "
                 "CHECK (scope IN ('global', 'session'))")
    conn.execute("ALTER TABLE preferences ADD COLUMN pair_id TEXT")
    conn.execute('CREATE UNIQUE INDEX preferences_pair_user ON preferences (pair_id, "user") WHERE pair_id IS NOT NULL')


def v3_version(conn: sqlite3.Connection) -> None:
    """A counter every change to the corrections bumps, so replicas sharing the store notice one."""
    conn.execute("CREATE TABLE store_version (id INTEGER PRIMARY KEY CHECK (id = 1), corrections INTEGER NOT NULL)")
    conn.execute("INSERT INTO store_version (id, corrections) VALUES (1, 0)")


# MIGRATIONS[i] takes a store from schema version i to i + 1; append, never edit a released one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [v1_tables, v2_accounts, v3_version]
