"""Errors raised by the router; every message says what was wrong and what to do next.

RouterError
├── ConfigError           a config key, route table, pattern or override is wrong
├── DataError             a labelled JSONL file has a bad line
├── InvalidQueryError     a query the router cannot route (empty)
└── ProviderError         an LLM backend failed
    ├── ProviderUnavailable   the backend is not reachable
    ├── ModelNotFound         the model is not pulled / not served
    ├── ProviderTimeout       no answer within the timeout
    └── StreamInterrupted     the answer stopped mid-stream (what arrived is kept)
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


class ModelNotFound(ProviderError):
    """The backend does not have the model (for Ollama: it is not pulled)."""


class ProviderTimeout(ProviderError):
    """The backend did not answer (or stopped answering) within the timeout."""


class StreamInterrupted(ProviderError):
    """The stream broke off mid-answer; `partial` holds the text that arrived."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial
