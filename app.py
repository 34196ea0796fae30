"""The workbench: compose the config, build the services, serve Gradio plus the REST API.

    python app.py [key=value ...]     e.g. python app.py app.port=7861 ollama.host=http://127.0.0.1:11500
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

import gradio as gr
from fastapi import FastAPI
from omegaconf import OmegaConf

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore, StoreError
from forensics.store_sync import ReplicaSync
from router.config import build_service, load_config, router_choice
from router.errors import RouterError
from ui import LOOK, TITLE, build_demo
from ui.api import build_api
from ui.auth import Accounts
from ui.limits import BodyLimit, Limits, NoUploads, RateLimiter, SecurityHeaders

log = logging.getLogger("app")


def open_flywheel(cfg, service) -> tuple[Flywheel | None, str]:
    """The preference store and flywheel, or None and the reason: the chat works without them.

    A background thread keeps the router in step with corrections other replicas make in the same store.
    """
    try:
        store = PreferenceStore(cfg.store.url, max_text_chars=cfg.limits.max_stored_chars,
                                pool_size=cfg.store.pool_size)
        flywheel = Flywheel(store, service.router)  # the store stamps records with the app version
        restored = flywheel.restore()
        ReplicaSync(flywheel, cfg.store.sync_seconds).start()
    except StoreError as e:
        log.warning("Preference store unavailable: %s", e)
        return None, str(e)
    log.info("Preference store %s; %d routing corrections in use; other replicas' corrections within %s s",
             store.location, restored, cfg.store.sync_seconds)
    return flywheel, ""


def build_app(overrides: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> tuple[FastAPI, object]:
    """The FastAPI app (REST endpoints, Gradio mounted at /) and the composed config.

    Users and API keys come from `environ` (WORKBENCH_USERS, WORKBENCH_API_KEYS). With users and
    `app.public_demo`, the open demo is at / and users sign in at /team/.
    """
    cfg = load_config(overrides)
    accounts = Accounts.from_env(os.environ if environ is None else environ, cfg.app.host, cfg.app.public_demo)
    limits = Limits.from_mapping(OmegaConf.to_container(cfg.limits))
    service = build_service(cfg)
    flywheel, problem = open_flywheel(cfg, service)
    chat_limiter = RateLimiter(limits.chat_per_minute)  # one budget per user across every mounted Blocks

    def demo() -> object:
        bench = {**OmegaConf.to_container(cfg.benchmarks), "router": router_choice(overrides)}  # what it calibrates
        return build_demo(service, flywheel, cfg.app.concurrency, problem, bench,
                          accounts, limits, chat_limiter, OmegaConf.to_container(cfg.inbox))

    app = build_api(service, accounts, limits, flywheel)
    mount = dict(server_name=cfg.app.host, server_port=cfg.app.port, footer_links=["api"],
                 max_file_size=limits.max_upload_bytes, **LOOK)
    login = dict(auth=accounts.check_password, auth_message=f"{TITLE}: sign in with the account your admin gave you.")
    if accounts.login_path == "/team/":  # before "/", which would otherwise match /team/ too
        app = gr.mount_gradio_app(app, demo(), path="/team", **mount, **login)
    app = gr.mount_gradio_app(app, demo(), path="/", **mount, **(login if accounts.login_path == "/" else {}))
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if accounts.mode == "public":
        app.add_middleware(NoUploads, root="/")
    app.add_middleware(SecurityHeaders)
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
    uvicorn.run(app, host=cfg.app.host, port=cfg.app.port, log_level="warning",
                forwarded_allow_ips=cfg.app.forwarded_allow_ips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
