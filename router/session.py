"""Corrections that apply to one chat session only: an anonymous visitor's "should have gone to".

A public demo must not let one visitor change routing for everyone, yet a visitor who corrects a
decision should see the router follow it. Their corrections live in their session (never in the
shared L2 index) and reroute that session's queries that are the same or nearly the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router.protocols import Encoder
from router.schema import Route, RouteDecision

MAX_SESSION_CORRECTIONS = 20  # per session; the oldest is forgotten first


@dataclass(frozen=True, slots=True)
class SessionCorrection:
    """One session's statement that `query` belongs on `route`; `vector` is its embedding, if any."""

    query: str
    route: str
    vector: tuple[float, ...] | None = None  # a tuple, so session state copies cheaply and stays immutable


def normalized(text: str) -> str:
    """Case and spacing folded, for exact-repeat matching.

    >>> normalized("  Act as a  Linux terminal ")
    'act as a linux terminal'
    """
    return " ".join(text.lower().split())


def make_correction(query: str, route: str, encoder: Encoder | None) -> SessionCorrection:
    """A session correction, embedded with `encoder` when the router has a semantic tier."""
    vector = None
    if encoder is not None:
        vector = tuple(float(x) for x in encoder.encode([query])[0])
    return SessionCorrection(query, route, vector)


def add_correction(corrections: Sequence[SessionCorrection], new: SessionCorrection) -> tuple[SessionCorrection, ...]:
    """The session's corrections with `new` added: a repeat of the same query replaces the old one.

    >>> [c.route for c in add_correction([SessionCorrection("hi", "math")], SessionCorrection("HI", "code"))]
    ['code']
    """
    kept = [c for c in corrections if normalized(c.query) != normalized(new.query)]
    return (*kept, new)[-MAX_SESSION_CORRECTIONS:]


def apply_corrections(
    decision: RouteDecision, query: str, corrections: Sequence[SessionCorrection], routes: dict[str, Route],
    encoder: Encoder | None, min_similarity: float = 0.9,
) -> RouteDecision:
    """The decision, rerouted when the session corrected this query or one nearly the same."""
    if not corrections:
        return decision
    text = normalized(query)
    best, similarity = None, 0.0
    for c in corrections:
        if normalized(c.query) == text:
            best, similarity = c, 1.0
    if best is None and encoder is not None and any(c.vector is not None for c in corrections):
        vector = encoder.encode([query])[0]
        for c in corrections:
            if c.vector is not None:
                s = float(np.dot(np.asarray(c.vector, dtype=np.float32), vector))
                if s > similarity:
                    best, similarity = c, s
        if similarity < min_similarity:
            best = None
    if best is None or best.route not in routes or best.route == decision.route:
        return decision
    return dataclasses.replace(
        decision, route=best.route, expert=routes[best.route].expert, tier="session", score=round(similarity, 4),
        reason=(f"your correction in this session sends queries like this to '{best.route}' (similarity "
                f"{similarity:.2f}); the router alone chose '{decision.route}' ({decision.tier}). "
                "Session corrections apply to this browser session only."),
    )
