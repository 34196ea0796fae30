"""HTTP API served beside the workbench: POST /v1/route and GET /healthz."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict

from router.errors import InvalidQueryError
from router.service import ChatService


class RouteRequest(BaseModel):
    """Body of POST /v1/route."""

    model_config = ConfigDict(extra="forbid")
    query: str


def build_api(service: ChatService) -> FastAPI:
    """A FastAPI app with the routing endpoint and the health check; Gradio is mounted on it."""
    api = FastAPI(title="LLM router", docs_url="/docs", redoc_url=None)

    @api.post("/v1/route")
    def route(body: RouteRequest) -> dict:
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
            "routes": sorted(service.router.routes),
            "backend": {"reachable": status.reachable, "detail": status.detail, "models": dict(status.models)},
        }

    return api
