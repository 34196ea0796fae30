"""Public only on purpose: a bind that serves other machines needs accounts or an explicit public demo."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.security.conftest import ADMIN_KEY, PASSWORDS, account_env
from tests.support import raw_gradio as raw
from tests.support.app_process import ROOT, launch_app


def test_a_public_bind_without_users_refuses_to_start(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("WORKBENCH_")}
    out = subprocess.run([sys.executable, "app.py", "app.host=0.0.0.0", f"store.path={tmp_path / 's.sqlite3'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "WORKBENCH_USERS" in out.stderr and "app.public_demo=true" in out.stderr


def test_with_users_and_no_demo_everyone_signs_in(tmp_path):
    app = launch_app(f"store.path={tmp_path / 's.sqlite3'}", "ollama.host=http://127.0.0.1:9",
                     "ollama.connect_timeout=0.5", env=account_env(), log=tmp_path / "app.log")
    try:
        url = app.url
        assert httpx.get(f"{url}/config").status_code == 401
        join = httpx.post(f"{url}/gradio_api/queue/join", json={"data": ["hi", [], None], "fn_index": 0,
                                                               "session_hash": "x1"})
        assert join.status_code == 401
        assert httpx.post(f"{url}/v1/route", json={"query": "hi there"}).status_code == 401
        ok = httpx.post(f"{url}/v1/route", json={"query": "hi there"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert ok.status_code == 200
        assert httpx.get(f"{url}/healthz").json()["mode"] == "private"
        bob = raw.login(f"{url}/", "bob", PASSWORDS["bob"])
        cfg = raw.config(bob)
        routed = raw.call(bob, raw.fn_by_api_name(cfg, "chat"), ["Write a python function", [], None])
        assert routed.success and "route **code**" in str(routed.data[0][-1])
    finally:
        app.stop()
