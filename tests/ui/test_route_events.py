"""POST /v1/route traffic is stored as routing events, so the inbox ranks it with the chat's and the gateway's turns.

The app is the real one (build_service over the real config, with the ONNX encoder) served by uvicorn on
127.0.0.1, with a SQLite store or a fresh PostgreSQL database (skipped without LLM_ROUTER_TEST_PG).
"""

from __future__ import annotations

import time

import httpx
import pytest

from forensics.feedback import Flywheel
from forensics.inbox import build_inbox
from forensics.preference_store import PreferenceStore
from router.config import build_service, load_config
from tests.support.fixtures import dead_url  # noqa: F401
from tests.support.postgres import fresh_database
from tests.ui.test_gateway import KEY, Served
from ui.api import build_api
from ui.auth import Accounts, Principal, Role, parse_keys
from ui.inbox import load

UNSURE = "zorblax frobnicate the quux before lunch, it keeps failing"
MAX_CHARS = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A store that clips stored text at MAX_CHARS: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        with PreferenceStore(tmp_path / "store.sqlite3", max_text_chars=MAX_CHARS) as s:
            yield s
        return
    with fresh_database("route_events") as url, PreferenceStore(url, max_text_chars=MAX_CHARS) as s:
        yield s


def stored_events(store: PreferenceStore, n: int) -> list:
    """The routing events once `n` are stored: the app writes each after its response has gone out."""
    deadline = time.monotonic() + 30
    while len(events := store.routing_events()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return events


def test_route_decisions_are_stored_and_reach_the_inbox(store, dead_url):
    service = build_service(load_config([f"ollama.host={dead_url}"]))  # routing needs no model backend
    accounts = Accounts(keys=parse_keys(KEY))
    flywheel = Flywheel(store, service.router)
    with Served(build_api(service, accounts, flywheel=flywheel)) as served, httpx.Client(
            base_url=served.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        first = http.post("/v1/route", json={"query": UNSURE})
        follow = http.post("/v1/route", json={"messages": [
            {"role": "user", "content": "write a python function that sorts a list"},
            {"role": "assistant", "content": "def sort(xs): return sorted(xs)"},
            {"role": "user", "content": "and now make it faster"}]})
        refused = http.post("/v1/route", json={"query": "   "})
    assert first.status_code == follow.status_code == 200, (first.text, follow.text)
    assert refused.status_code == 422  # not routed, so not stored

    events = stored_events(store, 2)
    assert len(events) == 2
    by_query = {e.query: e for e in events}
    asked = by_query[UNSURE[:MAX_CHARS]]  # clipped by the store's limit, with the length it had
    assert asked.original_chars == len(UNSURE)
    assert (asked.route, asked.tier, asked.expert) == (first.json()["route"], first.json()["tier"],
                                                       first.json()["expert"])
    assert asked.outcome == "routed" and asked.model is None and asked.user.startswith("key:")
    later = by_query["and now make it faster"]  # the message routed, not its conversation
    assert later.route == follow.json()["route"] and later.tier == follow.json()["tier"]

    ranked = build_inbox(events, service.router, limit=None)
    assert {i for item in ranked for i in item.event_ids} == {e.id for e in events}
    state, _ = load(flywheel, Principal("bob", Role.LABELER, "bob"), limit=None)
    assert UNSURE[:MAX_CHARS] in [item.query for item in state.items]
