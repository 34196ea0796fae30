"""HTTP API served beside the workbench: POST /v1/route and GET /healthz.

Callers send `Authorization: Bearer <key>` with a key from WORKBENCH_API_KEYS; without one they are
whoever the mode makes an anonymous caller (the local admin, a public demo's visitor, or nobody).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from router.errors import InvalidQueryError
from router.service import ChatService
from ui.auth import Accounts, Principal
from ui.limits import Limits, RateLimiter, wait_message


class RouteRequest(BaseModel):
    """Body of POST /v1/route."""

    model_config = ConfigDict(extra="forbid")
    query: str


def build_api(service: ChatService, accounts: Accounts | None = None, limits: Limits | None = None) -> FastAPI:
    """A FastAPI app with the routing endpoint and the health check; Gradio is mounted on it."""
    accounts = accounts or Accounts()
    limiter = RateLimiter((limits or Limits()).api_per_minute)
    api = FastAPI(title="LLM router", docs_url="/docs", redoc_url=None)

    def principal(request: Request) -> Principal:
        """The caller of a /v1 endpoint, after the key check and the rate limit."""
        client = request.client.host if request.client else ""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
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
    def route(body: RouteRequest, _: Principal = Depends(principal)) -> dict:
        """The routing decision for one query, as `python -m router route` prints it."""
        try:
            return service.route(body.query).to_dict()
        except InvalidQueryError as e:
            raise HTTPException(status_code=422, detail=str(e)) from e

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
