"""ChatService: routing, streaming, fallback, limits and failures, with scripted providers."""

import pytest

from router.errors import InvalidQueryError, ProviderUnavailable, StreamInterrupted
from router.hybrid import HybridRouter
from router.schema import Chunk, GenerationStats, Message
from router.service import ChatService, Expert, FallingBack, Finished, Routed, Token
from router.strategies.keyword import KeywordRoutingStrategy


class ScriptedProvider:
    """An LLMProvider that answers from a script, or fails the way it is told to."""

    def __init__(self, model, pieces=("Hello", " there"), fail=None, cut_after=None):
        self.model, self.pieces, self.fail, self.cut_after = model, pieces, fail, cut_after
        self.calls = []

    def stream(self, messages, **options):
        self.calls.append(list(messages))
        if self.fail:
            raise self.fail
        sent = []
        for i, piece in enumerate(self.pieces):
            if self.cut_after is not None and i == self.cut_after:
                raise StreamInterrupted("The stream from test broke off.", partial="".join(sent))
            sent.append(piece)
            yield Chunk(piece)
        yield Chunk("", done=True, stats=GenerationStats(self.model, ttft_ms=5.0, output_tokens=len(self.pieces)))


def make_service(routes, professor=None, zoomer=None, **kwargs):
    experts = {
        "professor": Expert("professor", "big", professor or ScriptedProvider("big"), fallback="zoomer"),
        "zoomer": Expert("zoomer", "small", zoomer or ScriptedProvider("small", ("Yo",)), fallback=None),
    }
    router = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes))
    return ChatService(router, experts, **kwargs), experts


def test_a_turn_routes_then_streams_then_finishes(routes):
    service, experts = make_service(routes)
    events = list(service.chat("write a python function please", [Message("user", "hi"), Message("assistant", "hey")]))
    assert isinstance(events[0], Routed) and events[0].decision.route == "code" and events[0].model == "big"
    assert [e.text for e in events if isinstance(e, Token)] == ["Hello", " there"]
    done = events[-1]
    assert isinstance(done, Finished) and done.answer == "Hello there" and done.expert == "professor"
    assert done.stats.output_tokens == 2 and not done.incomplete and done.error is None
    sent = experts["professor"].provider.calls[0]
    assert [m.role for m in sent] == ["user", "assistant", "user"] and sent[-1].content.startswith("write")


def test_fallback_when_the_routed_expert_is_down(routes):
    down = ScriptedProvider("big", fail=ProviderUnavailable("Ollama is not reachable at http://x. Start it with: ollama serve"))
    service, _ = make_service(routes, professor=down)
    events = list(service.chat("python function to add numbers"))
    assert any(isinstance(e, FallingBack) and e.failed == "professor" and e.expert == "zoomer" for e in events)
    done = events[-1]
    assert done.answer == "Yo" and done.expert == "zoomer" and done.fallback_from == "professor"


def test_no_backend_still_routes_and_says_so(routes):
    err = ProviderUnavailable("Ollama is not reachable at http://127.0.0.1:1. Start it with: ollama serve")
    service, _ = make_service(routes, professor=ScriptedProvider("big", fail=err), zoomer=ScriptedProvider("small", fail=err))
    events = list(service.chat("python function"))
    assert isinstance(events[0], Routed)
    done = events[-1]
    assert done.answer == "" and done.expert is None and "ollama serve" in done.error
    assert "professor (big)" in done.error and "zoomer (small)" in done.error


def test_cut_stream_keeps_what_arrived(routes):
    service, _ = make_service(routes, professor=ScriptedProvider("big", ("a", "b", "c"), cut_after=2))
    done = list(service.chat("python function"))[-1]
    assert done.answer == "ab" and done.incomplete and "broke off" in done.error


def test_long_message_is_routed_but_not_sent(routes):
    service, experts = make_service(routes, max_prompt_chars=100)
    events = list(service.chat("python function " + "x" * 1_000_000))
    assert isinstance(events[0], Routed) and len(events) == 2
    assert "1,000,016 characters" in events[-1].error and "app.max_prompt_chars" in events[-1].error
    assert experts["professor"].provider.calls == []


def test_empty_message_is_not_sent(routes):
    service, experts = make_service(routes)
    with pytest.raises(InvalidQueryError):
        list(service.chat("   "))
    assert experts["professor"].provider.calls == []


def test_system_prompt_goes_first(routes):
    service, experts = make_service(routes, system_prompt="Be brief.")
    list(service.chat("python function"))
    assert experts["professor"].provider.calls[0][0] == Message("system", "Be brief.")


def test_compare_streams_both_experts_and_reports_failures_per_side(routes):
    down = ScriptedProvider("small", fail=ProviderUnavailable("Ollama is not reachable at http://x. Start it with: ollama serve"))
    service, _ = make_service(routes, zoomer=down)
    events = list(service.compare("write a python function", ("professor", "zoomer")))
    side, first = events[0]
    assert side == 0 and isinstance(first, Routed) and first.decision.route == "code"
    done = {side: e for side, e in events if isinstance(e, Finished)}
    assert done[0].answer == "Hello there" and done[0].error is None
    assert done[1].answer == "" and "zoomer (small)" in done[1].error
    assert [e.text for s, e in events if s == 0 and isinstance(e, Token)] == ["Hello", " there"]


def test_compare_names_an_unknown_expert(routes):
    service, _ = make_service(routes)
    with pytest.raises(ValueError, match="Unknown expert 'wizard'"):
        list(service.compare("hi", ("professor", "wizard")))
