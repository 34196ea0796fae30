"""Bounds on what a visitor can make the server do: body sizes, request rates, and what the page may fetch.

All are enforced on the server, so a client that skips the browser meets them too.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """The `limits:` config section: sizes and per-user rates."""

    max_body_bytes: int = 1_000_000     # request bodies (413 beyond); file uploads have max_upload_bytes
    max_upload_bytes: int = 5_000_000   # one uploaded file
    max_stored_chars: int = 20_000      # prompt, query and answer text kept per record
    chat_per_minute: float = 20         # chat and compare turns per user (per address for visitors)
    api_per_minute: float = 120         # /v1/* requests per key (per address without one)
    playground_lines: int = 100         # queries routed per playground call

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Limits:
        return cls(**dict(values or {}))


class RateLimiter:
    """A token bucket per client: `per_minute` events a minute, in bursts of up to `burst`."""

    def __init__(self, per_minute: float, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Take one token for `client`: 0.0 if allowed, else the seconds until one is free."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 600}
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


def wait_message(seconds: float) -> str:
    """What a rate-limited user reads.

    >>> wait_message(2.2)
    'Too many requests: wait 3 s and try again.'
    """
    return f"Too many requests: wait {math.ceil(seconds)} s and try again."


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, before the app reads them.

    Paths ending in `/upload` (Gradio's file uploads) are left to Gradio's own `max_file_size`.
    Bodies without a Content-Length are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = refused = False

        async def counted() -> dict:
            # Past the limit, answer 413 here and tell the app the client left: an exception would be
            # caught by the framework's body parsing and turned into a 400.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await _too_large(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app answers after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)


async def _too_large(send: Callable, max_bytes: int) -> None:
    body = json.dumps({"error": {"message": f"Request body over {max_bytes:,} bytes (limits.max_body_bytes).",
                                 "type": "request_too_large", "param": None,
                                 "code": "request_too_large"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class NoUploads:
    """ASGI middleware: refuse file uploads to the Blocks mounted at `root` (an open demo's anonymous visitors).

    Gradio's upload route takes files before any handler runs; on the open mount of a public demo no
    visitor needs it (admins upload through /team/, which requires a login).
    """

    def __init__(self, app: ASGIApp, root: str = "/") -> None:
        self.app, self.path = app, root.rstrip("/") + "/gradio_api/upload"

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == self.path:
            body = b'{"error": "Uploads need a signed-in admin: sign in at /team/."}'
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


# Model answers are shown as Markdown; the page must not fetch images or media from other hosts
# (a tracking pixel in an answer would tell a third party who read it).
CONTENT_SECURITY_POLICY = "img-src 'self' data: blob:; media-src 'self' data: blob:; frame-ancestors *"


class SecurityHeaders:
    """ASGI middleware: a Content-Security-Policy limiting images and media to this server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
