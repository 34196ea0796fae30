"""OpenAICompatProvider over real HTTP: the request it sends, usage stats, API key, options and faults."""

from __future__ import annotations

import sys
import time

import pytest

from router.errors import ConfigError, ModelNotFound, ProviderError, ProviderTimeout, ProviderUnavailable
from router.providers import OpenAICompatProvider
from router.schema import Message
from tests.support.backends import split_pieces

REPLY = "Lima is the capital of Peru."
QUESTION = [Message("user", "What is the capital of Peru?")]


@pytest.fixture
def build(closing):
    """build(model, **kwargs): an OpenAICompatProvider, closed after the test."""
    return lambda model, **kwargs: closing(OpenAICompatProvider(model, **kwargs))


@pytest.fixture
def provider(fake_backend, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_backend.configure(reply=REPLY)
    with OpenAICompatProvider("llama3.2:3b", base_url=fake_backend.openai_base_url) as p:
        yield p


def test_sends_a_streaming_chat_completion(build, fake_backend, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_backend.configure(reply=REPLY)
    provider = build(
        "llama3.2:3b", base_url=fake_backend.openai_base_url + "/", options={"temperature": 0.7, "max_tokens": 256}
    )
    list(provider.stream(QUESTION, temperature=0.0, stop="###"))
    (request,) = fake_backend.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "llama3.2:3b",
        "messages": [{"role": "user", "content": "What is the capital of Peru?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "max_tokens": 256,
        "stop": ["###"],
    }
    assert "authorization" not in request.headers


def test_usage_and_clock_make_the_stats(provider, fake_backend):
    fake_backend.configure(first_chunk_delay=0.2)
    *pieces, last = provider.stream(QUESTION)
    assert [c.text for c in pieces] == split_pieces(REPLY)
    stats = last.stats
    assert (stats.model, stats.prompt_tokens, stats.output_tokens) == ("llama3.2:3b", 6, len(split_pieces(REPLY)))
    assert stats.load_ms is None  # the OpenAI API does not report it
    assert 200 <= stats.ttft_ms <= stats.total_ms
    assert stats.tokens_per_s > 0


@pytest.mark.parametrize(("arg", "env", "sent"), [("sk-arg", "sk-env", "Bearer sk-arg"), (None, "sk-env", "Bearer sk-env")])
def test_api_key_from_argument_or_environment(build, fake_backend, monkeypatch, arg, env, sent):
    monkeypatch.setenv("OPENAI_API_KEY", env)
    provider = build("llama3.2:3b", base_url=fake_backend.openai_base_url, api_key=arg)
    list(provider.stream(QUESTION))
    provider.health()
    assert [r.headers["authorization"] for r in fake_backend.requests] == [sent, sent]
    assert "sk-" not in repr(provider)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_predict": 10}, r"Unknown option 'num_predict' for OpenAICompatProvider\. Allowed: frequency_penalty, max_"),
        ({"max_tokens": "many"}, "Option 'max_tokens' .*valid integer"),
        ({"top_p": None, "temperature": [1]}, "Option 'temperature'"),
    ],
)
def test_bad_options_are_config_errors(provider, options, match):
    with pytest.raises(ConfigError, match=match):
        provider.stream(QUESTION, **options)
    with pytest.raises(ConfigError, match=match):
        OpenAICompatProvider("llama3.2:3b", options=options)


def test_not_served_names_the_model_and_where_to_look(provider, fake_backend):
    fake_backend.configure(models=("qwen2.5-7b-instruct",))
    with pytest.raises(ModelNotFound, match=r"Model 'llama3\.2:3b' is not served at .*/v1 \(The model `llama3\.2:3b` does"):
        list(provider.stream(QUESTION))


def test_server_error_text_is_kept(provider, fake_backend):
    fake_backend.configure(fail_status=503, fail_message="Service is overloaded, retry later")
    with pytest.raises(ProviderError, match=r"\(HTTP 503\): Service is overloaded, retry later"):
        list(provider.stream(QUESTION))


def test_unreachable_names_the_base_url(build, dead_url):
    with pytest.raises(ProviderUnavailable, match=f"No OpenAI-compatible server is reachable at {dead_url}/v1"):
        list(build("llama3.2:3b", base_url=f"{dead_url}/v1").stream(QUESTION))


@pytest.mark.skipif(sys.platform != "linux", reason="a full listen backlog drops connections on Linux")
def test_connect_timeout_names_the_timeout(build, blackhole_url):
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match=r"0\.3 s \(connect timeout\)"):
        list(build("m", base_url=f"{blackhole_url}/v1", connect_timeout=0.3).stream(QUESTION))
    assert time.perf_counter() - started < 3


def test_health_lists_models(provider, fake_backend):
    fake_backend.configure(models=("qwen2.5-7b-instruct", "llama3.2:3b"))
    status = provider.health()
    assert (status.reachable, status.version, status.error) == (True, None, None)
    assert status.models == ("qwen2.5-7b-instruct", "llama3.2:3b")


def test_health_with_a_base_url_missing_v1(build, fake_backend):
    status = build("llama3.2:3b", base_url=fake_backend.url).health()
    assert status.reachable and status.models == ()
    assert "base_url ends in /v1" in status.error
