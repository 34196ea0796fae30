"""OpenAICompatProvider: stream from any OpenAI-compatible server (vLLM, llama.cpp, LM Studio) over httpx."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from router.errors import ModelNotFound, ProviderError, ProviderTimeout, ProviderUnavailable, StreamInterrupted
from router.providers.base import BackendStatus, ProviderOptions, validate_options
from router.schema import Chunk, GenerationStats, Message


class OpenAICompatOptions(ProviderOptions):
    """The chat-completions parameters this workbench lets a config set."""

    max_tokens: int | None = None


_SSE = {"Accept": "text/event-stream"}


def _error_text(response: httpx.Response) -> str:
    """The server's own error message: OpenAI nests it under error.message, vLLM puts it at the top."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.text.strip() or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class OpenAICompatProvider:
    """Streams answers from one model served behind `{base_url}/chat/completions`.

    `api_key` falls back to the OPENAI_API_KEY environment variable; local servers usually need none.
    Asks for token usage in the stream (stream_options.include_usage); servers that ignore it report no tokens.
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.options = validate_options(OpenAICompatOptions, options, "OpenAICompatProvider")
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(read_timeout, connect=connect_timeout), headers=headers)

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(model={self.model!r}, base_url={self.base_url!r})"  # never the key

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        """Yield the answer as it is generated; the last chunk has done=True and the stats.

        Options are checked here, before any request; the request goes out when iteration starts.
        """
        merged = {**self.options, **validate_options(OpenAICompatOptions, options, "OpenAICompatProvider")}
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **merged,
        }
        return self._generate(body)

    def health(self) -> BackendStatus:
        """List the served models with GET {base_url}/models, waiting at most the connect timeout."""
        try:
            response = self._http.get(f"{self.base_url}/models", timeout=httpx.Timeout(self.connect_timeout))
        except httpx.HTTPError as e:
            return BackendStatus(reachable=False, error=str(self._translate(e, partial=None)))
        if response.status_code == 404:
            error = f"{self.base_url}/models is not found (HTTP 404). Check that base_url ends in /v1."
            return BackendStatus(reachable=True, error=error)
        if response.is_error:
            return BackendStatus(reachable=True, error=str(self._status_error(response, in_chat=False)))
        try:
            models = tuple(str(m["id"]) for m in response.json()["data"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            error = f"{self.base_url}/models is not an OpenAI model list ({type(e).__name__}: {e}). Check base_url."
            return BackendStatus(reachable=True, error=error)
        return BackendStatus(reachable=True, models=models)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> OpenAICompatProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _generate(self, body: dict[str, Any]) -> Iterator[Chunk]:
        started = time.perf_counter()
        ttft_ms: float | None = None
        parts: list[str] = []
        usage: dict[str, Any] = {}
        model = self.model
        finished = False
        try:
            with self._http.stream("POST", f"{self.base_url}/chat/completions", json=body, headers=_SSE) as r:
                if r.is_error:
                    r.read()
                    raise self._status_error(r, in_chat=True)
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, ": keep-alive" comments, "event:" names
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    event = json.loads(data)
                    if event.get("error"):
                        raise self._stream_error(event, "".join(parts))
                    model = event.get("model") or model
                    usage = event.get("usage") or usage
                    for choice in (event.get("choices") or [])[:1]:
                        finished = finished or bool(choice.get("finish_reason"))
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            ttft_ms = ttft_ms if ttft_ms is not None else (time.perf_counter() - started) * 1000
                            parts.append(text)
                            yield Chunk(text)
        except (httpx.HTTPError, json.JSONDecodeError, AttributeError) as e:
            raise self._translate(e, partial="".join(parts)) from e
        if not finished:
            raise StreamInterrupted(
                f"The stream from {self.base_url} ended without [DONE] after {len(''.join(parts))} characters. "
                "Retry; if it keeps happening, check the server log.",
                partial="".join(parts),
            )
        yield Chunk("", done=True, stats=self._stats(model, usage, ttft_ms, started))

    def _stats(self, model: str, usage: dict[str, Any], ttft_ms: float | None, started: float) -> GenerationStats:
        total_ms = (time.perf_counter() - started) * 1000
        output_tokens = usage.get("completion_tokens")
        # No server-side eval time here: measure decoding as first token to last.
        decode_s = (total_ms - ttft_ms) / 1000 if ttft_ms is not None else 0.0
        return GenerationStats(
            model=model,
            ttft_ms=ttft_ms,
            total_ms=total_ms,
            prompt_tokens=usage.get("prompt_tokens"),
            output_tokens=output_tokens,
            tokens_per_s=output_tokens / decode_s if output_tokens and decode_s > 0 else None,
        )

    def _status_error(self, response: httpx.Response, in_chat: bool) -> ProviderError:
        text, code = _error_text(response), response.status_code
        if code == 404 and in_chat:
            return ModelNotFound(
                f"Model '{self.model}' is not served at {self.base_url} ({text}). "
                f"List the served models with GET {self.base_url}/models; check that base_url ends in /v1."
            )
        if code in (401, 403):
            return ProviderError(
                f"{self.base_url} refused the API key (HTTP {code}: {text}). Set OPENAI_API_KEY or api_key."
            )
        return ProviderError(f"The server at {self.base_url} failed (HTTP {code}): {text}")

    def _stream_error(self, event: dict[str, Any], partial: str) -> ProviderError:
        error = event["error"]
        text = error.get("message", error) if isinstance(error, dict) else error
        if partial:
            return StreamInterrupted(f"The server at {self.base_url} failed mid-answer: {text}", partial=partial)
        return ProviderError(f"The server at {self.base_url} failed: {text}")

    def _translate(self, e: Exception, partial: str | None) -> ProviderError:
        """Turn a transport or parse error into the named error; `partial` is None outside a chat stream."""
        if isinstance(e, httpx.ConnectError):
            return ProviderUnavailable(
                f"No OpenAI-compatible server is reachable at {self.base_url}. "
                "Start it (for example: vllm serve MODEL, llama-server, or LM Studio's server) or fix base_url."
            )
        if isinstance(e, httpx.ConnectTimeout):
            return ProviderTimeout(
                f"{self.base_url} did not accept a connection within {self.connect_timeout:g} s (connect timeout). "
                "Check base_url, or raise connect_timeout."
            )
        if isinstance(e, httpx.TimeoutException):
            got = f" after {len(partial)} characters" if partial else ""
            return ProviderTimeout(
                f"{self.base_url} sent nothing for {self.read_timeout:g} s (read timeout){got} while model "
                f"'{self.model}' was answering. Raise read_timeout or retry."
            )
        if partial is not None and isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, json.JSONDecodeError)):
            return StreamInterrupted(
                f"The stream from {self.base_url} broke off after {len(partial)} characters ({e}). "
                "Retry; if it keeps happening, check the server log.",
                partial=partial,
            )
        return ProviderError(f"The request to {self.base_url} failed: {type(e).__name__}: {e}")
