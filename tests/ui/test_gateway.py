"""The OpenAI-compatible gateway, driven by the official `openai` client and by raw HTTP.

The app is the real one (build_service over the real config, with the ONNX encoder) served by uvicorn
on 127.0.0.1; its experts talk to the test Ollama server.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
import uvicorn

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore
from router.config import build_service, load_config
from tests.support.backends import FakeLLMServer, unused_port
from ui.api import build_api
from ui.auth import Accounts, parse_keys, parse_users
from ui.limits import BodyLimit, Limits

KEY = "gateway-test-key-0123456789"
CODE = "Write a python function that reverses a linked list."


class Served:
    """A FastAPI app served by uvicorn in a thread, on a free port."""

    def __init__(self, app) -> None:
        self.port = unused_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(backend_url: str, tmp_path, *overrides: str, limits: Limits | None = None):
    service = build_service(load_config([f"ollama.host={backend_url}", "ollama.read_timeout=5", *overrides]))
    store = PreferenceStore(tmp_path / "store.sqlite3")
    accounts = Accounts(parse_users("alice:admin:pw-alice-1"), parse_keys(KEY))
    api = build_api(service, accounts, limits or Limits(), Flywheel(store, service.router))
    api.add_middleware(BodyLimit, max_bytes=(limits or Limits()).max_body_bytes)
    return Served(api), store


@pytest.fixture(scope="module")
def backend():
    with FakeLLMServer(reply="Here is the answer.") as server:
        yield server


@pytest.fixture(scope="module")
def gateway(backend, tmp_path_factory):
    served, store = serve(backend.url, tmp_path_factory.mktemp("gateway"))
    with served:
        yield served, store
    store.close()


@pytest.fixture
def client(gateway, backend):
    backend.configure(fail_status=None, cut_after=None, reply="Here is the answer.")
    return openai.OpenAI(base_url=gateway[0].url + "/v1", api_key=KEY, max_retries=0)


def test_routed_completion_answers_with_the_routed_expert(client, gateway):
    raw = client.chat.completions.with_raw_response.create(model="router", messages=[{"role": "user", "content": CODE}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Here is the answer."
    assert completion.choices[0].finish_reason == "stop" and completion.model == "llama3.2:3b"
    assert completion.usage.completion_tokens > 0
    assert raw.headers["x-router-route"] == "code" and raw.headers["x-router-expert"] == "professor"
    assert raw.headers["x-router-tier"] == "L1"
    router = completion.model_extra["router"]
    assert router["route"] == "code" and router["expert"] == "professor" and router["routed"] is True
    events = gateway[1].routing_events()
    assert events[0].query == CODE and events[0].route == "code" and events[0].outcome == "answered"


def test_a_follow_up_keeps_the_conversation_route(client):
    messages = [{"role": "user", "content": CODE}, {"role": "assistant", "content": "def reverse(head): ..."},
                {"role": "user", "content": "Can you make it shorter?"}]
    raw = client.chat.completions.with_raw_response.create(model="router", messages=messages)
    assert raw.headers["x-router-route"] == "code" and raw.headers["x-router-tier"] == "context"
    assert raw.parse().model_extra["router"]["context"] == "follow-up: kept 'code' from turn 1"


def test_streamed_completion(client):
    stream = client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].model_extra["router"]["route"] == "code"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Here is the answer."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_named_expert_skips_routing(client, gateway):
    before = len(gateway[1].routing_events())
    raw = client.chat.completions.with_raw_response.create(model="zoomer", messages=[{"role": "user", "content": CODE}])
    assert raw.parse().model == "tinyllama" and raw.headers["x-router-expert"] == "zoomer"
    assert "x-router-route" not in raw.headers and raw.parse().model_extra["router"]["routed"] is False
    stream = client.chat.completions.create(model="zoomer", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Here is the answer."
    assert len(gateway[1].routing_events()) == before  # nothing was routed


def test_models_lists_router_and_experts(client):
    assert [m.id for m in client.models.list()] == ["router", "professor", "zoomer"]


def test_errors_in_openai_format(client, gateway):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "model_not_found" and "router, professor, zoomer" in e.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="router", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway[0].url + "/v1", api_key="wrong-key-wrong-key", max_retries=0).models.list()
    raw = httpx.post(gateway[0].url + "/v1/chat/completions", json={"model": "router"},
                     headers={"Authorization": f"Bearer {KEY}"})
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}


def test_backend_down_is_502_and_every_attempt_is_logged(client, backend, gateway):
    backend.configure(fail_status=500)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}])
    assert e.value.status_code == 502 and "professor" in e.value.message and "zoomer" in e.value.message
    assert "; " in e.value.message and e.value.response.headers["x-router-route"] == "code"  # routed, then failed
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}], stream=True)
    assert gateway[1].routing_events()[0].outcome == "failed"


def test_a_stream_cut_midway_raises_in_the_client(client, backend):
    backend.configure(reply="one two three four five six", cut_after=2)
    stream = client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}], stream=True)
    received = []
    with pytest.raises(openai.APIError, match="broke off"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == "one two "
    with pytest.raises(openai.InternalServerError, match="broke off"):
        client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}])


def test_raw_sse_format(gateway, client):  # client: the backend answers in full again
    with httpx.stream("POST", gateway[0].url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "router", "stream": True, "messages": [{"role": "user", "content": CODE}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-router-route"] == "code"
        body = r.read().decode()
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and "router" in chunks[0]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


def test_fallback_to_the_next_expert_before_the_first_token(backend, tmp_path):
    dead = f"http://127.0.0.1:{unused_port()}/v1"
    served, store = serve(backend.url, tmp_path, "experts.professor.provider=openai", f"openai.base_url={dead}",
                          "openai.connect_timeout=1")
    backend.configure(fail_status=None, cut_after=None, reply="Fallback answer.")
    with served:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="router", messages=[{"role": "user", "content": CODE}])
        completion = raw.parse()
        assert completion.choices[0].message.content == "Fallback answer." and completion.model == "tinyllama"
        assert raw.headers["x-router-route"] == "code" and raw.headers["x-router-expert"] == "zoomer"
        assert completion.model_extra["router"]["fallback_from"] == "professor"
    store.close()


def test_rate_limit_and_body_limit(backend, tmp_path):
    served, store = serve(backend.url, tmp_path, limits=Limits(api_per_minute=2, max_body_bytes=2000))
    with served:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
        client.models.list(), client.models.list()
        with pytest.raises(openai.RateLimitError):
            client.models.list()
        raw = httpx.post(served.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": "router", "messages": [{"role": "user", "content": "x" * 5000}]})
        assert raw.status_code == 413 and raw.json()["error"]["type"] == "request_too_large"
    store.close()


def test_route_endpoint_accepts_messages(client, gateway):
    auth = {"Authorization": f"Bearer {KEY}"}
    messages = [{"role": "user", "content": CODE}, {"role": "assistant", "content": "def f(): ..."},
                {"role": "user", "content": "Now make it shorter."}]
    body = httpx.post(gateway[0].url + "/v1/route", json={"messages": messages}, headers=auth).json()
    assert body["route"] == "code" and body["context"] == "follow-up: kept 'code' from turn 1"
    assert httpx.post(gateway[0].url + "/v1/route", json={"query": "x", "messages": messages},
                      headers=auth).status_code == 422


def test_a_local_workbench_without_keys_takes_any_key(backend, tmp_path):
    """OpenAI clients always send a key; on a loopback workbench with no keys configured it is not checked."""
    service = build_service(load_config([f"ollama.host={backend.url}", "ollama.read_timeout=5"]))
    store = PreferenceStore(tmp_path / "store.sqlite3")
    with Served(build_api(service, Accounts(), Limits(), Flywheel(store, service.router))) as served:
        local = openai.OpenAI(base_url=served.url + "/v1", api_key="anything", max_retries=0)
        assert "router" in [m.id for m in local.models.list().data]
    store.close()
