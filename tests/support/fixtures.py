"""Pytest fixtures for the fake backends; a conftest.py imports the ones its tests use.

    from tests.support.fixtures import blackhole_url, dead_url, fake_backend  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.backends import FakeLLMServer, blackhole, unused_port

T = TypeVar("T")


@pytest.fixture
def fake_backend() -> Iterator[FakeLLMServer]:
    """A started FakeLLMServer with the default script; set knobs with fake_backend.configure(...)."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def blackhole_url() -> Iterator[str]:
    """http://127.0.0.1:PORT where a connection is never accepted: a host that drops packets."""
    with blackhole() as url:
        yield url


@pytest.fixture
def dead_url() -> str:
    """http://127.0.0.1:PORT where nothing listens: a backend that is not running."""
    return f"http://127.0.0.1:{unused_port()}"


@pytest.fixture
def closing() -> Iterator[Callable[[T], T]]:
    """closing(provider) returns the provider and closes it after the test."""
    made: list = []

    def keep(provider: T) -> T:
        made.append(provider)
        return provider

    yield keep
    for provider in made:
        provider.close()
