"""The fake backend speaks the real wire formats, so provider tests prove something about real servers."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from tests.support.backends import FakeLLMServer, split_pieces

CHAT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hello there"}]}


def test_split_pieces_joins_back():
    for text in ["", "one", "  leading and trailing  ", "a\nb\tc  d"]:
        assert "".join(split_pieces(text)) == text


def test_ollama_chat_is_chunked_ndjson(fake_backend):
    with httpx.stream("POST", f"{fake_backend.url}/api/chat", json={**CHAT, "stream": True}) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        assert r.headers["transfer-encoding"] == "chunked"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    *pieces, final = lines
    assert "".join(p["message"]["content"] for p in pieces) == "You said: hello there"
    assert all(p["done"] is False and p["message"]["role"] == "assistant" and p["created_at"] for p in pieces)
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    assert final["eval_count"] == len(pieces) and final["prompt_eval_count"] == 2
    assert final["total_duration"] == final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]


def test_the_official_client_reads_every_endpoint(fake_backend):
    with ollama.Client(host=fake_backend.url) as client:
        assert [m.model for m in client.list().models] == ["llama3.2:3b", "tinyllama:latest"]
        answer = client.chat(CHAT["model"], messages=CHAT["messages"])  # stream=False: one JSON object
        assert answer.done and answer.message.content == "You said: hello there"
        with pytest.raises(ollama.ResponseError) as info:
            client.chat("mistral", messages=CHAT["messages"])
    assert (info.value.status_code, info.value.error) == (404, 'model "mistral" not found, try pulling it first')
    assert httpx.get(f"{fake_backend.url}/api/version").json() == {"version": "0.6.8"}


def test_openai_chat_is_server_sent_events(fake_backend):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{fake_backend.openai_base_url}/chat/completions", json=body) as r:
        assert r.headers["content-type"] == "text/event-stream"
        data = [line.removeprefix("data: ") for line in r.iter_lines() if line]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "You said: hello there"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == len(split_pieces(text))


def test_openai_errors_and_models(fake_backend):
    models = httpx.get(f"{fake_backend.openai_base_url}/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["llama3.2:3b", "tinyllama:latest"]
    r = httpx.post(f"{fake_backend.openai_base_url}/chat/completions", json={**CHAT, "model": "gpt-4o"})
    assert r.status_code == 404 and r.json()["error"]["message"] == "The model `gpt-4o` does not exist."


def test_scripted_reply_knobs_and_recording():
    with FakeLLMServer(reply=lambda messages: messages[-1]["content"].upper()) as server:
        r = httpx.post(f"{server.url}/api/chat", json={**CHAT, "stream": False})
        assert r.json()["message"]["content"] == "HELLO THERE"
        server.configure(fail_status=500, fail_message="boom")
        assert httpx.post(f"{server.url}/api/chat", json=CHAT).json() == {"error": "boom"}
        assert [r.path for r in server.requests] == ["/api/chat", "/api/chat"]
        with pytest.raises(TypeError):
            server.configure(no_such_knob=1)


def test_stop_wakes_a_delayed_answer():
    with FakeLLMServer(first_chunk_delay=30) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/api/chat", json=CHAT, timeout=0.2)
    # leaving the block did not wait the 30 s out
