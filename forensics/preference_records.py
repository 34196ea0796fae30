"""The records the preference store keeps: answer votes, route corrections and routed turns.

Values are checked when a record is built, so a bad verdict fails where it is made, not in SQL.
Every record names the `user` who made it ('alice', 'key:3f9a1c', 'anonymous:ab12cd'; '' for records
from before accounts) and, in `original_chars`, how long its prompt or query was when the store clipped it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args

from router.schema import Tier

Verdict = Literal["a", "b", "tie", "both_bad"]
# routed: a routing decision only (POST /v1/route), no answer was asked for
Outcome = Literal["answered", "incomplete", "failed", "refused", "routed"]
# global: applied to the router; session: a visitor's, applied only in their browser session until promoted
Scope = Literal["global", "session"]

VERDICTS: tuple[str, ...] = get_args(Verdict)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
SCOPES: tuple[str, ...] = get_args(Scope)
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


def clean_text(text: str) -> str:
    """The text with lone surrogates replaced by U+FFFD (and split surrogate pairs joined).

    >>> clean_text("ok \\ud800")
    'ok \\ufffd'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clip_text(text: str, limit: int) -> tuple[str, int | None]:
    """The first `limit` characters of text, and its full length if that was longer (else None).

    >>> clip_text("abcdef", 4)
    ('abcd', 6)
    """
    return (text, None) if len(text) <= limit else (text[:limit], len(text))


def clean_value(value: Any) -> Any:
    """A str, or the strings inside mappings and sequences (which become lists), through clean_text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_value(v) for v in value]
    return value


def _check(record: object, allowed: Mapping[str, Sequence[str]], texts: Sequence[str]) -> None:
    kind = type(record).__name__
    for name, choices in allowed.items():
        value = getattr(record, name)
        if value not in choices:
            raise ValueError(f"Unknown {kind}.{name} {value!r}. Allowed: {', '.join(choices)}")
    for name in ("user", *texts):
        if not isinstance(getattr(record, name), str):
            raise TypeError(f"{kind}.{name} must be a str, got {type(getattr(record, name)).__name__}.")
    original = getattr(record, "original_chars", None)
    if original is not None and (not isinstance(original, int) or isinstance(original, bool) or original < 0):
        raise ValueError(f"{kind}.original_chars must be None or a length (an int >= 0), got {original!r}.")
    for name in ("created_at", "undone_at"):
        if getattr(record, name, None) is not None:
            object.__setattr__(record, name, utc_iso(getattr(record, name)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Preference:
    """A user's verdict on two answers to one prompt (the arena's vote).

    `history` is the chat the prompt was asked in, as {"role", "content"} messages (other keys are
    dropped). `created_at` and an empty `app_version` are filled in by the store. With a `pair_id`
    (the compared pair on screen) a user has one vote per pair: storing another replaces it.
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
    user: str = ""
    pair_id: str | None = None
    original_chars: int | None = None  # len(prompt) before the store clipped it; None if it was not

    def __post_init__(self) -> None:
        if self.pair_id is not None and not isinstance(self.pair_id, str):
            raise TypeError(f"Preference.pair_id must be a str or None, got {type(self.pair_id).__name__}.")
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
    """A user's statement that `query` belongs on `right_route` (it went to `wrong_route`).

    A 'global' correction is applied to the router; a 'session' one (a visitor's) only to the visitor's
    session, and stays pending until an admin promotes it to 'global'.
    """

    id: int | None = None
    query: str
    right_route: str
    wrong_route: str | None = None
    decision: dict[str, Any] | None = None
    created_at: str | None = None
    undone_at: str | None = None
    app_version: str = ""
    user: str = ""
    scope: Scope = "global"
    original_chars: int | None = None  # len(query) before the store clipped it; None if it was not

    def __post_init__(self) -> None:
        _check(self, {"scope": SCOPES}, ("query", "right_route", "app_version"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingEvent:
    """One routed turn (chat, gateway or /v1/route): where it went, how confidently, how fast, how it ended."""

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
    user: str = ""
    original_chars: int | None = None  # len(query) before the store clipped it; None if it was not

    def __post_init__(self) -> None:
        _check(self, {"outcome": OUTCOMES, "tier": TIERS}, ("query", "route", "expert", "app_version"))
