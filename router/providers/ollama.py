"""OllamaProvider: stream a chat answer from a local Ollama server through the official client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import ollama
from pydantic import ValidationError

from router.errors import ModelNotFound, ProviderError, ProviderTimeout, ProviderUnavailable, StreamInterrupted
from router.providers.base import BackendStatus, ProviderOptions, validate_options
from router.schema import Chunk, GenerationStats, Message


class OllamaOptions(ProviderOptions):
    """The Ollama runtime options this workbench lets a config set."""

    top_k: int | None = None
    num_predict: int | None = None
    num_ctx: int | None = None
    repeat_penalty: float | None = None
    min_p: float | None = None


# What the client and transport raise; ollama wraps only a refused connection, as ConnectionError.
_FAILURES = (httpx.HTTPError, ollama.ResponseError, ConnectionError, json.JSONDecodeError, ValidationError)
# A connection closed mid-answer, or the truncated last line it left behind.
_BROKEN_STREAM = (httpx.RemoteProtocolError, httpx.ReadError, json.JSONDecodeError, ValidationError)


def is_model_pulled(model: str, pulled: Iterable[str]) -> bool:
    """True when `model` is among `pulled`; a name without a tag means ':latest', as in Ollama.

    >>> is_model_pulled("tinyllama", ["tinyllama:latest", "llama3.2:3b"])
    True
    """
    wanted = _full_name(model)
    return any(_full_name(name) == wanted for name in pulled)


def _full_name(model: str) -> str:
    name = model.strip().casefold()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _ms(nanoseconds: int | None) -> float | None:
    return None if nanoseconds is None else nanoseconds / 1e6


class OllamaProvider:
    """Streams answers from one model of an Ollama server; every failure becomes a named ProviderError.

    `options` are Ollama runtime options (see OllamaOptions); options given to `stream` override them.
    `keep_alive` is how long Ollama keeps the model loaded after a call (for example "5m").
    """

    def __init__(
        self,
        model: str,
        host: str = "http://127.0.0.1:11434",
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        options: Mapping[str, Any] | None = None,
        keep_alive: str | None = None,
    ) -> None:
        self.model = model
        self.host = (host if "://" in host else f"http://{host}").rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.options = validate_options(OllamaOptions, options, "OllamaProvider")
        self.keep_alive = keep_alive
        self._client = ollama.Client(host=self.host, timeout=httpx.Timeout(read_timeout, connect=connect_timeout))

    def __repr__(self) -> str:
        return f"OllamaProvider(model={self.model!r}, host={self.host!r})"

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        """Yield the answer as it is generated; the last chunk has done=True and the stats.

        Options are checked here, before any request; the request goes out when iteration starts.
        """
        merged = {**self.options, **validate_options(OllamaOptions, options, "OllamaProvider")}
        payload = [{"role": m.role, "content": m.content} for m in messages]
        return self._generate(payload, merged)

    def health(self) -> BackendStatus:
        """Ask the server for its version and pulled models, waiting at most the connect timeout."""
        timeout = httpx.Timeout(self.connect_timeout)
        try:
            version = httpx.get(f"{self.host}/api/version", timeout=timeout).raise_for_status().json().get("version")
            with ollama.Client(host=self.host, timeout=timeout) as client:
                models = tuple(m.model for m in client.list().models if m.model)
        except _FAILURES as e:
            error = self._translate(e, partial=None)
            return BackendStatus(reachable=not isinstance(error, (ProviderUnavailable, ProviderTimeout)), error=str(error))
        return BackendStatus(reachable=True, version=version, models=models)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> OllamaProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _generate(self, payload: list[dict[str, str]], options: dict[str, Any]) -> Iterator[Chunk]:
        started = time.perf_counter()
        ttft_ms: float | None = None
        parts: list[str] = []
        try:
            responses = self._client.chat(
                self.model, messages=payload, stream=True, options=options or None, keep_alive=self.keep_alive
            )
            try:
                for response in responses:
                    text = response.message.content or ""
                    if text and ttft_ms is None:
                        ttft_ms = (time.perf_counter() - started) * 1000
                    if response.done:
                        yield Chunk(text, done=True, stats=self._stats(response, ttft_ms, started))
                        return
                    if text:
                        parts.append(text)
                        yield Chunk(text)
            finally:
                responses.close()  # release the connection when the caller stops early
        except _FAILURES as e:
            raise self._translate(e, partial="".join(parts)) from e
        raise StreamInterrupted(
            f"Ollama at {self.host} ended the answer without its final message after {len(''.join(parts))} characters. "
            "Retry; if it keeps happening, check the Ollama server log.",
            partial="".join(parts),
        )

    def _stats(self, final: ollama.ChatResponse, ttft_ms: float | None, started: float) -> GenerationStats:
        eval_s = (final.eval_duration or 0) / 1e9
        return GenerationStats(
            model=final.model or self.model,
            ttft_ms=ttft_ms,
            total_ms=(time.perf_counter() - started) * 1000,
            load_ms=_ms(final.load_duration),
            prompt_tokens=final.prompt_eval_count,
            output_tokens=final.eval_count,
            tokens_per_s=final.eval_count / eval_s if final.eval_count is not None and eval_s > 0 else None,
        )

    def _translate(self, e: Exception, partial: str | None) -> ProviderError:
        """Turn a client or transport error into the named error, with what to do next.

        `partial` is None outside a chat stream, else the answer text that arrived before `e`.
        """
        if isinstance(e, (httpx.ConnectError, ConnectionError)):
            return ProviderUnavailable(f"Ollama is not reachable at {self.host}. Start it with: ollama serve")
        if isinstance(e, httpx.ConnectTimeout):
            return ProviderTimeout(
                f"Ollama at {self.host} did not accept a connection within {self.connect_timeout:g} s (connect timeout). "
                "Check the host, or raise connect_timeout."
            )
        if isinstance(e, httpx.TimeoutException):
            got = f" after {len(partial)} characters" if partial else ""
            return ProviderTimeout(
                f"Ollama at {self.host} sent nothing for {self.read_timeout:g} s (read timeout){got} while model "
                f"'{self.model}' was answering. The model may still be loading: raise read_timeout or retry."
            )
        if isinstance(e, ollama.ResponseError):
            if e.status_code == 404 and partial is not None:
                return ModelNotFound(f"Model '{self.model}' is not pulled on {self.host}. Run: ollama pull {self.model}")
            if partial:
                return StreamInterrupted(f"Ollama at {self.host} failed mid-answer: {e.error}", partial=partial)
            status = f" (HTTP {e.status_code})" if e.status_code > 0 else ""
            return ProviderError(f"Ollama at {self.host} failed{status}: {e.error}")
        if isinstance(e, httpx.HTTPStatusError):
            return ProviderError(
                f"Ollama at {self.host} answered HTTP {e.response.status_code} for {e.request.url.path}. "
                "Check that the host is an Ollama server."
            )
        if partial is not None and isinstance(e, _BROKEN_STREAM):
            return StreamInterrupted(
                f"The stream from Ollama at {self.host} broke off after {len(partial)} characters ({e}). "
                "Retry; if it keeps happening, check the Ollama server log.",
                partial=partial,
            )
        return ProviderError(f"The request to Ollama at {self.host} failed: {type(e).__name__}: {e}")
