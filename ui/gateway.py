"""An OpenAI-compatible gateway on the workbench's server: POST /v1/chat/completions and GET /v1/models.

`model: "router"` routes the conversation (follow-ups keep their route) and answers with the chosen
expert, falling back to the next expert when it fails before its first token; `model: "<expert>"`
skips routing. The decision travels in x-router-route / x-router-tier / x-router-expert headers and a
`router` object in the body (and in the first stream chunk). Errors use OpenAI's error format.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService, FallingBack, Finished, Routed, Token
from ui.auth import Principal

log = logging.getLogger(__name__)
ROUTER_MODEL = "router"
PATHS = ("/v1/chat/completions", "/v1/models")
MAX_MESSAGES = 500  # per request; the body limit bounds their size
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error",
                502: "api_error", 504: "timeout_error"}


def _decision_headers(decision: Any) -> dict[str, str]:
    """The x-router-* headers of a decision, for an error after routing (the router did decide)."""
    if decision is None:
        return {}
    return {"x-router-route": decision.route, "x-router-tier": decision.tier, "x-router-expert": decision.expert}


class GatewayError(Exception):
    """An error answered in OpenAI's format: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": _ERROR_TYPES.get(self.status, "api_error"),
                          "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation, as OpenAI clients send it."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            if any(p.type != "text" for p in self.content):
                raise GatewayError(400, "Only text content parts are supported.", "unsupported_content", "messages")
            return "".join(p.text or "" for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """Body of POST /v1/chat/completions; sampling settings are accepted and left to the expert's config."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1


def add_gateway(api: FastAPI, service: ChatService, principal: Callable[[Request], Principal],
                flywheel: Any = None) -> None:
    """Register the OpenAI-compatible endpoints and their error format on `api`."""

    def caller(request: Request) -> Principal:
        try:
            return principal(request)
        except HTTPException as e:
            raise GatewayError(e.status_code, str(e.detail), "invalid_api_key" if e.status_code == 401 else
                               "rate_limit_exceeded" if e.status_code == 429 else None,
                               headers=dict(e.headers or {})) from None

    @api.exception_handler(GatewayError)
    async def gateway_error(_: Request, e: GatewayError) -> JSONResponse:
        return e.response()

    default_validation = api.exception_handlers.get(RequestValidationError)

    @api.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, e: RequestValidationError):
        if request.url.path not in PATHS:
            from fastapi.exception_handlers import request_validation_exception_handler
            return await (default_validation or request_validation_exception_handler)(request, e)
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return GatewayError(400, f"Invalid request: {where or 'body'}: {first.get('msg', 'invalid')}.",
                            "invalid_request", where).response()

    @api.get("/v1/models")
    def models(_: Principal = Depends(caller)) -> dict:
        """`router` and every expert, as OpenAI's model list."""
        created = int(time.time())
        names = [ROUTER_MODEL, *service.experts]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": created,
                                            "owned_by": "llm-router"} for n in names]}

    @api.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, who: Principal = Depends(caller)):
        """A chat completion from the routed (or named) expert, whole or as Server-Sent Events."""
        query, history = _conversation(body)
        if body.model != ROUTER_MODEL and body.model not in service.experts:
            raise GatewayError(404, f"The model '{body.model}' does not exist. Available: "
                               f"{', '.join([ROUTER_MODEL, *service.experts])}.", "model_not_found", "model")
        if body.n != 1:
            raise GatewayError(400, "Only n=1 is supported.", "unsupported_parameter", "n")
        events = _events(service, body.model, query, history)
        # Pull events up to the first piece of the answer (routing and any fallback happen there), so that
        # a turn no expert answered is an HTTP error, not a stream that starts and fails.
        head = await run_in_threadpool(_until_answer, events)
        decision = next((e.decision for e in head if isinstance(e, Routed)), None)
        done = next((e for e in head if isinstance(e, Finished)), None)
        if done is not None and (done.error and not done.answer):
            _record(flywheel, query, decision, done, who)
            raise GatewayError(504 if done.timed_out else 502, done.error.replace("\n", "; "),
                               "timeout" if done.timed_out else "backend_error", headers=_decision_headers(decision))
        expert = service.experts[body.model if body.model != ROUTER_MODEL else decision.expert]  # type: ignore[union-attr]
        completion = Completion(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), decision, expert.name,
                                expert.model)
        info = completion.router_info(head)
        headers = completion.headers()
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = completion.stream(info, head, events, usage, lambda d: _record(flywheel, query, decision, d, who))
            return StreamingResponse(iterate_in_threadpool(chunks), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        rest = await run_in_threadpool(list, events)
        done = next(e for e in [*head, *rest] if isinstance(e, Finished))
        _record(flywheel, query, decision, done, who)
        if done.error:
            raise GatewayError(504 if done.timed_out else 502, f"The answer broke off: {done.error}",
                               "incomplete_answer")
        return JSONResponse(completion.whole(done, info), headers=headers)


def _conversation(body: ChatRequest) -> tuple[str, list[Message]]:
    """The last user message (routed and answered) and the messages before it."""
    if len(body.messages) > MAX_MESSAGES:
        raise GatewayError(400, f"At most {MAX_MESSAGES} messages per request.", "too_many_messages", "messages")
    *before, last = body.messages
    if last.role != "user" or not last.text().strip():
        raise GatewayError(400, "The last message must be a non-empty user message.", "invalid_messages", "messages")
    role = {"developer": "system", "tool": "user"}
    history = [Message(role.get(m.role, m.role), m.text()) for m in before if m.text().strip()]  # type: ignore[arg-type]
    return last.text(), history


def _events(service: ChatService, model: str, query: str, history: list[Message]) -> Iterator[Any]:
    try:
        if model == ROUTER_MODEL:
            yield from service.chat(query, history)
        else:
            yield from service.ask(model, query, history)
    except InvalidQueryError as e:
        raise GatewayError(400, str(e), "invalid_query", "messages") from e


def _until_answer(events: Iterator[Any]) -> list[Any]:
    head = []
    for event in events:
        head.append(event)
        if isinstance(event, (Token, Finished)):
            break
    return head


class Completion:
    """One completion's id, time, decision and expert, rendered as OpenAI objects."""

    def __init__(self, id: str, created: int, decision: RouteDecision | None, expert: str, model: str) -> None:
        self.id, self.created, self.decision, self.expert, self.model = id, created, decision, expert, model

    def router_info(self, events: list[Any]) -> dict[str, Any]:
        """The `router` object: the decision, and the expert that answers (after any fallback)."""
        info: dict[str, Any] = {"routed": self.decision is not None, "expert": self.expert}
        for e in events:
            if isinstance(e, FallingBack):
                info["fallback_from"], self.expert, self.model = e.failed, e.expert, e.model
                info["expert"] = e.expert
        if self.decision is not None:
            d = self.decision
            info.update(route=d.route, tier=d.tier, score=d.score, margin=d.margin, context=d.context,
                        reason=d.reason, router_ms=round(d.timings.total_us / 1000, 3))
        info["model"] = self.model
        return info

    def headers(self) -> dict[str, str]:
        """The decision in x-router-* headers; x-router-expert names the expert that answers."""
        if self.decision is None:
            return {"x-router-expert": self.expert}
        return {"x-router-route": self.decision.route, "x-router-tier": self.decision.tier,
                "x-router-expert": self.expert}

    def whole(self, done: Finished, info: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": done.model or self.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": done.answer, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": _usage(done), "router": info}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "system_fingerprint": None,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def stream(self, info: dict[str, Any], head: list[Any], events: Iterator[Any], usage: bool,
               record: Callable[[Finished], None]) -> Iterator[str]:
        """SSE lines: a first chunk with the role and the `router` object, the text, the finish, [DONE]."""
        yield self._chunk({"role": "assistant", "content": "", "refusal": None}, router=info)
        done = None
        for event in [*head, *events]:
            if isinstance(event, Token):
                yield self._chunk({"content": event.text})
            elif isinstance(event, Finished):
                done = event
        if done is not None:
            record(done)
        if done is None or done.error:  # the stream broke off after text was sent: say so, as OpenAI does
            error = GatewayError(504 if done is not None and done.timed_out else 502,
                                 f"The answer broke off: {done.error if done else 'no end of stream'}",
                                 "incomplete_answer")
            yield f"data: {json.dumps(error.body(), ensure_ascii=False)}\n\n"
            return
        yield self._chunk({}, "stop")
        if usage:
            chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                     "system_fingerprint": None, "choices": [], "usage": _usage(done)}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


def _usage(done: Finished) -> dict[str, int]:
    stats = done.stats
    prompt = (stats.prompt_tokens if stats else None) or 0
    output = (stats.output_tokens if stats else None) or 0
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


def _record(flywheel: Any, query: str, decision: RouteDecision | None, done: Finished, who: Principal) -> None:
    """Store a routed gateway turn as a routing event, like a chat turn; a storage failure is only logged."""
    if flywheel is None or decision is None:
        return
    try:
        flywheel.record_turn(query, decision, done, user=who.name)
    except StoreError as e:  # the answer has been given; a lost log line must not fail it
        log.warning("Gateway turn not stored: %s", e)
