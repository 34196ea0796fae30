"""Value types passed between the router's parts; results are never bare tuples.

All are frozen except KeywordMatch and RouteDecision: those are built on the L1 hot path, where
frozen construction (one object.__setattr__ per field) cost over a tenth of the tier's time.
Treat them as read-only all the same; derive a changed copy with dataclasses.replace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# session: a visitor's own correction (router.session); context: a follow-up kept its conversation's route
Tier = Literal["L1", "L2", "default", "session", "context"]


@dataclass(frozen=True, slots=True)
class Route:
    """A destination: a named route served by one expert, with its L1 patterns and L2 examples."""

    name: str
    expert: str
    keywords: tuple[str, ...] = ()
    utterances: tuple[str, ...] = ()


@dataclass(slots=True)
class KeywordMatch:
    """The L1 rule that fired: which pattern, where in the query, and what it matched."""

    route: str
    pattern: str
    start: int
    end: int
    text: str
    # Other routes whose patterns matched too but lost on priority.
    also_matched: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteScore:
    """One route's L2 similarity to a query."""

    route: str
    score: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """The L2 tier's view of one query: every route's similarity, best first, and the best route's lead.

    `margin` is in the units of whatever ordered the routes (`by`): cosine similarity, or a learned
    model's score.
    """

    scores: tuple[RouteScore, ...]
    margin: float
    by: str = "similarity"

    @property
    def best(self) -> RouteScore:
        return self.scores[0]


@dataclass(frozen=True, slots=True)
class Learned:
    """What the router did with one correction ("`query` belongs on `route`").

    `examples` says whether the L2 tier took the query as an example; `contested_rule` is the L1
    pattern that decided the query for another route and now defers to L2 when it fires (None if no
    rule did).
    """

    query: str
    route: str
    examples: bool
    contested_rule: str | None = None


@dataclass(frozen=True, slots=True)
class TierTimings:
    """Time spent per tier for one decision, in microseconds (None: the tier did not run)."""

    l1_us: float | None = None
    l2_us: float | None = None
    total_us: float = 0.0


@dataclass(frozen=True, slots=True)
class ConversationContext:
    """How the conversation counted in a decision (router.conversation).

    `kind`: "follow-up" (kept the conversation's route), "same topic" (the message alone agrees) or
    "new topic" (the message routed alone). Turns are user turns, 1-based; `turn` is this message's.
    """

    kind: Literal["follow-up", "same topic", "new topic"]
    turn: int
    conversation_route: str
    from_turn: int  # the turn that set the conversation's route
    alone_route: str  # where the message would go without its conversation
    cues: tuple[str, ...] = ()  # what in the message pointed back at the conversation


@dataclass(slots=True)
class RouteDecision:
    """Where a query goes and why.

    `score` is 1.0 for an L1 rule, else the winning route's similarity (`scale` "similarity") or the
    trained tier's probability (`scale` "probability"); `margin` is its lead over the runner-up.
    `rule` is set for L1; `top_routes` holds the best L2 routes, on the same scale, when L2 ran.
    `context` says in words how the conversation counted ("follow-up: kept 'code' from turn 2", "new
    topic"; empty for a message routed without one) and `conversation` says it in fields.
    """

    route: str
    expert: str
    tier: Tier
    score: float
    margin: float
    rule: KeywordMatch | None = None
    top_routes: tuple[RouteScore, ...] = ()
    timings: TierTimings = TierTimings()  # immutable, so one shared default is safe
    reason: str = ""
    context: str = ""
    conversation: ConversationContext | None = None
    scale: Literal["similarity", "probability"] = "similarity"  # what the L2 scores in score/top_routes are

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (as printed by the CLI and returned by the API)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    """One row of a labelled JSONL file: a query and the route it belongs to."""

    query: str
    route: str
    line: int
    source: str = ""
    dataset: str = ""  # the upstream collection: rows of one dataset are held out together in cross-validation
    history: tuple[Message, ...] = ()  # the conversation before the query (routed as a turn of it)
    kind: str = ""  # a row's own category, e.g. follow_up or topic_switch: accuracy is reported per kind


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message sent to an expert."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What one answer cost, as reported by the backend and timed by the provider.

    Durations are in milliseconds; None where the backend does not report it.
    """

    model: str
    ttft_ms: float | None = None  # time to first token, measured by the provider
    total_ms: float | None = None
    load_ms: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed answer; the last one has `done=True` and carries the stats."""

    text: str
    done: bool = False
    stats: GenerationStats | None = None
