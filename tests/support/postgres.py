"""A fresh database per test on the PostgreSQL server named by LLM_ROUTER_TEST_PG (.ci/run starts one).

LLM_ROUTER_TEST_PG is a URL with the right to create databases, e.g.
postgresql://postgres:postgres@127.0.0.1:5432/postgres. Without it, PostgreSQL tests skip and say so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV = "LLM_ROUTER_TEST_PG"
SKIP_REASON = (f"no PostgreSQL server for the tests: set {ENV}=postgresql://USER:PASSWORD@HOST/postgres "
               "(a role that may create databases; .ci/run starts one)")


def server_url() -> str:
    """The admin URL, or a skip when none is configured."""
    url = os.environ.get(ENV, "").strip()
    if not url:
        pytest.skip(SKIP_REASON)
    return url


@contextmanager
def fresh_database(prefix: str = "store") -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards (with any connections still open to it)."""
    import psycopg

    admin = server_url()
    name = f"test_{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
