"""The flywheel: votes with one per pair per user, corrections global or per session, promotion and undo."""

import pytest

from forensics.benchmark_suite import measure_feedback
from forensics.feedback import Flywheel, SameRouteError, Saved
from forensics.preference_store import PreferenceStore
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.schema import LabelledQuery
from router.service import Finished
from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy

ODD = "zorblax frobnicate quux"  # no rule fires and no example is near: it goes where L2 or the default sends it


def build_router(routes, encoder) -> HybridRouter:
    return HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes),
                        semantic=SemanticRoutingStrategy(routes, encoder, threshold=0.3, top_k=1))


@pytest.fixture
def flywheel(routes, fake_encoder, store):
    return Flywheel(store, build_router(routes, fake_encoder), app_version="test")


def answers(verdict_text: str = "4") -> tuple[Finished, Finished]:
    return Finished(verdict_text, "professor", "qwen"), Finished("five", "zoomer", "llama")


def test_a_second_vote_on_a_pair_replaces_the_first(flywheel):
    a, b = answers()
    first = flywheel.record_preference("2+2?", [], a, b, "a", user="alice", pair_id="pair-1")
    assert first == Saved(first.id, replaced=False)
    again = flywheel.record_preference("2+2?", [], *answers("four"), "b", user="alice", pair_id="pair-1")
    assert again == Saved(first.id, replaced=True)
    [vote] = flywheel.store.preferences(user="alice")
    assert (vote.verdict, vote.answer_a, vote.pair_id) == ("b", "four", "pair-1")
    assert flywheel.record_preference("2+2?", [], a, b, "a", user="bob", pair_id="pair-1").replaced is False
    unpaired = [flywheel.record_preference("2+2?", [], a, b, "a") for _ in range(2)]
    assert unpaired[0].id != unpaired[1].id and not any(s.replaced for s in unpaired)
    assert flywheel.store.count("preferences") == 4


def test_turns_name_their_user(flywheel):
    decision = flywheel.router.route("write a python function")
    flywheel.record_turn("write a python function", decision, Finished("ok", "professor", "qwen"), user="key:3f9a1c")
    [turn] = flywheel.store.routing_events(user="key:3f9a1c")
    assert (turn.route, turn.outcome) == ("code", "answered")


def test_a_correction_must_name_another_route(flywheel):
    decision = flywheel.router.route("write a python function")
    with pytest.raises(SameRouteError, match="The query already went to 'code'; a correction must name another"):
        flywheel.correct("write a python function", decision, "code")
    assert issubclass(SameRouteError, ConfigError) and flywheel.store.corrections(include_undone=True) == []
    with pytest.raises(ConfigError, match="Unknown scope 'private'. Available: global, session"):
        flywheel.correct("write a python function", decision, "math", scope="private")
    assert flywheel.correct("anything", None, "math").id > 0  # no decision: nothing to compare with


def test_a_global_correction_changes_routing_and_undo_only_by_its_owner(flywheel):
    router = flywheel.router
    cid = flywheel.correct(ODD, router.route(ODD), "math", user="alice").id
    assert router.route(ODD).route == "math" and flywheel.store.correction(cid).user == "alice"
    assert flywheel.undo(cid, user="bob") is False and router.route(ODD).route == "math"
    assert flywheel.undo(cid, user="alice") is True and router.route(ODD).route != "math"
    assert flywheel.undo(cid) is False  # already undone


def test_a_session_correction_stays_out_of_the_router_until_promoted(flywheel, routes, fake_encoder):
    router = flywheel.router
    before = router.route(ODD)
    size = router.semantic.size
    cid = flywheel.correct(ODD, before, "math", user="anonymous:ab12cd", scope="session").id
    stored = flywheel.store.correction(cid)
    assert (stored.scope, stored.user, stored.wrong_route) == ("session", "anonymous:ab12cd", before.route)
    assert router.route(ODD).route == before.route != "math" and router.semantic.size == size
    restarted = Flywheel(flywheel.store, build_router(routes, fake_encoder))
    assert restarted.restore() == 0 and restarted.router.route(ODD).route != "math"

    assert flywheel.promote(cid) is True and flywheel.promote(cid) is False
    assert router.route(ODD).route == "math" and flywheel.store.correction(cid).scope == "global"
    restarted = Flywheel(flywheel.store, build_router(routes, fake_encoder))
    assert restarted.restore() == 1 and restarted.router.route(ODD).route == "math"
    assert flywheel.undo(cid) is True and router.route(ODD).route != "math" and router.semantic.size == size


def test_undoing_a_session_correction_leaves_the_router_alone(flywheel):
    router = flywheel.router
    flywheel.correct(ODD, router.route(ODD), "math", user="alice")
    visitor = flywheel.correct(ODD, None, "math", user="anonymous:1", scope="session").id
    size = router.semantic.size
    assert flywheel.undo(visitor, user="anonymous:1") is True
    assert router.semantic.size == size and router.route(ODD).route == "math"  # alice's example is still there


def test_promoting_a_keyword_correction_contests_the_rule(flywheel):
    router = flywheel.router
    cid = flywheel.correct("write a python function", router.route("write a python function"), "math",
                           scope="session").id
    assert router.contested_rules == {}
    flywheel.promote(cid)
    assert router.contested_rules == {"python function": {"math": 1}}
    flywheel.undo(cid)
    assert router.contested_rules == {}


def test_the_router_learns_the_text_the_store_kept(tmp_path, routes, fake_encoder):
    with PreferenceStore(tmp_path / "p.sqlite3", max_text_chars=23) as store:
        flywheel = Flywheel(store, build_router(routes, fake_encoder))
        size = flywheel.router.semantic.size
        cid = flywheel.correct(ODD + " and a tail the store clips", None, "math").id
        assert store.correction(cid).query == ODD and flywheel.router.route(ODD).route == "math"
        assert flywheel.undo(cid) is True and flywheel.router.semantic.size == size


def test_the_feedback_benchmark_skips_rows_already_routed_right(routes, fake_encoder):
    rows = [LabelledQuery("write a python function", "code", 1), LabelledQuery("solve for x", "math", 2),
            LabelledQuery(ODD, "math", 3), LabelledQuery("what is the capital of peru", "knowledge", 4)]
    report = measure_feedback(build_router(routes, fake_encoder), rows, fraction=0.75, seed=0)
    assert report["n_fed"] + report["n_already_right"] == 3 and report["n_eval"] == 1
    assert report["n_already_right"] >= 1
