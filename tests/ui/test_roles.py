"""Roles inside the handlers: what a visitor, a labeler and an admin may do, without a server."""

from types import SimpleNamespace

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore
from router.hybrid import HybridRouter
from router.schema import Chunk
from router.service import ChatService, Expert
from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy
from ui.api import build_api
from ui.auth import Accounts, Forbidden, Principal, Role, caller, parse_keys, parse_users
from ui.card import safe_markdown
from ui.chat import ChatSession, correct_route, respond, try_other
from ui.compare import vote
from ui.data import delete_preference, export, load_tables, promote_correction, undo_correction
from ui.limits import BodyLimit, Limits, RateLimiter

ALICE = Principal("alice", Role.ADMIN, "10.0.0.1")
BOB = Principal("bob", Role.LABELER, "10.0.0.2")
CAROL = Principal("carol", Role.LABELER, "10.0.0.3")
VISITOR = Principal("anonymous:1234abcd", Role.VISITOR, "10.0.0.9")
KEY = "k-" + "a" * 30


class Scripted:
    def stream(self, messages, **options):
        yield Chunk("An answer with a pixel ![t](http://tracker.example/p.png) and <img src=http://x/y>.")
        yield Chunk("", done=True)


@pytest.fixture
def wired(routes, fake_encoder, tmp_path):
    router = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes),
                          semantic=SemanticRoutingStrategy(routes, fake_encoder, threshold=0.3, top_k=1))
    svc = ChatService(router, {n: Expert(n, f"{n}-model", Scripted()) for n in ("professor", "zoomer")})
    store = PreferenceStore(tmp_path / "prefs.sqlite3", max_text_chars=1000)
    yield svc, Flywheel(store, router, app_version="test")
    store.close()


def turn(svc, flywheel, principal, text, session=None):
    session = session or ChatSession()
    *_, (chat, _, _) = list(respond(svc, flywheel, principal, text, [], session))
    return session, chat[-1]["content"]


def test_users_and_keys_parse_and_never_show_secrets():
    users = parse_users("alice:admin:pa:ss:word, bob:labeler:hunter2hunter2")
    accounts = Accounts(users, parse_keys(f"{KEY}:admin"), public_demo=True)
    assert accounts.check_password("alice", "pa:ss:word") and not accounts.check_password("alice", "nope")
    assert not accounts.check_password("mallory", "pa:ss:word")
    assert "pa:ss:word" not in repr(users) and KEY not in repr(accounts.for_key(KEY))
    assert accounts.for_key(KEY).role is Role.ADMIN and accounts.for_key(KEY + "x") is None
    for bad in ("alice:root:pw", "alice:admin:", "justaname", "alice:admin:a,alice:labeler:b"):
        with pytest.raises(Exception, match="WORKBENCH_USERS"):
            parse_users(bad)
    with pytest.raises(Exception, match="16 characters"):
        parse_keys("short")


def test_repeated_wrong_passwords_lock_the_name_for_a_while():
    accounts = Accounts(parse_users("alice:admin:right-password"))
    for _ in range(5):
        assert not accounts.check_password("alice", "wrong")
    assert not accounts.check_password("alice", "right-password"), "throttled after 5 failures"


def test_a_public_bind_without_users_is_refused():
    with pytest.raises(Exception, match="WORKBENCH_USERS") as e:
        Accounts.from_env({}, "0.0.0.0", public_demo=False)
    assert "app.public_demo=true" in str(e.value)
    assert Accounts.from_env({}, "0.0.0.0", public_demo=True).mode == "public"
    assert Accounts.from_env({}, "127.0.0.1", public_demo=False).mode == "local"
    assert Accounts.from_env({"WORKBENCH_USERS": "a:admin:b"}, "0.0.0.0", public_demo=False).mode == "private"


def test_gradio_callers_resolve_to_roles():
    accounts = Accounts(parse_users("alice:admin:pw-alice-1,bob:labeler:pw-bob-22"), public_demo=True)
    request = lambda user: SimpleNamespace(username=user, session_hash="s1", client=SimpleNamespace(host="1.2.3.4"))  # noqa: E731
    assert caller(accounts, request("alice"), "x", admin=True).role is Role.ADMIN
    assert caller(accounts, request(None), "chat").role is Role.VISITOR
    with pytest.raises(gr.Error, match="Only an admin"):
        caller(accounts, request("bob"), "run benchmarks", admin=True)
    with pytest.raises(gr.Error, match="labeler or admin"):
        caller(accounts, request(None), "delete preferences", label=True)
    private = Accounts(parse_users("alice:admin:pw-alice-1"))
    with pytest.raises(gr.Error, match="Sign in"):
        caller(private, request(None), "chat")


def test_a_visitors_correction_stays_in_their_session(wired):
    svc, flywheel = wired
    query = "zorblax frobnicate quux"
    session, _ = turn(svc, flywheel, VISITOR, query)
    before = session.last.decision.route
    message = correct_route(svc, flywheel, VISITOR, session, "math")
    assert "this session only" in message
    _, card = turn(svc, flywheel, VISITOR, query, session)
    assert "tier **session**" in card and "route **math**" in card and "this browser session only" in card
    assert svc.route(query).route == before, "nobody else's routing changed"
    [pending] = flywheel.store.corrections()
    assert (pending.scope, pending.user, pending.right_route) == ("session", VISITOR.name, "math")
    assert "Only an admin" in _forbidden(promote_correction, flywheel, BOB, pending.id)
    assert "Promoted" in promote_correction(flywheel, ALICE, pending.id)
    assert svc.route(query).route == "math"


def test_a_labelers_correction_changes_routing_for_everyone(wired):
    svc, flywheel = wired
    session, _ = turn(svc, flywheel, BOB, "zorblax frobnicate quux")
    assert "Correction #" in correct_route(svc, flywheel, BOB, session, "math")
    assert svc.route("zorblax frobnicate quux").route == "math"


def test_a_correction_to_the_route_already_taken_is_rejected(wired):
    svc, flywheel = wired
    session, _ = turn(svc, flywheel, BOB, "write a python function")
    assert "already went to **code**" in correct_route(svc, flywheel, BOB, session, "code")
    assert flywheel.store.corrections() == []


def _forbidden(fn, *args):
    with pytest.raises(Forbidden) as e:
        fn(*args)
    return str(e.value)


def vote_on(svc, flywheel, principal, verdict, state=None):
    if state is None:
        session, _ = turn(svc, flywheel, principal, "write a python function")
        *_, last = list(try_other(svc, session))
        state = last[6]
    return vote(flywheel, principal, verdict, state), state


def test_labelers_see_and_delete_only_their_own_records(wired):
    svc, flywheel = wired
    vote_on(svc, flywheel, BOB, "a")
    vote_on(svc, flywheel, CAROL, "b")
    bobs, _, _, message = load_tables(flywheel, BOB, "(all)", "(all)", "(all)")
    assert [r[2] for r in bobs] == ["bob"] and "Your records (bob)" in message
    everyone, *_ = load_tables(flywheel, ALICE, "(all)", "(all)", "(all)")
    assert sorted(r[2] for r in everyone) == ["bob", "carol"]
    carols = [r[0] for r in everyone if r[2] == "carol"][0]
    assert "no preference" in delete_preference(flywheel, BOB, carols)
    assert len(flywheel.store.preferences()) == 2
    assert "Deleted" in delete_preference(flywheel, ALICE, carols)
    rows, _, _, message = load_tables(flywheel, VISITOR, "(all)", "(all)", "(all)")
    assert rows == [] and "sign in" in message
    for fn, args in ((delete_preference, (1,)), (undo_correction, (1,)), (export, ("answers",))):
        assert "labeler or admin" in _forbidden(fn, flywheel, VISITOR, *args)
    path, note = export(flywheel, BOB, "routing")
    assert "Exported 1 rows" in note and '"rejected": "zoomer"' in open(path).read()


def test_a_second_vote_on_a_pair_replaces_the_first(wired):
    svc, flywheel = wired
    first, state = vote_on(svc, flywheel, BOB, "a")
    second, _ = vote_on(svc, flywheel, BOB, "b", state)
    assert first.startswith("Saved preference") and second.startswith("Changed your vote")
    [pref] = flywheel.store.preferences()
    assert pref.verdict == "b" and pref.user == "bob" and (pref.expert_a, pref.expert_b) == ("professor", "zoomer")
    vote(flywheel, CAROL, "tie", state)  # another user's vote on the same pair is their own record
    assert len(flywheel.store.preferences()) == 2


def test_compare_state_is_cleared_when_an_expert_is_changed(wired):
    from ui.compare import cleared

    svc, flywheel = wired
    _, state = vote_on(svc, flywheel, BOB, "a")
    side_a, side_b, fresh = cleared(state)
    assert "Press Compare" in side_a and fresh.done == {}
    assert "Compare two answers first" in vote(flywheel, BOB, "a", fresh)


def test_answers_fetch_nothing_from_other_hosts(wired):
    svc, flywheel = wired
    _, final = turn(svc, flywheel, VISITOR, "hello <img src=http://evil.example/me.png>")
    assert "![" not in final and "<img" not in final and "!\\[t](http://tracker.example/p.png)" in final
    assert safe_markdown("```html\n<img src=x>\n```") == "```html\n<img src=x>\n```", "code stays verbatim"


def test_oversized_text_is_stored_clipped_with_its_length(wired):
    svc, flywheel = wired
    turn(svc, flywheel, VISITOR, "x" * 50_000)
    [event] = flywheel.store.routing_events()
    assert len(event.query) == 1000 and event.original_chars == 50_000 and event.user == VISITOR.name


@pytest.mark.filterwarnings("ignore:Too many requests")
def test_chat_rate_limit_per_user(wired):
    svc, flywheel = wired
    limiter = RateLimiter(per_minute=2)
    answered = []
    for _ in range(3):
        outputs = list(respond(svc, flywheel, VISITOR, "hello", [], ChatSession(), limiter))
        answered.append(len(outputs) > 1)
    assert answered == [True, True, False]
    assert len(list(respond(svc, flywheel, BOB, "hello", [], ChatSession(), limiter))) > 1, "per user"


def test_rest_keys_roles_limits(routes):
    svc = ChatService(HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes)),
                      {n: Expert(n, f"{n}-model", Scripted()) for n in ("professor", "zoomer")})
    private = Accounts(parse_users("alice:admin:pw-alice-1"), parse_keys(KEY))
    api = build_api(svc, private, Limits(api_per_minute=2))
    api.add_middleware(BodyLimit, max_bytes=1000)
    client = TestClient(api)
    body = {"query": "I want you to act as a pirate"}
    assert client.post("/v1/route", json=body).status_code == 401
    assert client.post("/v1/route", json=body, headers={"Authorization": "Bearer wrong-key-wrong-key"}).status_code == 401
    auth = {"Authorization": f"Bearer {KEY}"}
    assert [client.post("/v1/route", json=body, headers=auth).status_code for _ in range(3)] == [200, 200, 429]
    limited = client.post("/v1/route", json=body, headers=auth)
    assert int(limited.headers["retry-after"]) >= 1
    assert client.post("/v1/route", json={"query": "x" * 2000}, headers=auth).status_code == 413
    assert KEY not in limited.text
