"""Errors raised by the router; every message says what was wrong and what to do next.

RouterError
├── ConfigError           a config key, route table, pattern or override is wrong
├── DataError             a labelled JSONL file has a bad line
├── InvalidQueryError     a query the router cannot route (empty)
└── ProviderError         an LLM backend failed
    └── ProviderUnavailable   the backend is not reachable
"""

from __future__ import annotations


class RouterError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(RouterError):
    """The configuration is invalid; the message names the key or pattern."""


class DataError(RouterError):
    """A labelled data file is malformed; the message names the file and line."""


class InvalidQueryError(RouterError, ValueError):
    """The query cannot be routed (for example it is empty)."""


class ProviderError(RouterError):
    """An LLM provider failed to answer."""


class ProviderUnavailable(ProviderError):
    """The LLM backend cannot be reached."""
