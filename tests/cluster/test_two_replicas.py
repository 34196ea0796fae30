"""Two real workbench processes on one store: a correction made through one is the other's decision too.

Each replica is `python app.py` (tests/support/app_process.py); the correction goes through the
Gradio chat and "should have gone to" events over HTTP, and the other replica is read with
POST /v1/route. On SQLite the replicas share a file; on PostgreSQL a database (skipped without a server).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid

import httpx
import pytest

from forensics.preference_store import PreferenceStore
from tests.support import raw_gradio as raw
from tests.support.app_process import AppProcess, launch_app
from tests.support.backends import FakeLLMServer
from tests.support.postgres import fresh_database

SYNC_SECONDS = 1
QUERY = "zorblax frobnicate quux"  # no rule fires, no example is near: the default route until corrected
# far from each other, so each correction decides its own query whatever the others taught
TOPICS = ["describe the migration of arctic terns", "what colour is a ripe mango", "why do cats knead blankets",
          "recommend a board game for six players", "how do violins get their sound", "plan a weekend in lisbon",
          "list famous lighthouses in scotland", "which houseplants survive low light", "how are glaciers formed",
          "history of the bicycle bell", "best way to store fresh basil", "origin of the word sandwich"]
SAVED = re.compile(r"Correction #(\d+) saved")


@pytest.fixture(scope="module")
def backend():
    with FakeLLMServer(reply="An answer.", chunk_delay=0.0) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    with fresh_database("cluster") as url:
        yield url


def start(store_url: str, backend: FakeLLMServer, tmp_path, name: str) -> AppProcess:
    return launch_app(f"ollama.host={backend.url}", f"store.sync_seconds={SYNC_SECONDS}", "limits.chat_per_minute=6000",
                      "limits.api_per_minute=100000",
                      env={"LLM_ROUTER_STORE_URL": store_url}, log=tmp_path / f"{name}.log")


def route_on(app: AppProcess, query: str) -> str:
    response = httpx.post(f"{app.url}/v1/route", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["route"]


def correct(client: httpx.Client, cfg: dict, query: str, route: str) -> str:
    """Chat `query`, then say it should have gone to `route`; returns the workbench's reply."""
    session = uuid.uuid4().hex[:12]
    asked = raw.call(client, raw.fn_by_api_name(cfg, "chat"), [query, [], None], session_hash=session)
    assert asked.success, asked.error
    said = raw.call(client, raw.fn_by_api_name(cfg, "correct"), [None, route], session_hash=session)
    assert said.success, said.error
    return said.data[0]


def wait_for_route(app: AppProcess, query: str, route: str, timeout_s: float = 60) -> float:
    """Seconds until `app` routes `query` to `route` (the test fails after `timeout_s`)."""
    start = time.monotonic()
    while (found := route_on(app, query)) != route:
        assert time.monotonic() - start < timeout_s, f"{app.url} still routes {query!r} to {found!r}"
        time.sleep(0.05)
    return time.monotonic() - start


def test_replicas_agree_and_killing_one_mid_write_loses_nothing_acknowledged(store_url, backend, tmp_path):
    one = start(store_url, backend, tmp_path, "one")
    two = start(store_url, backend, tmp_path, "two")
    acknowledged: dict[int, tuple[str, str]] = {}  # correction id -> (query, route)
    stop = threading.Event()

    def write() -> None:
        client = raw.anonymous(one.url + "/")
        cfg = raw.config(client)
        for query in TOPICS:
            try:
                route = "code" if route_on(one, query) == "math" else "math"
                reply = correct(client, cfg, query, route)
            except (httpx.HTTPError, AssertionError):
                return  # the replica is gone
            if saved := SAVED.search(reply):
                acknowledged[int(saved.group(1))] = (query, route)
            if stop.is_set():
                return

    try:
        query = QUERY
        before = route_on(one, query)
        assert route_on(two, query) == before != "math"
        client = raw.anonymous(one.url + "/")  # loopback without accounts: the local admin
        assert SAVED.search(correct(client, raw.config(client), query, "math"))
        assert route_on(one, query) == "math"
        waited = wait_for_route(two, query, "math")
        print(f"replica two routed the correction after {waited:.2f} s (sync_seconds={SYNC_SECONDS})")
        assert "other replicas' corrections within" in two.output()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(one.proc.pid, signal.SIGKILL)  # mid-write: the writer keeps correcting until then
        one.proc.wait()
        stop.set()
        writer.join(60)
        assert len(acknowledged) >= 3
        with PreferenceStore(store_url) as store:
            stored = {c.id: c for c in store.corrections()}
        assert set(acknowledged) <= set(stored)
        assert all((stored[i].query, stored[i].right_route) == qr for i, qr in acknowledged.items())
        for query, route in acknowledged.values():  # and the surviving replica routes by every one of them
            wait_for_route(two, query, route)
    finally:
        stop.set()
        one.stop()
        two.stop()
