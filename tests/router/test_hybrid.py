import pytest

from router.errors import ConfigError, InvalidQueryError
from router.hybrid import HybridRouter
from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy


@pytest.fixture
def hybrid(routes, fake_encoder):
    return HybridRouter(
        routes,
        default_route="knowledge",
        keyword=KeywordRoutingStrategy(routes),
        semantic=SemanticRoutingStrategy(routes, fake_encoder, threshold=0.4),
    )


def test_l1_decides_first_and_l2_is_skipped(hybrid):
    d = hybrid.route("I want you to act as a python function")
    assert d.tier == "L1" and d.route == "roleplay"
    assert d.timings.l1_us > 0 and d.timings.l2_us is None and d.timings.total_us >= d.timings.l1_us


def test_l2_decides_when_no_rule_fires(hybrid):
    d = hybrid.route("what is the capital of peru")
    assert d.tier == "L2" and d.route == "knowledge" and d.rule is None
    assert d.timings.l1_us > 0 and d.timings.l2_us > 0


def test_default_route_keeps_the_l2_ranking(hybrid):
    d = hybrid.route("zorblax")
    assert (d.tier, d.route, d.expert) == ("default", "knowledge", "zoomer")
    assert len(d.top_routes) == 3 and "no route was similar enough" not in d.reason and "needs >= 0.4" in d.reason


def test_keyword_only_and_semantic_only(routes, fake_encoder):
    only_l1 = HybridRouter(routes, "math", keyword=KeywordRoutingStrategy(routes))
    d = only_l1.route("what is the capital of peru")
    assert (d.tier, d.route, d.top_routes, d.timings.l2_us) == ("default", "math", (), None)
    only_l2 = HybridRouter(routes, "math", semantic=SemanticRoutingStrategy(routes, fake_encoder, threshold=0.4))
    assert only_l2.route("I want you to act as a pirate").tier != "L1"


def test_unknown_default_route_is_named(routes):
    with pytest.raises(ConfigError, match="'cooking' is not a route. Available: roleplay, code, math, knowledge"):
        HybridRouter(routes, "cooking")


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_empty_query_is_refused(hybrid, query):
    with pytest.raises(InvalidQueryError, match="empty"):
        hybrid.route(query)


def test_decision_is_json_ready(hybrid):
    import json

    d = hybrid.route("python function please")
    data = json.loads(json.dumps(d.to_dict()))
    assert data["rule"]["pattern"] == "python function" and data["timings"]["l2_us"] is None


def test_a_corrected_rule_defers_to_l2_only_for_the_routes_users_named(routes, fake_encoder):
    hybrid = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes),
                          semantic=SemanticRoutingStrategy(routes, fake_encoder, threshold=0.4, top_k=1))
    query = "write a python function"
    first = hybrid.route(query)
    assert (first.tier, first.route) == ("L1", "code")
    pattern = first.rule.pattern
    hybrid.contest(pattern, "math")
    assert hybrid.contested_rules == {pattern: {"math": 1}}
    kept = hybrid.route(query)  # L2 re-checks, still ranks code first: the rule stands
    assert (kept.tier, kept.route) == ("L1", "code") and kept.timings.l2_us > 0 and "re-checked" in kept.reason
    hybrid.semantic.add_utterances([(query, "math")])
    moved = hybrid.route(query)
    assert (moved.tier, moved.route, moved.rule.pattern) == ("L2", "math", pattern)
    assert "corrected it to 'math' 1 time(s)" in moved.reason
    assert hybrid.route("I want you to act as a pirate").timings.l2_us is None  # other rules keep the fast path
    assert hybrid.uncontest(pattern, "math") is True and hybrid.uncontest(pattern, "math") is False
    assert hybrid.contested_rules == {} and hybrid.route(query).tier == "L1"
    with pytest.raises(ConfigError, match="Unknown route 'cooking'"):
        hybrid.contest(pattern, "cooking")


def test_the_semantic_strategy_meets_the_l2_protocols(hybrid):
    from router.protocols import LearnsExamples, RankingStrategy

    assert isinstance(hybrid.semantic, RankingStrategy) and isinstance(hybrid.semantic, LearnsExamples)


def test_learn_adds_an_example_and_contests_the_rule_that_decided(hybrid):
    size = hybrid.semantic.size
    [plain, ruled] = hybrid.learn([("zorblax frobnicate", "math"), ("write a python function", "knowledge")])
    assert (plain.examples, plain.contested_rule) == (True, None)
    assert ruled.contested_rule == "python function" and hybrid.contested_rules == {"python function": {"knowledge": 1}}
    assert hybrid.semantic.size == size + 2 and hybrid.semantic.rank("zorblax frobnicate").best.route == "math"
    undone = hybrid.unlearn("write a python function", "knowledge")
    assert undone.contested_rule == "python function" and hybrid.contested_rules == {}
    assert hybrid.unlearn("write a python function", "knowledge") is None, "nothing left to take back"
    assert hybrid.semantic.size == size + 1


def test_learning_a_route_the_rule_already_picks_contests_nothing(hybrid):
    [learned] = hybrid.learn([("write a python function", "code")])
    assert learned.contested_rule is None and hybrid.contested_rules == {}
    with pytest.raises(ConfigError, match="Unknown route"):
        hybrid.learn([("x", "nowhere")])


def test_a_keyword_only_router_learns_contested_rules_only(routes):
    only_l1 = HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes))
    [learned] = only_l1.learn([("write a python function", "math")])
    assert (learned.examples, learned.contested_rule) == (False, "python function")


def test_default_reason_names_the_route_that_scored_highest(hybrid):
    from router.schema import RouteDecision, RouteScore

    picked = RouteDecision(route="reasoning", expert="professor", tier="L2", score=0.192, margin=0.05,
                           top_routes=(RouteScore("reasoning", 0.192), RouteScore("chitchat", 0.2)))
    reason = hybrid._unsure_reason(picked)
    assert "highest score was 'chitchat' at 0.200" in reason and "L2's pick 'reasoning' scored 0.192" in reason
    alone = hybrid._unsure_reason(RouteDecision(route="math", expert="professor", tier="L2", score=0.3, margin=0.1,
                                                top_routes=(RouteScore("math", 0.3), RouteScore("code", 0.1))))
    assert "highest score was 'math' at 0.300 with margin 0.100" in alone
