"""A real HTTP server on 127.0.0.1 that speaks Ollama's API and the OpenAI chat API, scripted by tests.

For tests only: router/ and ui/ never import it. Use it as a context manager or through the fixtures:

    with FakeLLMServer(reply="Hi there", chunk_delay=0.01) as server:
        OllamaProvider("llama3.2:3b", host=server.url)              # /api/...
        OpenAICompatProvider("llama3.2:3b", base_url=server.openai_base_url)  # /v1/...

Knobs live in `server.script` (a Script) and may be changed between requests with `server.configure(...)`.
The pytest fixtures for these servers are in tests/support/fixtures.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

CutMode = Literal["close", "half_line", "no_done"]


@dataclass
class Script:
    """What the fake backend does; every field is a knob a test may set."""

    models: tuple[str, ...] = ("llama3.2:3b", "tinyllama:latest")  # pulled (Ollama) / served (OpenAI)
    # The answer: fixed text, a function of the request's messages, or None to echo the last user message.
    reply: str | Callable[[list[dict[str, Any]]], str] | None = None
    first_chunk_delay: float = 0.0  # seconds before the response headers and first chunk (model load)
    chunk_delay: float = 0.0  # seconds between answer chunks
    fail_status: int | None = None  # answer every chat request with this HTTP status and fail_message
    fail_message: str = "llama runner process has terminated: signal: killed"
    cut_after: int | None = None  # break the stream after this many answer chunks, as cut_mode says
    # close: drop the socket without the terminating chunk; half_line: send half a line, then end the body;
    # no_done: end the body cleanly but without the final done message / [DONE].
    cut_mode: CutMode = "close"
    load_duration_ns: int = 250_000_000
    eval_ns_per_token: int = 20_000_000  # 50 tokens/s
    version: str = "0.6.8"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


def split_pieces(text: str) -> list[str]:
    """Split text into word pieces that join back to it, like tokens streamed by a model.

    >>> split_pieces("Hello big world")
    ['Hello ', 'big ', 'world']
    """
    return re.findall(r"\S+\s*|\s+", text)


def full_model_name(name: str) -> str:
    """Ollama's reading of a model name: no tag means ':latest'."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Stopped(Exception):
    """The server is shutting down; abandon the response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the real servers
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop_connection(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.server.backend.stopping.wait(seconds):
            raise _Stopped

    # -- routing --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        backend = self.server.backend
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        backend.requests.append(RecordedRequest(method, self.path, body, headers))
        routes = {
            ("GET", "/api/version"): lambda: self._json(200, {"version": backend.script.version}),
            ("GET", "/api/tags"): self._ollama_tags,
            ("POST", "/api/chat"): lambda: self._ollama_chat(body),
            ("GET", "/v1/models"): self._openai_models,
            ("POST", "/v1/chat/completions"): lambda: self._openai_chat(body),
        }
        handler = routes.get((method, self.path.split("?")[0]), lambda: self._text(404, "404 page not found"))
        try:
            handler()
        except (_Stopped, BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up, or the server is stopping

    def _answer(self, messages: list[dict[str, Any]]) -> tuple[str, int]:
        """The scripted reply, and the prompt's token count (one token a word)."""
        reply = self.server.backend.script.reply
        if callable(reply):
            text = reply(messages)
        elif reply is not None:
            text = reply
        else:
            last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            text = f"You said: {last}"
        return text, max(1, sum(len(str(m.get("content", "")).split()) for m in messages))

    # -- Ollama ---------------------------------------------------------------------------------
    def _ollama_tags(self) -> None:
        models = []
        for name in self.server.backend.script.models:
            models.append({
                "name": name,
                "model": name,
                "modified_at": "2025-05-01T10:00:00.000000+02:00",
                "size": 2_019_393_189,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "3.2B",
                    "quantization_level": "Q4_K_M",
                },
            })
        self._json(200, {"models": models})

    def _ollama_chat(self, body: Any) -> None:
        script = self.server.backend.script
        if not isinstance(body, dict) or not body.get("model"):
            return self._json(400, {"error": "model is required"})
        model = body["model"]
        if full_model_name(model) not in {full_model_name(m) for m in script.models}:
            return self._json(404, {"error": f'model "{model}" not found, try pulling it first'})
        self._sleep(script.first_chunk_delay)
        if script.fail_status:
            return self._json(script.fail_status, {"error": script.fail_message})
        text, prompt_tokens = self._answer(body.get("messages") or [])
        pieces = split_pieces(text)
        eval_ns = len(pieces) * script.eval_ns_per_token
        final = {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": script.load_duration_ns + prompt_tokens * 1_000_000 + eval_ns,
            "load_duration": script.load_duration_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_tokens * 1_000_000,
            "eval_count": len(pieces),
            "eval_duration": eval_ns,
        }
        if not body.get("stream", True):  # Ollama streams unless told not to
            return self._json(200, {**final, "message": {"role": "assistant", "content": text}})
        lines = [
            json.dumps({"model": model, "created_at": _now(), "message": {"role": "assistant", "content": p}, "done": False})
            for p in pieces
        ]
        self._stream("application/x-ndjson", [], [line + "\n" for line in lines], json.dumps(final) + "\n")

    def _stream(self, content_type: str, preamble: list[str], events: list[str], ending: str) -> None:
        """Send the preamble, then the answer events one chunk each, then the ending; break off as scripted."""
        cut_after = self.server.backend.script.cut_after
        self._start_chunked(content_type)
        for event in preamble:
            self._chunk(event.encode())
        for i, event in enumerate(events):
            if i == cut_after:
                return self._cut(event)
            if i:
                self._sleep(self.server.backend.script.chunk_delay)
            self._chunk(event.encode())
        if cut_after is not None and cut_after >= len(events):
            return self._cut(ending)
        self._chunk(ending.encode())
        self._end_chunked()

    def _cut(self, next_event: str) -> None:
        mode = self.server.backend.script.cut_mode
        if mode == "close":
            return self._drop_connection()
        if mode == "half_line":
            self._chunk(next_event[: max(1, len(next_event) // 2)].encode())
        self._end_chunked()

    # -- OpenAI-compatible ----------------------------------------------------------------------
    def _openai_models(self) -> None:
        models = self.server.backend.script.models
        data = [{"id": m, "object": "model", "created": 1_746_000_000, "owned_by": "fake"} for m in models]
        self._json(200, {"object": "list", "data": data})

    def _openai_error(self, status: int, message: str, kind: str) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

    def _openai_chat(self, body: Any) -> None:
        script = self.server.backend.script
        if not isinstance(body, dict) or not body.get("model"):
            return self._openai_error(400, "model is required", "BadRequestError")
        model = body["model"]
        if model not in script.models:
            return self._openai_error(404, f"The model `{model}` does not exist.", "NotFoundError")
        self._sleep(script.first_chunk_delay)
        if script.fail_status:
            return self._openai_error(script.fail_status, script.fail_message, "InternalServerError")
        text, prompt_tokens = self._answer(body.get("messages") or [])
        pieces = split_pieces(text)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces)}
        usage["total_tokens"] = prompt_tokens + len(pieces)
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})

        def event(delta: dict[str, Any], finish: str | None = None) -> str:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': choices})}\n\n"

        preamble = [event({"role": "assistant", "content": ""})]
        ending = event({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            ending += f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n"
        self._stream("text/event-stream", preamble, [event({"content": p}) for p in pieces], ending + "data: [DONE]\n\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer is part of the tests, not a failure


class FakeLLMServer:
    """A threaded HTTP server on a free port of 127.0.0.1; start() / stop() or use `with`.

    Keyword arguments are Script knobs. `requests` records every request received, in order.
    """

    def __init__(self, **knobs: Any) -> None:
        self.script = Script(**knobs)
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def configure(self, **knobs: Any) -> FakeLLMServer:
        """Change knobs of the script (an unknown name is a TypeError); returns self."""
        self.script = replace(self.script, **knobs)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The Ollama host, for example http://127.0.0.1:54321."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FakeLLMServer:
        self.stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.backend = self
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.stopping.set()  # wakes handlers that sleep on a delay
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """Yield a URL whose connections hang: its listen backlog is full and it never accepts (Linux)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for s in fillers:
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
            yield f"http://127.0.0.1:{port}"
        finally:
            for s in fillers:
                s.close()
