import numpy as np
import pytest

from router.errors import ConfigError
from router.schema import Route
from router.strategies.semantic import SemanticRoutingStrategy, top_k_mean


def test_top_k_mean():
    assert top_k_mean(np.array([0.1, 0.9, 0.5, 0.7]), 2) == pytest.approx(0.8)
    assert top_k_mean(np.array([0.4]), 3) == pytest.approx(0.4)


def test_routes_to_most_similar_and_reports_top3(routes, fake_encoder):
    s = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.1)
    d = s.route("what is the capital of france")
    assert (d.route, d.expert, d.tier) == ("knowledge", "zoomer", "L2")
    assert len(d.top_routes) == 3 and d.top_routes[0].route == "knowledge"
    assert d.top_routes[0].score >= d.top_routes[1].score >= d.top_routes[2].score
    assert d.margin == pytest.approx(d.top_routes[0].score - d.top_routes[1].score, abs=1e-3)


def test_threshold_and_margin_decline(routes, fake_encoder):
    assert SemanticRoutingStrategy(routes, fake_encoder, threshold=0.99).route("capital of peru") is None
    assert SemanticRoutingStrategy(routes, fake_encoder, threshold=0.0, margin=1.5).route("capital of peru") is None
    ranking = SemanticRoutingStrategy(routes, fake_encoder).rank("capital of peru")
    assert [s.route for s in ranking.scores][0] == "knowledge" and len(ranking.scores) == 4


def test_exemplars_and_live_additions_change_routing(routes, fake_encoder):
    query = "zorblax frobnicate quux"
    base = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.5, top_k=1)
    assert base.route(query) is None
    with_exemplars = SemanticRoutingStrategy(
        routes, fake_encoder, threshold=0.5, top_k=1, exemplars=[("zorblax frobnicate quux", "math")]
    )
    assert with_exemplars.route(query).route == "math"
    size = base.size
    base.add_utterances([("frobnicate the zorblax quux", "code")])
    assert base.size == size + 1 and base.route(query).route == "code"
    with pytest.raises(ConfigError, match="Route 'cooking' is unknown"):
        base.add_utterances([("x", "cooking")])
    with pytest.raises(ConfigError, match="Exemplar route 'cooking' is unknown"):
        SemanticRoutingStrategy(routes, fake_encoder, exemplars=[("x", "cooking")])


def test_utterance_embeddings_are_cached_on_disk(routes, fake_encoder, tmp_path):
    SemanticRoutingStrategy(routes, fake_encoder, cache_dir=tmp_path)
    assert fake_encoder.calls == 1 and list(tmp_path.glob("utterances-*.npy"))
    s = SemanticRoutingStrategy(routes, fake_encoder, cache_dir=tmp_path)
    assert fake_encoder.calls == 1  # restart: nothing re-embedded
    s.route("hello")
    assert fake_encoder.calls == 2
    changed = [Route("chitchat", "zoomer", utterances=("hi there",)), *routes]
    SemanticRoutingStrategy(changed, fake_encoder, cache_dir=tmp_path)
    assert fake_encoder.calls == 3  # other utterances: other key


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 2.0}, "threshold"), ({"threshold": "high"}, "must be a number"),
    ({"margin": -0.1}, "margin"), ({"top_k": 0}, "top_k"),
])
def test_bad_settings_are_named(routes, fake_encoder, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SemanticRoutingStrategy(routes, fake_encoder, **kwargs)


def test_routes_without_utterances_never_win(routes, fake_encoder):
    s = SemanticRoutingStrategy([*routes, Route("empty", "zoomer")], fake_encoder, threshold=-1)
    assert "empty" not in [sc.route for sc in s.rank("hello").scores]
    with pytest.raises(ConfigError, match="No route has utterances"):
        SemanticRoutingStrategy([Route("x", "e")], fake_encoder)


@pytest.fixture(scope="module")
def default_routes():
    from router.config import build_routes, load_config

    cfg = load_config()
    return build_routes(cfg.routes, cfg.experts)


@pytest.mark.model
@pytest.mark.parametrize("query, route", [
    ("hey could u whip up a golang func that parses a csv file and returns structs", "code"),
    ("A farmer sells 14 crates of 18 apples each at $0.40 an apple. How much does he earn?", "math"),
    ("who painted the ceiling of the sistine chapel", "knowledge"),
    ("good morning! how has your day been so far?", "chitchat"),
    ("Compose a short poem about autumn rain on a tin roof", "creative"),
])
def test_real_model_routes_a_handful_of_queries(default_routes, onnx_encoder, query, route):
    ranking = SemanticRoutingStrategy(default_routes, onnx_encoder).rank(query)
    assert ranking.best.route == route, ranking.scores[:3]


def test_remove_utterance_undoes_an_addition(routes, fake_encoder):
    s = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.5, top_k=1)
    size = s.size
    s.add_utterances([("frobnicate the zorblax quux", "code")])
    assert s.route("zorblax frobnicate quux").route == "code"
    assert s.remove_utterance("frobnicate the zorblax quux", "code") is True
    assert s.size == size and s.route("zorblax frobnicate quux") is None
    assert s.remove_utterance("frobnicate the zorblax quux", "code") is False


def test_route_thresholds_apply_to_the_winning_route(routes, fake_encoder):
    query = "what is the capital of france"
    score = SemanticRoutingStrategy(routes, fake_encoder).rank(query).best.score
    strict = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.0, route_thresholds={"knowledge": score + 0.01})
    assert strict.route(query) is None and strict.threshold_for("knowledge") == pytest.approx(score + 0.01)
    assert strict.threshold_for("code") == 0.0
    lenient = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.99, route_thresholds={"knowledge": score - 0.01})
    assert lenient.route(query).route == "knowledge"
    other = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.99, route_thresholds={"code": 0.0})
    assert other.route(query) is None  # only the winning route's own threshold counts
    with pytest.raises(ConfigError, match="unknown route 'cooking'"):
        SemanticRoutingStrategy(routes, fake_encoder, route_thresholds={"cooking": 0.3})
    with pytest.raises(ConfigError, match="route_thresholds.code"):
        SemanticRoutingStrategy(routes, fake_encoder, route_thresholds={"code": 3})
