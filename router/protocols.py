"""The swappable parts of the router, as structural protocols with one or two methods each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from router.schema import Chunk, Message, Ranking, RouteDecision


@runtime_checkable
class RoutingStrategy(Protocol):
    """Decides where a query goes, or declines so that the next tier can decide."""

    def route(self, query: str) -> RouteDecision | None:
        """Return a decision, or None when this strategy has no confident answer."""
        ...


@runtime_checkable
class RankingStrategy(Protocol):
    """The L2 tier: ranks every route for a query, and says whether the ranking is confident enough.

    HybridRouter asks `accepts` before it lets L2 decide, and re-ranks queries that fire a
    corrected L1 rule, so it needs the ranking, not only a decision.
    """

    def rank(self, query: str) -> Ranking:
        """Every route scored against the query, best first."""
        ...

    def accepts(self, ranking: Ranking) -> bool:
        """Whether the ranking is confident enough to route on."""
        ...

    def decide(self, ranking: Ranking) -> RouteDecision:
        """The decision the ranking implies, whether or not it is accepted."""
        ...


@runtime_checkable
class LearnsExamples(Protocol):
    """A tier that takes labelled examples at run time (users' corrections), with no restart."""

    def add_utterances(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Learn (text, route) examples at once."""
        ...

    def remove_utterance(self, text: str, route: str) -> bool:
        """Forget the latest example with this text and route; False if there is none."""
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
