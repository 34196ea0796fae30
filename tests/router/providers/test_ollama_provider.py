"""OllamaProvider with the real ollama client over real HTTP: stats, options, messages and faults."""

from __future__ import annotations

import sys
import time

import pytest

from router.errors import ConfigError, ModelNotFound, ProviderTimeout, ProviderUnavailable
from router.providers import OllamaProvider, is_model_pulled
from router.schema import Message
from tests.support.backends import split_pieces

REPLY = "Lima is the capital of Peru."
QUESTION = [Message("user", "What is the capital of Peru?")]


@pytest.fixture
def build(closing):
    """build(model, **kwargs): an OllamaProvider, closed after the test."""
    return lambda model, **kwargs: closing(OllamaProvider(model, **kwargs))


@pytest.fixture
def provider(fake_backend):
    fake_backend.configure(reply=REPLY)
    with OllamaProvider("llama3.2:3b", host=fake_backend.url) as p:
        yield p


def test_stats_come_from_the_final_chunk_and_the_clock(provider, fake_backend):
    fake_backend.configure(first_chunk_delay=0.2, load_duration_ns=1_500_000_000, eval_ns_per_token=25_000_000)
    *pieces, last = provider.stream(QUESTION)
    assert "".join(c.text for c in pieces) == REPLY and last.done and last.text == ""
    stats = last.stats
    assert stats.model == "llama3.2:3b"
    assert stats.load_ms == 1500.0
    assert stats.prompt_tokens == 6
    assert stats.output_tokens == len(split_pieces(REPLY))
    assert stats.tokens_per_s == pytest.approx(40.0)  # eval_count / eval_duration
    assert 200 <= stats.ttft_ms <= stats.total_ms  # the server waited 0.2 s before the first piece


def test_sends_messages_options_and_keep_alive(build, fake_backend):
    fake_backend.configure(reply=REPLY)
    provider = build(
        "llama3.2:3b", host=fake_backend.url, options={"temperature": 0.7, "num_ctx": 4096}, keep_alive="10m"
    )
    history = [Message("system", "Be brief."), *QUESTION]
    list(provider.stream(history, temperature=0, stop=["\n\n"]))
    (request,) = fake_backend.requests
    assert request.path == "/api/chat"
    assert request.body["model"] == "llama3.2:3b" and request.body["stream"] is True
    assert request.body["messages"] == [{"role": m.role, "content": m.content} for m in history]
    assert request.body["options"] == {"temperature": 0.0, "num_ctx": 4096, "stop": ["\n\n"]}
    assert request.body["keep_alive"] == "10m"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"temprature": 0.2}, r"Unknown option 'temprature' for OllamaProvider\. Allowed: frequency_penalty, min_p, "),
        ({"max_tokens": 10}, "Unknown option 'max_tokens'.*num_predict"),  # an OpenAI name
        ({"temperature": "hot"}, "Option 'temperature' .*'hot'.*valid number"),
        ({"top_k": 2.5}, "Option 'top_k' .*valid integer"),
        ({"seed": True}, "Option 'seed'"),
        ({"stop": [1]}, "Option 'stop'"),
    ],
)
def test_bad_options_are_config_errors(build, fake_backend, options, match):
    with pytest.raises(ConfigError, match=match):
        OllamaProvider("llama3.2:3b", host=fake_backend.url, options=options)
    provider = build("llama3.2:3b", host=fake_backend.url)
    with pytest.raises(ConfigError, match=match):
        provider.stream(QUESTION, **options)


def test_every_allowed_option_is_accepted(provider, fake_backend):
    allowed = dict(
        temperature=0.1, top_p=0.9, top_k=40, num_predict=64, num_ctx=2048, seed=7, stop="###",
        repeat_penalty=1.1, presence_penalty=0.0, frequency_penalty=0.0, min_p=0.05,
    )
    assert "".join(c.text for c in provider.stream(QUESTION, **allowed)) == REPLY
    assert fake_backend.requests[-1].body["options"] == {**allowed, "stop": ["###"]}


def test_not_pulled_says_how_to_pull(build, fake_backend):
    fake_backend.configure(models=("llama3.2:3b",))
    with pytest.raises(ModelNotFound) as info:
        list(build("tinyllama", host=fake_backend.url).stream(QUESTION))
    assert str(info.value) == f"Model 'tinyllama' is not pulled on {fake_backend.url}. Run: ollama pull tinyllama"


def test_a_name_without_tag_is_the_latest_tag(build, fake_backend):
    fake_backend.configure(reply=REPLY, models=("tinyllama:latest",))
    assert "".join(c.text for c in build("tinyllama", host=fake_backend.url).stream(QUESTION)) == REPLY


def test_unreachable_says_how_to_start_it(build, dead_url):
    with pytest.raises(ProviderUnavailable) as info:
        list(build("llama3.2:3b", host=dead_url).stream(QUESTION))
    assert str(info.value) == f"Ollama is not reachable at {dead_url}. Start it with: ollama serve"


@pytest.mark.skipif(sys.platform != "linux", reason="a full listen backlog drops connections on Linux")
def test_connect_timeout_names_the_timeout(build, blackhole_url):
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match=r"0\.3 s \(connect timeout\)"):
        list(build("llama3.2:3b", host=blackhole_url, connect_timeout=0.3).stream(QUESTION))
    assert time.perf_counter() - started < 3


def test_health_lists_version_and_models(provider, fake_backend):
    fake_backend.configure(version="0.7.1", models=("qwen2.5:7b", "llama3.2:3b"))
    status = provider.health()
    assert status.reachable and status.error is None
    assert status.version == "0.7.1"
    assert status.models == ("qwen2.5:7b", "llama3.2:3b")
    assert is_model_pulled(provider.model, status.models)


def test_health_of_a_host_that_is_not_ollama(build, fake_backend):
    status = build("llama3.2:3b", host=f"{fake_backend.url}/v1").health()
    assert not status.version and "HTTP 404" in status.error


@pytest.mark.parametrize(
    ("model", "pulled", "expected"),
    [
        ("tinyllama", ["tinyllama:latest"], True),
        ("tinyllama:latest", ["tinyllama"], True),
        ("TinyLlama", ["tinyllama:latest"], True),
        ("llama3.2", ["llama3.2:3b"], False),
        ("llama3.2:3b", ["llama3.2:3b"], True),
        ("hf.co/org/model:Q4_K_M", ["hf.co/org/model:Q4_K_M"], True),
        ("hf.co/org/model", ["hf.co/org/model:latest"], True),
        ("tinyllama", [], False),
    ],
)
def test_is_model_pulled(model, pulled, expected):
    assert is_model_pulled(model, pulled) is expected


def test_host_without_scheme_is_http(build, fake_backend):
    fake_backend.configure(reply=REPLY)
    provider = build("llama3.2:3b", host=fake_backend.url.removeprefix("http://"))
    assert provider.host == fake_backend.url
    assert "".join(c.text for c in provider.stream(QUESTION)) == REPLY
