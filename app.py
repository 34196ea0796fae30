"""The workbench: compose the config, build the services, serve Gradio plus the REST API.

    python app.py [key=value ...]     e.g. python app.py app.port=7861 ollama.host=http://127.0.0.1:11500
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import gradio as gr
from fastapi import FastAPI

from router.config import build_service, load_config
from router.errors import RouterError
from ui import TITLE, build_demo
from ui.api import build_api


def build_app(overrides: Sequence[str] = ()) -> tuple[FastAPI, object]:
    """The FastAPI app (REST endpoints, Gradio mounted at /) and the composed config."""
    cfg = load_config(overrides)
    service = build_service(cfg)
    api = build_api(service)
    app = gr.mount_gradio_app(api, build_demo(service, cfg.app.concurrency), path="/", server_name=cfg.app.host,
                              server_port=cfg.app.port, footer_links=["api"])
    return app, cfg


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app, cfg = build_app(sys.argv[1:] if argv is None else argv)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{TITLE}: http://{cfg.app.host}:{cfg.app.port}  (REST: POST /v1/route, GET /healthz)", flush=True)
    uvicorn.run(app, host=cfg.app.host, port=cfg.app.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
