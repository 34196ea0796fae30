"""The chat service: route a query, stream the expert's answer, and say what happened as events.

The UI and the REST API both consume `ChatService.chat()`; neither holds routing or backend logic.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from router.errors import ProviderError, ProviderTimeout, StreamInterrupted
from router.hybrid import HybridRouter
from router.protocols import LLMProvider
from router.providers.ollama import is_model_pulled
from router.schema import GenerationStats, Message, RouteDecision
from router.session import SessionCorrection, apply_corrections, make_correction
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
    timed_out: bool = False  # no expert answered, and every one that failed ran out of time


Event = Routed | Token | FallingBack | Finished


@dataclass(frozen=True, slots=True)
class _Failed:
    """Internal: an expert failed before any text arrived (the caller may fall back)."""

    error: ProviderError


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

    def route(self, query: str, session: Sequence[SessionCorrection] = (),
              history: Sequence[Message] = ()) -> RouteDecision:
        """Only the routing decision (the playground and POST /v1/route), as a turn of `history` if given."""
        return self._session_route(query, session, history)

    def session_correction(self, query: str, route: str) -> SessionCorrection:
        """A correction that reroutes one session's similar queries only (an anonymous visitor's)."""
        if route not in self.router.routes:
            raise ValueError(f"Unknown route '{route}'. Available: {', '.join(self.router.routes)}")
        return make_correction(clean_query(query), route, self._encoder)

    @property
    def _encoder(self):
        return self.router.semantic.encoder if self.router.semantic is not None else None

    def _session_route(self, query: str, session: Sequence[SessionCorrection],
                       history: Sequence[Message] = ()) -> RouteDecision:
        decision = self.router.route(query, history)
        return apply_corrections(decision, query, session, self.router.routes, self._encoder)

    def chat(
        self, query: str, history: Sequence[Message] = (), session: Sequence[SessionCorrection] = ()
    ) -> Iterator[Event]:
        """Route `query` as the next turn of `history` (with the session's own corrections), then stream an
        answer; the last event is `Finished`."""
        start = perf_counter()
        decision, refusal = self._route(query, start, session, history)
        expert = self.experts[decision.expert]
        yield Routed(decision, expert.name, expert.model)
        if refusal is not None:
            yield refusal
            return
        messages = self._messages(query, history)
        router_ms = decision.timings.total_us / 1000
        tried: list[str] = []
        failures: list[str] = []
        timeouts = 0
        while expert is not None and expert.name not in tried:
            tried.append(expert.name)
            fallback_from = tried[0] if len(tried) > 1 else None
            failure = None
            for event in self._answer(expert, messages, start, router_ms, fallback_from):
                if isinstance(event, _Failed):
                    failure = event
                else:
                    yield event
            if failure is None:
                return
            failures.append(f"{expert.name} ({expert.model}): {failure.error}")
            timeouts += isinstance(failure.error, ProviderTimeout)
            log.warning("Expert %s failed: %s", expert.name, failure.error)
            nxt = self.experts.get(expert.fallback) if expert.fallback else None
            if nxt is not None and nxt.name not in tried:
                yield FallingBack(expert.name, str(failure.error), nxt.name, nxt.model)
            expert = nxt
        yield Finished("", None, None, error="\n".join(failures),  # one line per expert router_ms=router_ms, total_ms=_ms(start),
                       timed_out=bool(timeouts) and timeouts == len(tried))

    def compare(
        self, query: str, experts: tuple[str, str], history: Sequence[Message] = (),
        session: Sequence[SessionCorrection] = (),
    ) -> Iterator[tuple[int, Event]]:
        """Stream two experts' answers to one query at once, as (side, event) with side 0 or 1.

        The first event is (0, Routed) for the router's decision; each side ends with a Finished
        (its `error` set when that expert failed: no fallback here, the point is to compare).
        """
        start = perf_counter()
        for name in experts:
            if name not in self.experts:
                raise ValueError(f"Unknown expert '{name}'. Available: {', '.join(self.experts)}")
        decision, refusal = self._route(query, start, session, history)
        yield 0, Routed(decision, decision.expert, self.experts[decision.expert].model)
        if refusal is not None:
            yield 0, refusal
            yield 1, refusal
            return
        messages = self._messages(query, history)
        router_ms = decision.timings.total_us / 1000
        events: queue.Queue = queue.Queue()

        def run(side: int, expert: Expert) -> None:
            try:
                for event in self._answer(expert, messages, start, router_ms, None):
                    if isinstance(event, _Failed):
                        event = Finished("", expert.name, expert.model, error=f"{expert.name} ({expert.model}): "
                                         f"{event.error}", router_ms=router_ms, total_ms=_ms(start))
                    events.put((side, event))
            finally:
                events.put((side, None))

        for side, name in enumerate(experts):
            threading.Thread(target=run, args=(side, self.experts[name]), daemon=True).start()
        running = 2
        while running:
            side, event = events.get()
            if event is None:
                running -= 1
            else:
                yield side, event

    def ask(self, expert: str, query: str, history: Sequence[Message] = ()) -> Iterator[Token | Finished]:
        """One named expert's answer to `query`, unrouted and without fallback ("try the other expert")."""
        if expert not in self.experts:
            raise ValueError(f"Unknown expert '{expert}'. Available: {', '.join(self.experts)}")
        start = perf_counter()
        query = clean_query(query)
        chosen = self.experts[expert]
        if len(query) > self.max_prompt_chars:
            yield Finished("", chosen.name, chosen.model, total_ms=_ms(start),
                           error=f"The message is over app.max_prompt_chars ({self.max_prompt_chars:,}).")
            return
        for event in self._answer(chosen, self._messages(query, history), start, 0.0, None):
            if isinstance(event, _Failed):
                event = Finished("", chosen.name, chosen.model, error=f"{chosen.name} ({chosen.model}): "
                                 f"{event.error}", total_ms=_ms(start),
                                 timed_out=isinstance(event.error, ProviderTimeout))
            yield event

    def _route(
        self, query: str, start: float, session: Sequence[SessionCorrection] = (), history: Sequence[Message] = ()
    ) -> tuple[RouteDecision, Finished | None]:
        """The decision, and the refusal to send when the message is over the size limit."""
        query = clean_query(query)  # raises InvalidQueryError for an empty message
        decision = self._session_route(query, session, history)
        if len(query) <= self.max_prompt_chars:
            return decision, None
        expert = self.experts[decision.expert]
        return decision, Finished(
            "", expert.name, expert.model, router_ms=decision.timings.total_us / 1000, total_ms=_ms(start),
            error=(f"The message has {len(query):,} characters; at most {self.max_prompt_chars:,} "
                   "are sent to a model (app.max_prompt_chars). It was routed, not answered."),
        )

    def _answer(
        self, expert: Expert, messages: list[Message], start: float, router_ms: float, fallback_from: str | None
    ) -> Iterator[Token | Finished | _Failed]:
        """One expert's answer: tokens, then Finished; or _Failed when it failed before any text."""
        answer: list[str] = []
        stats = None
        try:
            for chunk in expert.provider.stream(messages):
                if chunk.text:
                    answer.append(chunk.text)
                    yield Token(chunk.text)
                if chunk.done:
                    stats = chunk.stats
        except StreamInterrupted as e:
            yield Finished(e.partial or "".join(answer), expert.name, expert.model, incomplete=True, error=str(e),
                           router_ms=router_ms, total_ms=_ms(start), fallback_from=fallback_from)
            return
        except ProviderError as e:
            if not answer:
                yield _Failed(e)
                return
            # Part of an answer was shown: keep it rather than mix in another expert's.
            yield Finished("".join(answer), expert.name, expert.model, incomplete=True, error=str(e),
                           router_ms=router_ms, total_ms=_ms(start), fallback_from=fallback_from)
            return
        yield Finished("".join(answer), expert.name, expert.model, stats=stats, router_ms=router_ms,
                       total_ms=_ms(start), fallback_from=fallback_from)

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

