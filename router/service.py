"""The chat service: route a query, stream the expert's answer, and say what happened as events.

The UI and the REST API both consume `ChatService.chat()`; neither holds routing or backend logic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from router.errors import ProviderError, StreamInterrupted
from router.hybrid import HybridRouter
from router.protocols import LLMProvider
from router.providers.ollama import is_model_pulled
from router.schema import GenerationStats, Message, RouteDecision
from router.text import clean_query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Expert:
    """A named model behind a provider, with the expert to fall back to when it fails."""

    name: str
    model: str
    provider: LLMProvider
    backend: str = "ollama"
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """The query was routed; `sent` says whether it goes to a model."""

    decision: RouteDecision
    expert: str
    model: str


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class FallingBack:
    """The routed expert failed before answering; another expert takes over."""

    failed: str
    reason: str
    expert: str
    model: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The turn is over: the answer (possibly empty), who gave it and what it cost."""

    answer: str
    expert: str | None
    model: str | None
    stats: GenerationStats | None = None
    incomplete: bool = False  # the stream broke off; `answer` is what arrived
    fallback_from: str | None = None
    error: str | None = None  # why no (complete) answer came, in words a user can act on
    router_ms: float = 0.0
    total_ms: float = 0.0


Event = Routed | Token | FallingBack | Finished


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Whether the experts' backends answer, and which configured models they have."""

    reachable: bool
    detail: str  # what is wrong and what to do, when something is
    models: Mapping[str, bool] = field(default_factory=dict)  # model -> available


class ChatService:
    """Route each chat turn and stream the chosen expert's answer as events."""

    def __init__(
        self,
        router: HybridRouter,
        experts: Mapping[str, Expert],
        max_prompt_chars: int = 32_000,
        system_prompt: str | None = None,
    ) -> None:
        missing = {r.expert for r in router.routes.values()} - set(experts)
        if missing:
            raise ValueError(f"Routes name experts that are not configured: {sorted(missing)}")
        self.router, self.experts = router, dict(experts)
        self.max_prompt_chars, self.system_prompt = max_prompt_chars, system_prompt

    def route(self, query: str) -> RouteDecision:
        """Only the routing decision (the playground and POST /v1/route)."""
        return self.router.route(query)

    def chat(self, query: str, history: Sequence[Message] = ()) -> Iterator[Event]:
        """Route `query`, then stream an answer; the last event is always `Finished`."""
        start = perf_counter()
        query = clean_query(query)  # raises InvalidQueryError for an empty message
        decision = self.router.route(query)
        expert = self.experts[decision.expert]
        yield Routed(decision, expert.name, expert.model)
        router_ms = decision.timings.total_us / 1000
        if len(query) > self.max_prompt_chars:
            yield Finished(
                "", expert.name, expert.model, router_ms=router_ms, total_ms=_ms(start),
                error=(f"The message has {len(query):,} characters; at most {self.max_prompt_chars:,} "
                       "are sent to a model (app.max_prompt_chars). It was routed, not answered."),
            )
            return
        messages = self._messages(query, history)
        tried: list[str] = []
        failures: list[str] = []
        while expert is not None and expert.name not in tried:
            tried.append(expert.name)
            answer: list[str] = []
            try:
                stats = None
                for chunk in expert.provider.stream(messages):
                    if chunk.text:
                        answer.append(chunk.text)
                        yield Token(chunk.text)
                    if chunk.done:
                        stats = chunk.stats
                yield Finished(
                    "".join(answer), expert.name, expert.model, stats=stats, router_ms=router_ms,
                    total_ms=_ms(start), fallback_from=tried[0] if len(tried) > 1 else None,
                )
                return
            except StreamInterrupted as e:
                yield Finished(
                    e.partial or "".join(answer), expert.name, expert.model, incomplete=True, error=str(e),
                    router_ms=router_ms, total_ms=_ms(start), fallback_from=tried[0] if len(tried) > 1 else None,
                )
                return
            except ProviderError as e:
                failures.append(f"{expert.name} ({expert.model}): {e}")
                log.warning("Expert %s failed: %s", expert.name, e)
                if answer:  # part of an answer was shown: do not mix in another expert's
                    yield Finished("".join(answer), expert.name, expert.model, incomplete=True, error=str(e),
                                   router_ms=router_ms, total_ms=_ms(start))
                    return
                nxt = self.experts.get(expert.fallback) if expert.fallback else None
                if nxt is not None and nxt.name not in tried:
                    yield FallingBack(expert.name, str(e), nxt.name, nxt.model)
                expert = nxt
        yield Finished("", None, None, error=" ".join(failures), router_ms=router_ms, total_ms=_ms(start))

    def _messages(self, query: str, history: Sequence[Message]) -> list[Message]:
        system = [Message("system", self.system_prompt)] if self.system_prompt else []
        return [*system, *history, Message("user", query)]

    def status(self) -> ServiceStatus:
        """Ask each backend the experts use (once per server) whether it is up and has their models."""
        reports: dict[tuple[str, str], object] = {}
        models: dict[str, bool] = {}
        problems: list[str] = []
        for expert in self.experts.values():
            health = getattr(expert.provider, "health", None)
            if health is None:  # a provider without a health check is taken at its word
                models[expert.model] = True
                continue
            where = getattr(expert.provider, "host", None) or getattr(expert.provider, "base_url", "")
            key = (type(expert.provider).__name__, where)
            if key not in reports:
                reports[key] = health()
            report = reports[key]
            if not report.reachable:
                problems.append(report.error or f"{where} is not reachable")
            models[expert.model] = report.reachable and is_model_pulled(expert.model, report.models)
        reachable = all(r.reachable for r in reports.values())
        return ServiceStatus(reachable, "; ".join(dict.fromkeys(problems)), models)


def _ms(start: float) -> float:
    return round((perf_counter() - start) * 1000, 1)

