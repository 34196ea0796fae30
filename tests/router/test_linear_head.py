import threading

import numpy as np
import pytest

from router.errors import ConfigError
from router.schema import Route
from router.strategies.linear_head import LinearHead, shape_features
from router.strategies.semantic import SemanticRoutingStrategy


def test_shape_features():
    assert shape_features("where is the eiffel tower") == [0.41, 0.0, 0.0, 0.0, 1.0, 1.0]
    long = "Summarize:\n" + "The Council met on Monday. " * 40
    length, caps, question, lines, lower, short_wh = shape_features(long)
    assert length > 0.8 and 0 < caps < 0.2 and (question, lines, lower, short_wh) == (0.0, 1.0, 0.0, 0.0)
    assert shape_features("   ") == [0.17, 0.0, 0.0, 0.0, 0.0, 0.0]


def _fit(head, texts, labels, added, fake_encoder):
    return head.fit(texts, np.array(labels), fake_encoder.encode(texts), np.array(added), n_routes=3)


def test_examples_added_at_run_time_weigh_more(fake_encoder):
    texts = ["alpha beta", "alpha beta", "gamma delta", "epsilon zeta"]
    query = fake_encoder.encode(["alpha beta"])[0]
    heavy = _fit(LinearHead(added_weight=5.0), texts, [0, 1, 2, 2], [False, True, False, False], fake_encoder)
    light = _fit(LinearHead(added_weight=0.2), texts, [0, 1, 2, 2], [False, True, False, False], fake_encoder)
    assert np.argmax(heavy.decision("alpha beta", query)) == 1  # the correction wins
    assert np.argmax(light.decision("alpha beta", query)) == 0  # the configured utterance wins


@pytest.mark.parametrize("labels", [[0, 1, 2, 2], [0, 1, 1, 0]])
def test_routing_weights_give_the_svm_decision(fake_encoder, labels):
    texts = ["alpha beta beta", "Gamma delta?", "epsilon zeta\nline", "where is eta"]
    head = _fit(LinearHead(), texts, labels, [False, True, False, True], fake_encoder)
    for text in [*texts, "beta gamma zeta unknown", "nothing known here"]:
        vector = fake_encoder.encode([text])[0]
        sklearn_values = head.model.decision_function(head.features([text], vector[None, :]))[0]
        ours = head.decision(text, vector)
        if len(head.model.classes_) == 2:
            assert ours[1] - ours[0] == pytest.approx(sklearn_values, abs=1e-9) and ours[2] == 0
        else:
            assert ours == pytest.approx(sklearn_values, abs=1e-9)


def test_one_route_or_no_words_leaves_similarity_to_decide(fake_encoder):
    one = _fit(LinearHead(), ["alpha", "beta"], [0, 0], [False, False], fake_encoder)
    assert one.model is None and not one.decision("alpha", fake_encoder.encode(["alpha"])[0]).any()
    marks = _fit(LinearHead(), ["?!", "..."], [0, 1], [False, False], fake_encoder)
    assert marks.model is None


@pytest.mark.parametrize("kwargs, message", [
    ({"c": 0}, "head.c must be > 0"), ({"knn_weight": -1}, "head.knn_weight"),
    ({"added_weight": "x"}, "head.added_weight"), ({"head_chars": 0}, "head_chars"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LinearHead(**kwargs)


def test_head_orders_the_routes_and_the_threshold_checks_similarity(routes, fake_encoder):
    s = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.1, head=LinearHead())
    ranking = s.rank("what is the capital of france")
    assert ranking.by == "linear head" and ranking.best.route == "knowledge"
    plain = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.1).rank("what is the capital of france")
    assert plain.by == "similarity"
    # The scores shown are similarities whatever ordered them, so both rankings carry the same numbers.
    assert {r.route: r.score for r in ranking.scores} == pytest.approx({r.route: r.score for r in plain.scores})
    decision = s.route("what is the capital of france")
    assert decision.route == "knowledge" and "linear head" in decision.reason
    strict = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.99, head=LinearHead())
    assert strict.route("what is the capital of france") is None


def test_a_large_knn_weight_gives_the_similarity_order(routes, fake_encoder):
    blended = SemanticRoutingStrategy(routes, fake_encoder, head=LinearHead(knn_weight=1e6))
    plain = SemanticRoutingStrategy(routes, fake_encoder)
    for query in ("solve 3x = 9 for x", "pretend you are a sorting function", "who wrote hamlet"):
        ranked = blended.rank(query)
        similarities = [r.score for r in ranked.scores]  # the head only breaks ties
        assert similarities == sorted(similarities, reverse=True)
        assert ranked.best == plain.rank(query).best


def test_a_correction_is_learned_at_once_and_undone(routes, fake_encoder):
    s = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.0, head=LinearHead())
    query = "zorblax frobnicate quux"
    first = s.route(query).route
    target = "math" if first != "math" else "code"
    s.add_utterances([(query, target)])
    assert s.route(query).route == target
    assert s.remove_utterance(query, target) is True
    assert s.route(query).route == first


def test_concurrent_corrections_are_all_kept_while_others_route(routes, fake_encoder):
    s = SemanticRoutingStrategy(routes, fake_encoder, threshold=0.0, head=LinearHead())
    size, errors = s.size, []

    def correct(n):
        try:
            for i in range(5):
                s.add_utterances([(f"writer {n} example {i}", "math" if i % 2 else "code")])
        except Exception as e:  # surfaced below
            errors.append(e)

    def route():
        try:
            for _ in range(30):
                s.route("what is 15 percent of 240")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=correct, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=route) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and s.size == size + 30


def test_removing_the_last_example_is_refused(fake_encoder):
    s = SemanticRoutingStrategy([Route("only", "e", utterances=("alpha",))], fake_encoder, head=LinearHead())
    with pytest.raises(ConfigError, match="last example"):
        s.remove_utterance("alpha", "only")


@pytest.mark.model
def test_real_model_learns_a_task_phrasing_from_three_corrections(onnx_encoder):
    from router.config import build_router, load_config

    router = build_router(load_config(["router=hybrid"]), encoder=onnx_encoder)
    query = 'Is the following sentence plausible? "The goalkeeper dunked from the three-point line."'
    before = router.route(query)
    corrections = [
        'Is the following sentence plausible? "The quarterback hit a home run in the fourth quarter."',
        'Is the following sentence plausible? "The striker was called for a foul in the end zone."',
        'Is the following sentence plausible? "The pitcher scored a penalty kick."',
    ]
    router.semantic.add_utterances([(c, "reasoning") for c in corrections])
    after = router.route(query)
    assert before.route != "reasoning" and after.route == "reasoning", (before, after)
