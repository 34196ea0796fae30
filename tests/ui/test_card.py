"""The routing card says what happened, in an order and in units that agree with the numbers it shows."""

from router.schema import KeywordMatch, RouteDecision, RouteScore
from ui.card import error_markdown, plain, routing_card

HEAD_DEFAULT = RouteDecision(
    "knowledge", "zoomer", "default", 0.192, 0.05,
    top_routes=(RouteScore("reasoning", 0.192), RouteScore("chitchat", 0.200), RouteScore("math", 0.1)),
    reason="no keyword rule fired; best route 'reasoning' scored 0.192 with margin 0.050 (needs >= 0.2 and >= 0.0)")
HEAD_L2 = RouteDecision("code", "professor", "L2", 0.303, 0.97,
                        top_routes=(RouteScore("code", 0.303), RouteScore("math", 0.305)),
                        reason="the linear head over words and embeddings ranks 'code' first")
SIMILARITY_L2 = RouteDecision("code", "professor", "L2", 0.5, 0.2,
                              top_routes=(RouteScore("code", 0.5), RouteScore("math", 0.3)),
                              reason="nearest utterances belong to 'code'")


def _table_routes(card: str) -> list[str]:
    return [line.split("|")[1].strip(" ✓") for line in card.splitlines() if line.startswith("| ") and "`" in line]


def test_routes_are_listed_in_the_order_of_the_scores_shown():
    assert _table_routes(routing_card(HEAD_L2, None)) == ["math", "code"]
    assert _table_routes(routing_card(HEAD_DEFAULT, None)) == ["chitchat", "reasoning", "math"]


def test_the_default_reason_names_the_route_that_scored_highest():
    card = routing_card(HEAD_DEFAULT, None)
    assert "highest similarity 'chitchat' 0.200" in card and "linear head ranked 'reasoning'" in card
    assert "best route 'reasoning' scored" not in card


def test_an_unsure_query_sent_to_the_likeliest_expert_says_so():
    decision = RouteDecision(
        "summarize", "professor", "default", 0.337, 0.119, scale="probability",
        top_routes=(RouteScore("summarize", 0.337), RouteScore("math", 0.218), RouteScore("chitchat", 0.05)),
        reason="no keyword rule fired; the highest score was 'summarize' at 0.337 with margin 0.119 (needs >= 0.4 "
               "and >= 0.0); so it goes to the expert holding the most probability, 'professor' (0.91), on its best "
               "route 'summarize'")
    card = routing_card(decision, None)
    assert "highest probability 'summarize' 0.337 (needs >= 0.4 and >= 0.0)" in card
    assert "the expert holding the most probability, 'professor' (0.91)" in card and "default route" not in card
    assert "sent to the default route 'knowledge'" in routing_card(HEAD_DEFAULT, None)


def test_the_margin_says_its_units():
    assert "margin 0.970 (linear-head units)" in routing_card(HEAD_L2, None)
    assert "lead over the next route -0.002" in routing_card(HEAD_L2, None)
    assert "margin 0.200 (similarity)" in routing_card(SIMILARITY_L2, None)


def test_after_a_fallback_the_card_names_who_answered():
    card = routing_card(HEAD_L2, "tinyllama", answered_by="zoomer")
    assert "**zoomer** answered (`tinyllama`)" in card and "professor failed" in card


def test_a_long_pattern_is_shortened_with_the_full_text_on_hover():
    pattern = r"python ?3?\s?(code|script|function|program|class|list|dict|set|tuple|generator)*"
    rule = KeywordMatch("code", pattern, 0, 15, "python function")
    card = routing_card(RouteDecision("code", "professor", "L1", 1.0, 1.0, rule=rule), None)
    assert f'title="{pattern}"' in card and "…</code>" in card and "|" not in card.split("title=")[1].split(">")[1]


def test_a_context_is_shown_when_the_decision_has_one():
    decision = RouteDecision("code", "professor", "L2", 0.5, 0.2, top_routes=SIMILARITY_L2.top_routes,
                             context="earlier: write a sort in python")
    assert "context: “earlier: write a sort in python”" in routing_card(decision, None)


def test_two_experts_failures_are_a_list_and_popups_have_no_markdown():
    error = "professor (llama3.2:3b): not reachable zoomer (tinyllama): model not pulled"
    text = error_markdown(error, {"professor": "llama3.2:3b", "zoomer": "tinyllama"})
    assert text.splitlines()[1:] == ["- professor (llama3.2:3b): not reachable", "- zoomer (tinyllama): model not pulled"]
    assert plain("asking **zoomer** (`tinyllama`)") == "asking zoomer (tinyllama)"


def test_the_trained_tier_card_speaks_of_probabilities(fake_encoder):
    # the trained L2's scores are probabilities: the card must not call them similarities
    from router.config import build_router, load_config

    router = build_router(load_config(["router=trained", "router.semantic.corpus=null", "router.semantic.cache_dir=null"]),
                          encoder=fake_encoder)
    decision = router.route("zorblax frobnicate quux")
    assert decision.tier == "L2" and decision.scale == "probability"
    assert decision.to_dict()["scale"] == "probability"
    card = routing_card(decision, None)
    assert f"probability {decision.score:.3f} · lead over the next route" in card
    assert "| route | probability | |" in card and "similarity" not in card and "margin" not in card
    kept = router.route("why?", [{"role": "user", "content": "zorblax frobnicate quux"}])
    assert kept.tier == "context" and kept.top_routes and kept.scale == "probability"
    kept_card = routing_card(kept, None)
    # the table is the message's own ranking, and the kept decision's margin (the earlier turn's) is not shown
    assert "| route | probability of the message alone | |" in kept_card
    assert "margin" not in kept_card.split("context:")[0] and "linear-head" not in kept_card
