"""HTTP API served beside the workbench: POST /v1/route, the OpenAI-compatible gateway and GET /healthz.

Callers send `Authorization: Bearer <key>` with a key from WORKBENCH_API_KEYS; without one they are
whoever the mode makes an anonymous caller (the local admin, a public demo's visitor, or nobody).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService
from ui.auth import Accounts, Principal
from ui.gateway import add_gateway
from ui.limits import Limits, RateLimiter, wait_message

log = logging.getLogger(__name__)


class RouteMessage(BaseModel):
    """One message of a conversation: {"role", "content"}."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class RouteRequest(BaseModel):
    """Body of POST /v1/route: a `query`, or `messages` whose last one is the user's message to route.

    With `messages`, the earlier ones are its conversation: a follow-up keeps the conversation's route.
    """

    model_config = ConfigDict(extra="forbid")
    query: str | None = None
    messages: list[RouteMessage] | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_of(self) -> RouteRequest:
        if (self.query is None) == (self.messages is None):
            raise ValueError("send either 'query' or 'messages'")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("the last of 'messages' must be the user's message to route")
        return self


def build_api(service: ChatService, accounts: Accounts | None = None, limits: Limits | None = None,
              flywheel: Any = None) -> FastAPI:
    """A FastAPI app with the routing endpoint, the OpenAI-compatible gateway (ui.gateway) and the health
    check; Gradio is mounted on it. `flywheel` stores every gateway turn and /v1/route decision as a
    routing event."""
    accounts = accounts or Accounts()
    limiter = RateLimiter((limits or Limits()).api_per_minute)
    api = FastAPI(title="LLM router", docs_url="/docs", redoc_url=None)

    def principal(request: Request) -> Principal:
        """The caller of a /v1 endpoint, after the key check and the rate limit.

        A local workbench without keys ignores the key (OpenAI clients always send one): its anonymous
        caller is already the person at the keyboard.
        """
        client = request.client.host if request.client else ""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip() and (accounts.has_keys or accounts.mode != "local"):
            who = accounts.for_key(key.strip(), client)
            if who is None:
                raise HTTPException(401, "Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
        else:
            who = accounts.anonymous(client=client)
            if who is None:
                raise HTTPException(401, "Send Authorization: Bearer <key> with a key from WORKBENCH_API_KEYS.",
                                    headers={"WWW-Authenticate": "Bearer"})
        if wait := limiter.retry_after(who.client):
            raise HTTPException(429, wait_message(wait), headers={"Retry-After": str(int(wait) + 1)})
        return who

    @api.post("/v1/route")
    def route(body: RouteRequest, later: BackgroundTasks, who: Principal = Depends(principal)) -> dict:
        """The routing decision for one query (or the last of `messages`), as `python -m router route` prints it.

        The decision is stored as a routing event after the response is sent, so the inbox sees this traffic.
        """
        try:
            if body.messages is None:
                query, decision = body.query, service.route(body.query)
            else:
                *history, last = [Message(m.role, m.content) for m in body.messages]
                query, decision = last.content, service.route(last.content, history=history)
        except InvalidQueryError as e:
            raise HTTPException(status_code=422, detail=str(e)) from e
        if flywheel is not None:
            later.add_task(_record_route, flywheel, query, decision, who.name)
        return decision.to_dict()

    add_gateway(api, service, principal, flywheel)

    @api.get("/healthz")
    def healthz() -> dict:
        """Liveness of the app and reachability of the model backend."""
        status = service.status()
        return {
            "status": "ok",
            "mode": accounts.mode,
            "routes": sorted(service.router.routes),
            "backend": {"reachable": status.reachable, "detail": status.detail, "models": dict(status.models)},
        }

    return api


def _record_route(flywheel: Any, query: str, decision: RouteDecision, user: str) -> None:
    """Store one /v1/route decision (the store clips the query); a storage failure is only logged."""
    try:
        flywheel.record_route(query, decision, user=user)
    except StoreError as e:  # the decision has been sent; a lost log line must not fail it
        log.warning("/v1/route decision not stored: %s", e)
