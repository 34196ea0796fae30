"""Every provider keeps the LLMProvider contract: same stream shape, same named errors, same health report."""

from __future__ import annotations

import time

import pytest

from router.errors import (
    ConfigError,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    StreamInterrupted,
)
from router.protocols import LLMProvider
from router.providers import BackendStatus, OllamaProvider, OpenAICompatProvider
from router.schema import Chunk, Message
from tests.support.backends import split_pieces

REPLY = "The capital of Peru is Lima."
MESSAGES = [Message("system", "Answer briefly."), Message("user", "What is the capital of Peru?")]


def _build(kind, url, model="llama3.2:3b", **kwargs):
    if kind == "ollama":
        return OllamaProvider(model, host=url, **kwargs)
    return OpenAICompatProvider(model, base_url=f"{url}/v1", **kwargs)


@pytest.fixture(params=["ollama", "openai_compat"])
def make(request, fake_backend):
    """make(url=None, model=..., **kwargs): a provider of this kind, by default against the fake backend."""
    fake_backend.configure(reply=REPLY)
    built = []

    def factory(url=None, **kwargs):
        provider = _build(request.param, url or fake_backend.url, **kwargs)
        built.append(provider)
        return provider

    yield factory
    for provider in built:
        provider.close()


def test_is_an_llm_provider(make):
    assert isinstance(make(), LLMProvider)


def test_streams_the_reply_then_one_done_chunk_with_stats(make):
    chunks = list(make().stream(MESSAGES))
    assert all(isinstance(c, Chunk) for c in chunks)
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.text for c in chunks[:-1]] == split_pieces(REPLY)
    assert "".join(c.text for c in chunks) == REPLY
    assert all(c.stats is None for c in chunks[:-1])
    stats = chunks[-1].stats
    assert stats.model == "llama3.2:3b"
    assert stats.output_tokens == len(split_pieces(REPLY))
    assert stats.prompt_tokens == 8  # the fake counts one token a word, over all messages
    assert 0 < stats.ttft_ms <= stats.total_ms
    assert stats.tokens_per_s > 0


def test_stopping_early_leaves_the_provider_usable(make):
    provider = make()
    for _ in provider.stream(MESSAGES):
        break
    assert "".join(c.text for c in provider.stream(MESSAGES)) == REPLY


def test_unknown_option_fails_before_any_request(make, fake_backend):
    provider = make()
    with pytest.raises(ConfigError, match="temprature"):
        provider.stream(MESSAGES, temprature=0.2)  # not even iterated
    with pytest.raises(ConfigError, match="Allowed: .*temperature"):
        make(options={"temprature": 0.2})
    assert fake_backend.requests == []


def test_server_down_is_unavailable_within_the_connect_timeout(make, dead_url):
    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable, match=dead_url):
        list(make(url=dead_url, connect_timeout=1.0).stream(MESSAGES))
    assert time.perf_counter() - started < 3


def test_slow_first_chunk_times_out(make, fake_backend):
    fake_backend.configure(first_chunk_delay=5)
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match=r"0\.5 s \(read timeout\)"):
        list(make(read_timeout=0.5).stream(MESSAGES))
    assert time.perf_counter() - started < 3


def test_stall_mid_answer_times_out_after_the_first_chunks(make, fake_backend):
    fake_backend.configure(chunk_delay=5)
    got = []
    with pytest.raises(ProviderTimeout, match="read timeout"):
        got.extend(c.text for c in make(read_timeout=0.5).stream(MESSAGES))
    assert got == split_pieces(REPLY)[:1]


def test_model_not_served(make):
    with pytest.raises(ModelNotFound, match="'mistral:7b'"):
        list(make(model="mistral:7b").stream(MESSAGES))


def test_server_error_carries_the_server_text(make, fake_backend):
    fake_backend.configure(fail_status=500, fail_message="CUDA error: out of memory")
    with pytest.raises(ProviderError, match="CUDA error: out of memory") as info:
        list(make().stream(MESSAGES))
    assert type(info.value) is ProviderError
    assert "500" in str(info.value)


@pytest.mark.parametrize("cut_mode", ["close", "half_line", "no_done"])
def test_cut_stream_yields_what_arrived_then_interrupts(make, fake_backend, cut_mode):
    fake_backend.configure(cut_after=3, cut_mode=cut_mode)
    got = []
    with pytest.raises(StreamInterrupted) as info:
        got.extend(c.text for c in make().stream(MESSAGES))
    assert got == split_pieces(REPLY)[:3]
    assert info.value.partial == "".join(got)


def test_health_reports_the_served_models(make):
    status = make().health()
    assert status == BackendStatus(reachable=True, version=status.version, models=("llama3.2:3b", "tinyllama:latest"))


def test_health_of_a_server_that_is_down(make, dead_url):
    status = make(url=dead_url).health()
    assert not status.reachable and status.models == ()
    assert dead_url in status.error
