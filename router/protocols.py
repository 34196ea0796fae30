"""The swappable parts of the router, as structural protocols with one or two methods each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from router.schema import Chunk, Message, RouteDecision


@runtime_checkable
class RoutingStrategy(Protocol):
    """Decides where a query goes, or declines so that the next tier can decide."""

    def route(self, query: str) -> RouteDecision | None:
        """Return a decision, or None when this strategy has no confident answer."""
        ...


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length embedding vectors."""

    # Identifies the model and its input window; embeddings cached under another id are stale.
    model_id: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim) whose rows have unit L2 norm."""
        ...


@runtime_checkable
class LLMProvider(Protocol):
    """Streams a chat answer from one model of an LLM backend (implemented in router/providers/)."""

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        """Yield the answer as it is generated; the last chunk has done=True."""
        ...
