"""Tab handlers and the REST API, driven with scripted providers (no server)."""

import json

import pytest
from fastapi.testclient import TestClient

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore, StoreError
from router.strategies.semantic import SemanticRoutingStrategy
from ui.compare import CompareState, compare, vote
from ui.data import delete_preference, export, load_tables, undo_correction

from router.errors import ProviderUnavailable
from router.hybrid import HybridRouter
from router.schema import Chunk, GenerationStats
from router.service import ChatService, Expert
from router.strategies.keyword import KeywordRoutingStrategy
from ui.api import build_api
from ui.auth import Principal, Role
from ui.card import answer_footer, format_us, routing_card, similarity_bar
from ui.chat import ChatSession, correct_route, respond, try_other
from ui.playground import route_lines

ADMIN = Principal("root", Role.ADMIN, "127.0.0.1")


class Scripted:
    def __init__(self, fail=None):
        self.fail = fail

    def stream(self, messages, **options):
        if self.fail:
            raise self.fail
        yield Chunk("Sure, ")
        yield Chunk("here it is.")
        yield Chunk("", done=True, stats=GenerationStats("m", ttft_ms=12.0, tokens_per_s=33.3, output_tokens=4))


def service(routes, fail=None):
    router = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes))
    experts = {n: Expert(n, f"{n}-model", Scripted(fail)) for n in ("professor", "zoomer")}
    return ChatService(router, experts)


def test_card_pieces():
    assert similarity_bar(1.5, 3) == "███" and similarity_bar(-1, 3) == "░░░"
    assert format_us(None) == "-" and format_us(999.0) == "999.0 µs" and format_us(2500) == "2.5 ms"


def test_respond_streams_and_ends_with_card_and_stats(routes):
    session = ChatSession()
    outputs = list(respond(service(routes), None, ADMIN, "write a python function", [], session))
    chat, box, _ = outputs[-1]
    assert box == "" and chat[0] == {"role": "user", "content": "write a python function"}
    final = chat[-1]["content"]
    assert final.startswith("Sure, here it is.")
    assert "tier **L1**" in final and "route **code**" in final and "`professor-model`" in final
    assert "first token 12 ms" in final and "33.3 tok/s" in final
    assert [m.content for m in session.history] == ["write a python function", "Sure, here it is."]
    assert any(o[2] != outputs[0][2] for o in outputs)  # the decision panel was filled


def test_respond_without_backend_shows_card_and_notice(routes):
    err = ProviderUnavailable("Ollama is not reachable at http://127.0.0.1:9. Start it with: ollama serve")
    chat, _, _ = list(respond(service(routes, err), None, ADMIN, "write a python function", [], ChatSession()))[-1]
    final = chat[-1]["content"]
    assert "No model answered" in final and "ollama serve" in final and "route **code**" in final


def test_empty_message_is_not_sent(routes):
    outputs = list(respond(service(routes), None, ADMIN, "   ", [], ChatSession()))
    assert len(outputs) == 1 and outputs[0][0] == []


def test_playground_rows(routes):
    rows = route_lines(service(routes), "python function\n\n  \nwhat is the capital of peru")
    assert [r[1] for r in rows] == ["code", "knowledge"] and rows[0][3] == "L1" and rows[1][3] == "default"


def test_route_card_for_default_names_the_reason(routes):
    d = service(routes).route("zzz")
    assert "no keyword rule fired" in routing_card(d, None)


def test_api_route_and_health(routes):
    svc = service(routes)
    client = TestClient(build_api(svc))
    r = client.post("/v1/route", json={"query": "I want you to act as a pirate"})
    assert r.status_code == 200
    body = r.json()
    expected = json.loads(json.dumps(svc.route("I want you to act as a pirate").to_dict()))
    assert {k: v for k, v in body.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}
    assert client.post("/v1/route", json={"query": "  "}).status_code == 422
    assert client.post("/v1/route", json={"qurey": "x"}).status_code == 422
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and "code" in health["routes"]


@pytest.fixture
def wired(routes, fake_encoder, tmp_path):
    """A service whose router has an L2 tier, and a flywheel over a store in tmp_path."""
    router = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes),
                          semantic=SemanticRoutingStrategy(routes, fake_encoder, threshold=0.3, top_k=1))
    svc = ChatService(router, {n: Expert(n, f"{n}-model", Scripted()) for n in ("professor", "zoomer")})
    store = PreferenceStore(tmp_path / "prefs.sqlite3")
    yield svc, Flywheel(store, router, app_version="test")
    store.close()


def test_turns_are_logged_and_corrections_change_routing_at_once(wired):
    svc, flywheel = wired
    session = ChatSession()
    list(respond(svc, flywheel, ADMIN, "zorblax frobnicate quux", [], session))
    [event] = flywheel.store.routing_events()
    assert event.query == "zorblax frobnicate quux" and event.outcome == "answered" and event.model
    assert "now go to **math**" in correct_route(svc, flywheel, ADMIN, session, "math")
    assert svc.route("zorblax frobnicate quux").route == "math"
    [correction] = flywheel.store.corrections()
    assert correction.right_route == "math" and correction.wrong_route == event.route
    assert "Undid" in undo_correction(flywheel, ADMIN, correction.id)
    assert svc.route("zorblax frobnicate quux").route != "math" and flywheel.store.corrections() == []


def test_try_other_then_vote_stores_a_preference(wired):
    svc, flywheel = wired
    session = ChatSession()
    list(respond(svc, flywheel, ADMIN, "write a python function", [], session))
    *_, last = list(try_other(svc, session))
    prompt, expert_a, expert_b, side_a, side_b, card, state, _tabs = last
    assert "From the chat" in card, "the Compare tab says where the pair came from"
    assert prompt == "write a python function" and "professor" in side_a and "zoomer" in side_b
    assert (expert_a, expert_b) == ("professor", "zoomer"), "the dropdowns name the experts in the panels"
    assert vote(flywheel, ADMIN, "b", state).startswith("Saved preference")
    [pref] = flywheel.store.preferences()
    assert (pref.expert_a, pref.expert_b, pref.verdict, pref.route) == ("professor", "zoomer", "b", "code")
    rows, chart, corrections, message = load_tables(flywheel, ADMIN, "(all)", "zoomer", "(all)")
    assert len(rows) == 1 and chart is not None and "1 preferences" in message
    path, note = export(flywheel, ADMIN, "routing")
    assert json.loads(open(path).read().splitlines()[0]) == {
        "prompt": "write a python function", "chosen": "zoomer", "rejected": "professor"}
    assert "Deleted" in delete_preference(flywheel, ADMIN, pref.id) and flywheel.store.preferences() == []


def test_compare_streams_both_sides(wired):
    svc, flywheel = wired
    *_, (side_a, side_b, card, state) = list(compare(svc, "write a python function", "professor", "zoomer",
                                                      CompareState()))
    assert "Sure, here it is." in side_a and "Sure, here it is." in side_b and "route **code**" in card
    assert set(state.done) == {0, 1}
    assert vote(None, ADMIN, "a", state).startswith("⚠️")


def test_a_broken_store_never_breaks_the_chat(wired, monkeypatch):
    svc, flywheel = wired

    def full(*args, **kwargs):
        raise StoreError("Cannot write preferences: database or disk is full.")

    monkeypatch.setattr(flywheel.store, "add_routing_event", full)
    chat, _, _ = list(respond(svc, flywheel, ADMIN, "write a python function", [], ChatSession()))[-1]
    assert chat[-1]["content"].startswith("Sure, here it is.")


def test_correcting_a_keyword_decision_overrules_the_rule_where_l2_agrees(wired):
    svc, flywheel = wired
    session = ChatSession()
    list(respond(svc, flywheel, ADMIN, "write a python function", [], session))
    message = correct_route(svc, flywheel, ADMIN, session, "math")
    assert "python function" in message and "re-check" in message and message.count(". ") == 0
    decision = svc.route("write a python function")
    assert (decision.tier, decision.route) == ("L2", "math")
    assert "users corrected it" in routing_card(decision, None)
    restarted = HybridRouter(list(svc.router.routes.values()), "knowledge", keyword=svc.router.keyword,
                             semantic=SemanticRoutingStrategy(list(svc.router.routes.values()),
                                                              svc.router.semantic.encoder, threshold=0.3, top_k=1))
    assert Flywheel(flywheel.store, restarted).restore() == 1
    assert restarted.route("write a python function").route == "math"
    *_, corrections, _ = load_tables(flywheel, ADMIN, "(all)", "(all)", "(all)")
    assert corrections[0][5:] == ["code", "math", "python function"]
    [correction] = flywheel.store.corrections()
    assert "Undid" in undo_correction(flywheel, ADMIN, correction.id)
    assert svc.route("write a python function").route == "code" and svc.router.contested_rules == {}
