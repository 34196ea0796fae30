"""The records the preference store keeps: answer votes, route corrections and routed turns.

Values are checked when a record is built, so a bad verdict fails where it is made, not in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args

from router.schema import Tier

Verdict = Literal["a", "b", "tie", "both_bad"]
Outcome = Literal["answered", "incomplete", "failed", "refused"]

VERDICTS: tuple[str, ...] = get_args(Verdict)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
TIERS: tuple[str, ...] = get_args(Tier)
ROLES = ("system", "user", "assistant")


def utc_iso(value: str | date | None = None) -> str:
    """An ISO-8601 UTC time with microseconds, the one form stored (so text order is time order).

    A date means its midnight UTC; a time without an offset is taken as UTC; None means now.

    >>> utc_iso("2025-03-01")
    '2025-03-01T00:00:00.000000+00:00'
    """
    if value is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (AttributeError, ValueError) as e:
            raise ValueError(f"Invalid date {value!r}: use YYYY-MM-DD or an ISO-8601 time.") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _check(record: object, allowed: Mapping[str, Sequence[str]], texts: Sequence[str]) -> None:
    kind = type(record).__name__
    for name, choices in allowed.items():
        value = getattr(record, name)
        if value not in choices:
            raise ValueError(f"Unknown {kind}.{name} {value!r}. Allowed: {', '.join(choices)}")
    for name in texts:
        if not isinstance(getattr(record, name), str):
            raise TypeError(f"{kind}.{name} must be a str, got {type(getattr(record, name)).__name__}.")
    for name in ("created_at", "undone_at"):
        if getattr(record, name, None) is not None:
            object.__setattr__(record, name, utc_iso(getattr(record, name)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Preference:
    """A user's verdict on two answers to one prompt (the arena's vote).

    `history` is the chat the prompt was asked in, as {"role", "content"} messages (other keys are
    dropped). `created_at` and an empty `app_version` are filled in by the store.
    """

    id: int | None = None
    prompt: str
    answer_a: str
    answer_b: str
    expert_a: str
    model_a: str
    expert_b: str
    model_b: str
    verdict: Verdict
    history: tuple[dict[str, str], ...] = ()
    route: str | None = None
    decision: dict[str, Any] | None = None  # RouteDecision.to_dict() of the routed prompt
    timings: dict[str, Any] | None = None
    created_at: str | None = None
    app_version: str = ""

    def __post_init__(self) -> None:
        texts = ("prompt", "answer_a", "answer_b", "expert_a", "model_a", "expert_b", "model_b", "app_version")
        _check(self, {"verdict": VERDICTS}, texts)
        history = []
        for i, message in enumerate(self.history):
            if not isinstance(message, Mapping) or message.get("role") not in ROLES \
                    or not isinstance(message.get("content"), str):
                raise ValueError(f"Preference.history[{i}] must be {{'role': one of {', '.join(ROLES)}, "
                                 f"'content': str}}, got {message!r}.")
            history.append({"role": message["role"], "content": message["content"]})
        object.__setattr__(self, "history", tuple(history))

    @property
    def chosen(self) -> tuple[str, str] | None:
        """(answer, expert) the user preferred, or None for a tie or both bad."""
        return {"a": (self.answer_a, self.expert_a), "b": (self.answer_b, self.expert_b)}.get(self.verdict)

    @property
    def rejected(self) -> tuple[str, str] | None:
        """(answer, expert) the user did not prefer, or None for a tie or both bad."""
        return {"a": (self.answer_b, self.expert_b), "b": (self.answer_a, self.expert_a)}.get(self.verdict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Correction:
    """A user's statement that `query` belongs on `right_route` (it went to `wrong_route`)."""

    id: int | None = None
    query: str
    right_route: str
    wrong_route: str | None = None
    decision: dict[str, Any] | None = None
    created_at: str | None = None
    undone_at: str | None = None
    app_version: str = ""

    def __post_init__(self) -> None:
        _check(self, {}, ("query", "right_route", "app_version"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingEvent:
    """One routed chat turn: where it went, how confidently, how fast, and how it ended."""

    id: int | None = None
    query: str
    route: str
    expert: str
    model: str | None
    tier: Tier
    score: float
    margin: float
    router_us: float
    ttft_ms: float | None = None
    total_ms: float | None = None
    outcome: Outcome
    error: str | None = None
    created_at: str | None = None
    app_version: str = ""

    def __post_init__(self) -> None:
        _check(self, {"outcome": OUTCOMES, "tier": TIERS}, ("query", "route", "expert", "app_version"))
