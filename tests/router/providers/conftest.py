"""Provider tests run against real HTTP servers on 127.0.0.1 (tests/support/backends.py)."""

from tests.support.fixtures import blackhole_url, closing, dead_url, fake_backend  # noqa: F401
