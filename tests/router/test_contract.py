"""Every strategy keeps the RoutingStrategy contract, on ordinary and on hostile input."""

from dataclasses import replace

import pytest

from router.hybrid import HybridRouter
from router.protocols import RoutingStrategy
from router.schema import RouteDecision, TierTimings
from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy

HOSTILE = {
    "one_megabyte": "solve for y " + "x" * 1_000_000 + " then explain",
    "control_chars": "\x00\x01\x07hello\x1b[31m world\x7f\r\n",
    "lone_surrogate": "what is \ud800 the capital \udfff of peru",
    "emoji": "🤖🔥 write a python function 🐍✨ " * 10,
    "right_to_left": "مرحبا، كيف حالك اليوم؟ שלום עולם",
    "mixed": "I want you to act as \u202e\u200b a translator",
}


def _strategies(routes, encoder):
    return {
        "keyword": KeywordRoutingStrategy(routes),
        "semantic": SemanticRoutingStrategy(routes, encoder, threshold=-1.0),
        "hybrid": HybridRouter(
            routes, "knowledge", keyword=KeywordRoutingStrategy(routes), semantic=SemanticRoutingStrategy(routes, encoder)
        ),
    }


@pytest.fixture(params=["keyword", "semantic", "hybrid", "semantic-real"])
def strategy(request, routes, fake_encoder):
    if request.param == "semantic-real":
        encoder = request.getfixturevalue("onnx_encoder")
        return SemanticRoutingStrategy(routes, encoder, threshold=-1.0)
    return _strategies(routes, fake_encoder)[request.param]


def test_is_a_routing_strategy(strategy):
    assert isinstance(strategy, RoutingStrategy)


@pytest.mark.parametrize("query", ["write a python function to reverse a string", "what is the capital of peru"])
def test_decision_names_a_configured_route_and_its_expert(strategy, routes, query):
    experts = {r.name: r.expert for r in routes}
    d = strategy.route(query)
    assert d is None or isinstance(d, RouteDecision)
    if d is not None:
        assert d.route in experts and d.expert == experts[d.route]
        assert d.tier in ("L1", "L2", "default")
        assert (d.rule is not None) == (d.tier == "L1")
        again = strategy.route(query)
        assert replace(again, timings=TierTimings()) == replace(d, timings=TierTimings())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gets_an_answer(strategy, routes, name):
    d = strategy.route(HOSTILE[name])
    assert d is None or d.route in {r.name for r in routes}
