"""The workbench: compose the config, build the services, serve Gradio plus the REST API.

    python app.py [key=value ...]     e.g. python app.py app.port=7861 ollama.host=http://127.0.0.1:11500
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import gradio as gr
from fastapi import FastAPI
from omegaconf import OmegaConf

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore, StoreError
from router.config import build_service, load_config
from router.errors import RouterError
from ui import TITLE, build_demo
from ui.api import build_api

log = logging.getLogger("app")


def open_flywheel(cfg, service) -> tuple[Flywheel | None, str]:
    """The preference store and flywheel, or None and the reason: the chat works without them."""
    try:
        store = PreferenceStore(cfg.store.path)
        flywheel = Flywheel(store, service.router)  # the store stamps records with the app version
        restored = flywheel.restore()
    except StoreError as e:
        log.warning("Preference store unavailable: %s", e)
        return None, str(e)
    log.info("Preference store %s; %d routing corrections in use", cfg.store.path, restored)
    return flywheel, ""


def build_app(overrides: Sequence[str] = ()) -> tuple[FastAPI, object]:
    """The FastAPI app (REST endpoints, Gradio mounted at /) and the composed config."""
    cfg = load_config(overrides)
    service = build_service(cfg)
    flywheel, problem = open_flywheel(cfg, service)
    demo = build_demo(service, flywheel, cfg.app.concurrency, problem, OmegaConf.to_container(cfg.benchmarks))
    app = gr.mount_gradio_app(build_api(service), demo, path="/", server_name=cfg.app.host,
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
