"""Every backend fault reaches the user as a clear message within the timeout: real client, real HTTP."""

from __future__ import annotations

import time

import pytest

from router.hybrid import HybridRouter
from router.providers import OllamaProvider
from router.service import ChatService, Expert, FallingBack, Finished
from router.strategies.keyword import KeywordRoutingStrategy
from tests.support.fixtures import dead_url, fake_backend  # noqa: F401

QUERY = "write a python function that sorts a list"  # routes to code: professor


def make(routes, host, fallback=None, read_timeout=5.0, professor_model="llama3.2:3b"):
    experts = {
        "professor": Expert("professor", professor_model,
                            OllamaProvider(professor_model, host=host, connect_timeout=1.0, read_timeout=read_timeout),
                            fallback=fallback),
        "zoomer": Expert("zoomer", "tinyllama", OllamaProvider("tinyllama", host=host, connect_timeout=1.0)),
    }
    router = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes))
    return ChatService(router, experts)


def finish(service) -> tuple[Finished, list, float]:
    start = time.monotonic()
    events = list(service.chat(QUERY))
    return events[-1], events, time.monotonic() - start


def test_backend_down(routes, dead_url):
    done, _, _ = finish(make(routes, dead_url))
    assert done.answer == "" and "not reachable" in done.error and "ollama serve" in done.error


def test_slow_beyond_the_read_timeout_is_reported_within_it(routes, fake_backend):
    fake_backend.configure(first_chunk_delay=10.0)
    done, _, took = finish(make(routes, fake_backend.url, read_timeout=0.5))
    assert "timed out" in done.error.lower() or "timeout" in done.error.lower()
    assert took < 5.0  # far below the backend's 10 s delay


def test_model_not_pulled_names_the_pull_command(routes, fake_backend):
    done, _, _ = finish(make(routes, fake_backend.url, professor_model="qwen2.5:7b"))
    assert "ollama pull qwen2.5:7b" in done.error


def test_server_error_shows_its_text(routes, fake_backend):
    fake_backend.configure(fail_status=500, fail_message="out of memory")
    done, _, _ = finish(make(routes, fake_backend.url))
    assert "out of memory" in done.error


def test_cut_stream_keeps_the_partial_answer(routes, fake_backend):
    fake_backend.configure(reply="one two three four five six", cut_after=3)
    done, _, _ = finish(make(routes, fake_backend.url))
    assert done.incomplete and done.answer and "one two three four five six".startswith(done.answer)


def test_fallback_expert_answers_when_the_model_is_missing(routes, fake_backend):
    fake_backend.configure(reply="Here you go.")
    done, events, _ = finish(make(routes, fake_backend.url, fallback="zoomer", professor_model="qwen2.5:7b"))
    assert any(isinstance(e, FallingBack) for e in events)
    assert done.answer == "Here you go." and done.expert == "zoomer" and done.fallback_from == "professor"
    assert done.stats.output_tokens and done.stats.tokens_per_s


@pytest.mark.parametrize("size", [1_000_000])
def test_a_huge_message_is_refused_with_the_limit(routes, fake_backend, size):
    service = make(routes, fake_backend.url)
    done = list(service.chat("python function " + "x" * size))[-1]
    assert "app.max_prompt_chars" in done.error
    assert not [r for r in fake_backend.requests if r.path == "/api/chat"]
