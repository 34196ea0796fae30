"""TrainedRoutingStrategy: probabilities, thresholds, corrections at once (and undone), determinism."""

import json

import numpy as np
import pytest

from router.config import build_router, load_config
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.strategies.trained import TrainedRoutingStrategy
from router.strategies.trained_model import dataset_weights

CORPUS = [
    ("sort this array in python", "code", "snippets"), ("write a java class for a stack", "code", "snippets"),
    ("reverse a linked list in c", "code", "snippets"), ("what is 7 times 8", "math", "arithmetic"),
    ("add 15 and 27", "math", "arithmetic"), ("divide 100 by 4", "math", "arithmetic"),
    ("capital of chile", "knowledge", "trivia"), ("who painted the mona lisa", "knowledge", "trivia"),
    ("pretend you are a wizard", "roleplay", "personas"), ("act like a grumpy chef", "roleplay", "personas"),
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"query": q, "route": r, "dataset": d}) + "\n" for q, r, d in CORPUS))
    return path


def test_ranks_routes_by_probability(routes, fake_encoder, corpus):
    s = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus)
    ranking = s.rank("write a python function to sort a list")
    probs = [r.score for r in ranking.scores]
    assert ranking.best.route == "code" and sum(probs) == pytest.approx(1.0)
    assert probs == sorted(probs, reverse=True) and ranking.margin == pytest.approx(probs[0] - probs[1])
    d = s.decide(ranking)
    assert (d.route, d.expert, d.tier) == ("code", "professor", "L2") and len(d.top_routes) == 3


def test_threshold_is_a_probability(routes, fake_encoder, corpus):
    assert TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, threshold=0.99).route("zorblax frobnicate quux") is None
    sure = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, route_thresholds={"knowledge": 0.0})
    assert sure.threshold_for("knowledge") == 0.0 and sure.threshold_for("code") == sure.threshold
    with pytest.raises(ConfigError, match="probabilities"):
        TrainedRoutingStrategy(routes, fake_encoder, threshold=1.5)
    with pytest.raises(ConfigError, match="unknown"):
        TrainedRoutingStrategy(routes, fake_encoder, exemplars=[("hi", "nope")])


def test_a_correction_counts_at_once_and_can_be_undone(routes, fake_encoder, corpus):
    s = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus)
    query = "zorblax frobnicate quux"
    before = s.rank(query).best.route
    target = "math" if before != "math" else "roleplay"
    size = s.size
    s.add_utterances([(query, target)])
    assert s.size == size + 1 and s.route(query).route == target
    assert s.remove_utterance(query, target) and s.rank(query).best.route == before
    assert not s.remove_utterance(query, target)
    with pytest.raises(ConfigError, match="unknown"):
        s.add_utterances([(query, "nope")])


def test_deterministic(routes, fake_encoder, corpus):
    a = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus).scores("fix my javascript bug")
    b = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus).scores("fix my javascript bug")
    assert np.array_equal(a, b)


def test_dataset_weights_balance_big_datasets():
    w = dataset_weights(["big"] * 9 + ["small"], 1.0)
    assert w[:9].sum() == pytest.approx(w[9]) and w.mean() == pytest.approx(1.0)


def test_behind_the_keyword_tier(routes, fake_encoder, corpus):
    from router.strategies.keyword import KeywordRoutingStrategy

    router = HybridRouter(routes, "knowledge", KeywordRoutingStrategy(routes),
                          TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus))
    assert router.route("I want you to act as a pirate").tier == "L1"
    assert router.route("reverse a linked list in java").route == "code"


def test_config_builds_the_shipped_router(fake_encoder):
    router = build_router(load_config(["router=trained"]), encoder=fake_encoder)
    assert isinstance(router.semantic, TrainedRoutingStrategy) and router.semantic.size > 3000
    assert router.route("Write a haiku about autumn").route in router.routes


def test_the_corpus_can_be_several_files(routes, fake_encoder, corpus, tmp_path):
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"query": "what is 2 plus 2", "route": "math", "dataset": "sums"}) + "\n")
    one = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, refit_after=None)
    both = TrainedRoutingStrategy(routes, fake_encoder, corpus=[str(corpus), more], refit_after=None)
    assert both.size == one.size + 1 and both.datasets == one.datasets + 1
    shipped = load_config(["router=trained"]).router.semantic.corpus
    assert list(shipped) == ["corpus/routing_train.jsonl", "corpus/chat_examples.jsonl"]


@pytest.mark.model
def test_real_model(routes, onnx_encoder, corpus):
    s = TrainedRoutingStrategy(routes, onnx_encoder, corpus=corpus)
    assert s.route("What is the capital city of Argentina?").route == "knowledge"


def test_corrections_are_refitted_in_the_background_and_undone(routes, fake_encoder, corpus):
    s = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, refit_after=0.05)
    fresh = s.model
    query = "zorblax frobnicate quux"
    target = "math" if s.rank(query).best.route != "math" else "roleplay"
    s.add_utterances([(query, target)])
    assert s.settle(timeout=60) and s.fitted_corrections == 1 and s.model is not fresh
    assert s.route(query).route == target
    assert s.remove_utterance(query, target) and s.settle(timeout=60) and s.fitted_corrections == 0
    # back to exactly the model without corrections: the refit is deterministic
    assert np.array_equal(s.scores("fix my javascript bug"),
                          TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus).scores("fix my javascript bug"))


def test_refit_can_be_turned_off(routes, fake_encoder, corpus):
    s = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, refit_after=None)
    fresh = s.model
    s.add_utterances([("zorblax frobnicate quux", "math")])
    assert s.settle(timeout=1) and s.model is fresh and s.route("zorblax frobnicate quux").route == "math"


def test_the_corrected_query_itself_goes_where_its_latest_correction_says_at_once(routes, fake_encoder, corpus):
    s = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, refit_after=None)
    query = "what is the capital city of argentina"  # a clear knowledge question: similarity alone would not move it
    assert s.route(query).route == "knowledge"
    s.add_utterances([(query, "math")])
    assert s.route(query).route == "math" and s.rank(query).best.score > 0.99
    s.add_utterances([(query, "code")])  # corrected again: the latest correction of the same query wins
    assert s.route(query).route == "code"
    assert s.route("reverse a linked list in java").route == "code"  # far from the correction: unchanged
    assert s.route("who wrote the odyssey").route != "math"


def test_the_fit_is_cached_by_what_it_was_fitted_on(routes, fake_encoder, corpus, tmp_path, monkeypatch):
    from router.strategies import trained_model

    first = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("trained-*.pkl"))) == 1

    def no_fit(*args, **kwargs):
        raise AssertionError("refitted although a fit of the same rows and settings was cached")

    monkeypatch.setattr(trained_model.CorpusModel, "fit", no_fit)
    again = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, cache_dir=tmp_path)
    assert np.array_equal(first.scores("sort a list in go"), again.scores("sort a list in go"))
    with pytest.raises(AssertionError, match="refitted"):  # other settings: another fit
        TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, cache_dir=tmp_path, c=1.0)
    monkeypatch.undo()
    next(tmp_path.glob("trained-*.pkl")).write_bytes(b"not a pickle")  # damaged: refitted and rewritten
    assert np.array_equal(TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, cache_dir=tmp_path)
                          .scores("sort a list in go"), first.scores("sort a list in go"))


def test_a_route_with_cues_is_ranked_only_for_queries_that_show_one(routes, fake_encoder, corpus):
    cued = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, route_cues={"roleplay": r"\b(pretend|act)\b"})
    plain = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus)
    query = "a grumpy wizard chef"  # shares the personas' words, sets no persona up
    assert plain.rank(query).best.route == "roleplay"
    ranking = cued.rank(query)
    assert ranking.best.route != "roleplay" and dict((s.route, s.score) for s in ranking.scores)["roleplay"] < 1e-6
    assert cued.rank("pretend to be a grumpy wizard chef").best.route == "roleplay"
    # a correction of the very query still wins: the user said where it goes
    cued.add_utterances([(query, "roleplay")])
    assert cued.rank(query).best.route == "roleplay"
    with pytest.raises(ConfigError, match="unknown route"):
        TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, route_cues={"nope": "x"})
    with pytest.raises(ConfigError, match="regular expression"):
        TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, route_cues={"roleplay": "(unclosed"})


def test_character_features_match_scikit_learn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from router.strategies.trained_model import _char_dot, _word_columns

    texts = ["Sort this ARRAY in python", "write a java class", "İstanbul straße ﬁle", "tabs\tand\nnew  lines"]
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(texts)
    weights = np.random.default_rng(0).normal(size=(len(chars.vocabulary_), 3))
    columns = _word_columns(chars)
    for text in [*texts, "sort  the java array", "", "zzz"]:
        expected = chars.transform([text]).toarray()[0] @ weights
        assert np.allclose(_char_dot(text, columns, chars.idf_, weights), expected)


@pytest.mark.parametrize(("message", "persona"), [
    ("I want you to act as a travel guide", True), ("Imagine you are a medieval knight", True),
    ("From now on respond as Yoda", True), ("Be my therapist for a while", True),
    ("Pretend to be a pirate and tell me about your ship", True), ("As Sherlock Holmes, explain the clue", True),
    ("Du bist ab jetzt Sherlock Holmes, ich bin Watson", True), ("你现在扮演一个客栈老板，我是江湖客", True),
    ("Давай поиграем: ты Шерлок Холмс", True), ("今からあなたはツンデレな幼なじみです", True),
    ("Which methods did Socrates employ to challenge the prevailing thoughts of his time?", False),
    ("Write a short story about a dragon", False), ("what is 17 times 23", False),
])
def test_the_shipped_roleplay_cue(message, persona):
    import re

    from omegaconf import OmegaConf

    from router.config import CONFIG_DIR

    cue = re.compile(OmegaConf.load(CONFIG_DIR / "router" / "trained.yaml").semantic.route_cues.roleplay, re.I)
    assert bool(cue.search(message)) == persona


@pytest.mark.model
def test_the_shipped_chat_queries_route_well(onnx_encoder):
    # docs/chat_queries.jsonl: 1,368 hand-written chat messages in eleven sets (long, messy, some not in
    # English) from writers who saw neither the router nor its data; sets i-q were measured blind before
    # anything was written from them (README, "Chat messages as people write them")
    from collections import defaultdict
    from pathlib import Path

    path = Path(__file__).parents[2] / "docs" / "chat_queries.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    router = build_router(load_config([]), encoder=onnx_encoder)
    right: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        right[row["dataset"]].append(router.route(row["query"]).route == row["route"])
    share = {name: sum(v) / len(v) for name, v in right.items()}
    assert len(rows) == 1368 and len(share) == 11
    assert sum(share.values()) / len(share) >= 0.91 and min(share.values()) >= 0.8, share


@pytest.mark.model
def test_messages_in_other_languages_route(onnx_encoder):
    # docs/chat_queries_multilingual.jsonl: 126 messages in 22 languages, measured blind (README); the
    # encoder reads English, so they lean on the chat examples in eight other languages
    from pathlib import Path

    path = Path(__file__).parents[2] / "docs" / "chat_queries_multilingual.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    router = build_router(load_config([]), encoder=onnx_encoder)
    expert = {name: route.expert for name, route in router.routes.items()}
    decided = [router.route(row["query"]).route for row in rows]
    accuracy = sum(d == row["route"] for d, row in zip(decided, rows, strict=True)) / len(rows)
    expert_accuracy = sum(expert[d] == expert[row["route"]] for d, row in zip(decided, rows, strict=True)) / len(rows)
    assert len(rows) == 126 and len({row["lang"] for row in rows}) == 22
    assert accuracy >= 0.68 and expert_accuracy >= 0.84, (accuracy, expert_accuracy)


def test_an_unsure_query_goes_to_the_expert_with_the_most_probability(routes, fake_encoder, corpus):
    from collections import Counter

    query = "zorblax frobnicate quux"
    strategy = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, threshold=0.99)
    expert_of = {r.name: r.expert for r in routes}
    mass: Counter = Counter()
    for s in strategy.rank(query).scores:
        mass[expert_of[s.route]] += s.score
    expert = mass.most_common(1)[0][0]
    best = next(s.route for s in strategy.rank(query).scores if expert_of[s.route] == expert)

    decision = HybridRouter(routes, "knowledge", None, strategy, unsure="expert").route(query)
    assert (decision.route, decision.expert, decision.tier) == (best, expert, "default")
    assert f"'{expert}'" in decision.reason and f"'{best}'" in decision.reason
    assert HybridRouter(routes, "knowledge", None, strategy).route(query).route == "knowledge"  # unsure=default
    sure = TrainedRoutingStrategy(routes, fake_encoder, corpus=corpus, threshold=0.0)
    assert HybridRouter(routes, "knowledge", None, sure, unsure="expert").route(query).tier == "L2"


def test_unsure_expert_needs_probabilities(routes, fake_encoder):
    from router.strategies.semantic import SemanticRoutingStrategy

    with pytest.raises(ConfigError, match="probabilities"):
        HybridRouter(routes, "knowledge", None, SemanticRoutingStrategy(routes, fake_encoder), unsure="expert")
    without_l2 = HybridRouter(routes, "knowledge", None, None, unsure="expert")  # the rule audit's router
    assert without_l2.route("zorblax frobnicate quux").route == "knowledge"
    with pytest.raises(ConfigError, match="router.unsure"):
        HybridRouter(routes, "knowledge", unsure="sometimes")
