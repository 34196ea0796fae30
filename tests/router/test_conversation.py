"""Conversation-aware routing: follow-ups keep their conversation's route, new topics route alone."""

import pytest

from router.conversation import ConversationPolicy, follow_up_cues, user_turns
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.schema import Message, Route
from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy

CODE_TURN = [{"role": "user", "content": "write a python function to sort a list"},
             {"role": "assistant", "content": "def sort_list(xs): return sorted(xs)"}]


def build(routes, encoder, policy=None):
    policy = policy or ConversationPolicy()
    return HybridRouter(routes, "knowledge", keyword=KeywordRoutingStrategy(routes),
                        semantic=SemanticRoutingStrategy(routes, encoder, threshold=0.4), conversation=policy)


@pytest.fixture
def router(routes, fake_encoder):
    return build(routes, fake_encoder)


def test_without_history_a_query_routes_exactly_as_alone(router):
    alone, with_empty = router.route("what is the capital of peru"), router.route("what is the capital of peru", [])
    assert with_empty.context == "" and with_empty.conversation is None
    assert {**alone.to_dict(), "timings": None} == {**with_empty.to_dict(), "timings": None}


def test_a_follow_up_keeps_the_conversation_route(router):
    assert router.route("Can you rewrite your previous answer?").route != "code"
    d = router.route("Can you rewrite your previous answer?", CODE_TURN)
    assert (d.route, d.expert, d.tier) == ("code", "professor", "context")
    assert d.context == "follow-up: kept 'code' from turn 1"
    assert d.conversation.kind == "follow-up" and d.conversation.turn == 2 and "an earlier answer" in d.conversation.cues
    assert d.to_dict()["conversation"]["conversation_route"] == "code"


def test_a_confident_new_topic_wins(router):
    d = router.route("I want you to act as a pirate", CODE_TURN)
    assert (d.route, d.tier) == ("roleplay", "L1")
    assert d.context == "new topic (was 'code')" and d.conversation.kind == "new topic"


def test_the_route_carries_over_several_follow_ups(router):
    history = [*CODE_TURN, {"role": "user", "content": "why?"}, {"role": "assistant", "content": "because"}]
    d = router.route("Now make it shorter.", history)
    assert d.route == "code" and d.context == "follow-up: kept 'code' from turn 1" and d.conversation.turn == 3


def test_disabled_routes_every_message_alone(routes, fake_encoder):
    off = build(routes, fake_encoder, ConversationPolicy(enabled=False))
    d = off.route("Can you rewrite your previous answer?", CODE_TURN)
    assert d.tier != "context" and d.context == "" and d.conversation is None


def test_history_of_messages_or_dicts():
    history = [Message("user", "a"), {"role": "assistant", "content": "b"}, {"role": "user", "content": " "},
               Message("user", "c")]
    assert user_turns(history, 6) == ["a", "c"] and user_turns(history, 1) == ["c"]


@pytest.mark.parametrize(("message", "earlier", "expected"), [
    ("Take your previous response and rephrase it as a limerick.", [], "anaphora"),
    ("What about a ternary tree?", [], "anaphora"),
    ("What do you mean by that?", [], "anaphora"),
    ("Summarize the story in three bullet points.", ["Write a short story about a dragon"], "referenced"),
    ("What is the capital of Peru?", ["Write a short story about a dragon"], None),
])
def test_follow_up_cues(message, earlier, expected):
    cues = follow_up_cues(message, earlier)
    found = "anaphora" if cues.anaphora else "referenced" if cues.referenced else None
    assert found == expected


def test_cue_scanning_is_bounded():
    cues = follow_up_cues("your previous answer " + "word " * 200_000)
    assert cues.anaphora and cues.words == 200_003


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="Unknown key.*'enable'.*Allowed: enabled"):
        ConversationPolicy.from_mapping({"enable": False})
    with pytest.raises(ConfigError, match="max_turns"):
        ConversationPolicy(max_turns=0)
    with pytest.raises(ConfigError, match="unsure_margin"):
        ConversationPolicy(unsure_margin=-0.1)
    assert ConversationPolicy.from_mapping({"asides": ["chitchat"], "persona_absorbs": None}).asides == ("chitchat",)


def test_corrections_reroute_remembered_conversations(router):
    router.route("why?", CODE_TURN)
    router.learn([("write a python function to sort a list", "math")])
    d = router.route("Can you rewrite your previous answer?", CODE_TURN)
    assert d.route == router.route("write a python function to sort a list").route


@pytest.mark.parametrize("name", ["hybrid", "trained"])
def test_each_router_config_carries_its_own_conversation_settings(name):
    # the trained L2's margins are probabilities, the hybrid's similarity-head scores: each file sets its own
    from omegaconf import OmegaConf

    from router.config import load_config

    block = load_config([f"router={name}"]).router.conversation
    policy = ConversationPolicy.from_mapping(OmegaConf.to_container(block))
    assert policy.enabled and 0 < policy.confident_margin < 1


def test_a_confident_message_that_points_back_still_follows(router):
    # "your previous answer" is a follow-up whatever the margin it would get alone, in any router's units
    d = router.route("Rewrite your previous answer in French", CODE_TURN)
    assert d.route == router.route(CODE_TURN[0]["content"]).route and d.conversation.kind in ("follow-up", "same topic")


PERSONA = "I want you to act as a pirate captain. From now on answer every question in pirate speak."


def persona_router(routes, encoder):
    return build(routes, encoder, ConversationPolicy(persona_routes=("roleplay",)))


def test_a_standing_persona_keeps_even_a_confident_new_question(routes, fake_encoder):
    # "from now on" makes later messages the persona's input, whatever they look like alone
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": PERSONA}, {"role": "assistant", "content": "Arr!"}]
    assert router.route("solve for x: 2x + 3 = 7").route == "math"
    d = router.route("solve for x: 2x + 3 = 7", history)
    assert (d.route, d.expert, d.tier) == ("roleplay", "zoomer", "context")
    assert d.context == "follow-up: kept 'roleplay' from turn 1"
    assert d.conversation.cues[0] == "a standing persona" and "'From now on'" in d.reason


def test_the_persona_stands_over_several_turns_until_the_user_leaves_it(routes, fake_encoder):
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": PERSONA}, {"role": "user", "content": "solve for x: x + 1 = 2"}]
    assert router.route("what is the capital of peru", history).route == "roleplay"
    leave = router.route("Stop pretending now. Solve for x: 3x = 9", history)
    assert leave.route == "math" and leave.conversation.kind == "new topic"
    # once left, the persona no longer stands, even where the leaving message itself stayed in roleplay
    left = [*history, {"role": "user", "content": "ok, stop the roleplay, pretend you are a pirate captain no more"}]
    assert router.route("solve for x: 3x = 9", left).route == "math"


def test_a_persona_without_standing_words_stays_until_a_clear_request_elsewhere(routes, fake_encoder):
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": "I want you to act as a pirate captain"}]
    # a line of dialogue is the persona's input, whatever it looks like alone
    talk = router.route("what is the capital of peru", history)
    assert talk.route == "roleplay" and talk.conversation.cues[0] == "a standing persona"
    # a request that a rule sends elsewhere leaves it
    d = router.route("solve for x: 2x + 3 = 7", history)
    assert d.route == "math" and d.conversation.kind == "new topic"


def test_setting_up_a_persona_is_a_new_topic_even_when_it_names_the_old_one(routes, fake_encoder):
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": "who was the first president of the united states"}]
    d = router.route("I want you to act as the first president", history)
    assert (d.route, d.tier, d.conversation.kind) == ("roleplay", "L1", "new topic")


def test_an_announced_new_topic_wins_over_shared_words(router):
    message = "who was the first president on the list?"
    assert router.route(message, CODE_TURN).route == "code"  # "the list" points at the first turn
    d = router.route(f"Different question: {message}", CODE_TURN)
    assert d.conversation.kind == "new topic" and d.route == router.route(f"Different question: {message}").route
    assert d.conversation.cues == ("announces a new topic ('Different question')",)
    # the announcement does not hide a message that still points back
    assert router.route("btw, can you make it shorter?", CODE_TURN).route == "code"


def test_a_fragment_follows_the_conversation(router):
    d = router.route("where?", CODE_TURN)
    assert d.route == "code" and "a fragment that needs the conversation" in d.reason
    # words in another script are words the English cues cannot read, not a fragment
    assert "a fragment" not in router.route("好的谢谢。另外帮我写一封邮件给房东", CODE_TURN).reason


def test_an_acknowledgement_leaves_the_task_open(router):
    import dataclasses

    from router.schema import ConversationContext

    policy = router.conversation
    first = router.route(CODE_TURN[0]["content"])
    thread = policy.next_thread(None, CODE_TURN[0]["content"], first, 1)
    ack = dataclasses.replace(router.route("love it"), route="knowledge",
                              conversation=ConversationContext("new topic", 2, "code", 1, "knowledge"))
    assert policy.next_thread(thread, "love it!", ack, 2) is thread
    # a new request in its place starts a new thread
    assert policy.next_thread(thread, "who was the first president", ack, 2).route == "knowledge"


def test_standing_words_outside_a_persona_route_keep_nothing(routes, fake_encoder):
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": "From now on, write a python function for every task I give you"}]
    assert router.route("solve for x: 2x + 3 = 7", history).route == "math"


def test_leaving_the_persona_in_character_ends_it(routes, fake_encoder):
    import dataclasses

    from router.schema import ConversationContext

    policy = persona_router(routes, fake_encoder).conversation
    first = persona_router(routes, fake_encoder).route(PERSONA)
    thread = policy.next_thread(None, PERSONA, first, 1)
    assert (thread.route, thread.standing) == ("roleplay", "From now on")
    same = dataclasses.replace(first, conversation=ConversationContext("same topic", 2, "roleplay", 1, "roleplay"))
    assert policy.next_thread(thread, "ahoy, tell me of yer ship", same, 2) is thread
    assert policy.next_thread(thread, "ok, you can stop pretending", same, 2).standing == ""


def test_leaving_the_persona_routes_the_rest_of_the_message(routes, fake_encoder):
    # the words that leave a persona ("stop the roleplay") fire the roleplay rule themselves: the rest decides
    import dataclasses

    routes = [dataclasses.replace(routes[0], keywords=("roleplay", "i want you to act as")), *routes[1:]]
    router = persona_router(routes, fake_encoder)
    message = "ok stop the roleplay. write a python function to rename files"
    assert router.route(message).route == "roleplay"
    d = router.route(message, [{"role": "user", "content": PERSONA}])
    assert (d.route, d.tier) == ("code", "L1") and d.conversation.kind == "new topic"
    assert "leaves the persona ('stop the roleplay')" in d.reason
    # leaving alone, with nothing else to say, stays an ordinary same-topic message
    assert router.route("stop the roleplay", [{"role": "user", "content": PERSONA}]).route == "roleplay"


@pytest.mark.parametrize(("message", "cue"), [
    ("how did you get that?", "how you got it"),
    ("How would you calculate it for 10 years?", "how you got it"),
    ("can you add comments", "an edit"),
    ("Please include more examples too.", "an edit"),
    ("add type hints", "an edit"),
    ("that didn't work", "it did not work"),
    ("it still crashes", "it did not work"),
    ("I don't get it", "not understood"),
    ("who opposed it?", "a question about it"),
    ("can you check it again", "do it"),
    ("put them in a table", "do it"),
    ("great, do the same for this one", "the same task"),
    ("hmm you left out the ending", "you said"),
    ("does it say anything about parking?", "what the text says"),
    ("can u do 3 variations", "one more"),
    ("are you sure? i got wednesday", "doubt"),
    ("shorter. i get nervous lol", "an adjustment"),
    ("and on saturday", "continues with a connective"),
    ("how long was she in england", "a question about someone named before"),
    ("does it roll over to next year if I don't use it?", "a question on it"),
    ("shorter and less formal, we text normally", "an adjustment"),
    ("why did u divide there", "how you got it"),
    ("give me 3 more headline options", "one more"),
    ("add a joke about him always being late to everything", "an addition"),
    ("is parking mentioned anywhere?", "what the text says"),
    ("Now make the JSON object shorter by replacing each value with its first letter", "make it"),
])
def test_generic_follow_ups_point_back(message, cue):
    assert cue in follow_up_cues(message).anaphora


@pytest.mark.parametrize("message", ["can you add 17 and 25", "add a column to a pandas dataframe",
                                     "how did the roman empire fall?", "use python to parse a csv file",
                                     "what time is it?", "show that the square root of 2 is irrational",
                                     "check that a string is a palindrome in python",
                                     "my puppy keeps chewing my shoes, what should I do to make him stop it?",
                                     "write a haiku about them", "is it going to rain today?",
                                     "and now for something completely different: a limerick about cats",
                                     "how do I make the bread softer", "add a note to my calendar with python",
                                     "why do you think the sky is blue"])
def test_requests_with_their_own_object_are_not_edits(message):
    assert not follow_up_cues(message).anaphora


def test_a_bare_stop_leaves_the_persona():
    from router.conversation import PERSONA_EXIT

    assert PERSONA_EXIT.search("ok stop. what is 15% of 80?") and PERSONA_EXIT.search("Enough! Tell me a joke")
    assert not PERSONA_EXIT.search("stop the car at the next corner") and not PERSONA_EXIT.search("a bus stop. where?")
    assert PERSONA_EXIT.search("ok let's stop the interview. write a linkedin post")
    assert PERSONA_EXIT.search("ok pausing the game for a sec, my python script fails")
    assert PERSONA_EXIT.search("haha ok, not in character: did pirates really make people walk the plank?")
    assert PERSONA_EXIT.search("ok stop the pirate thing for a sec, i need a sql query")
    assert PERSONA_EXIT.search("haha ok break time. seriously tho whats the integral of 1/x")
    assert PERSONA_EXIT.search("ok stop haha. honestly tho do u like doing this")
    assert PERSONA_EXIT.search("lol ok but seriously, why do cats knead blankets?")
    assert PERSONA_EXIT.search("Haha okay, Spaß beiseite – ich brauch kurz echte Hilfe")
    assert PERSONA_EXIT.search("lol ok I'm done playing. do you enjoy this?")


def test_leaving_the_persona_is_a_new_topic_whatever_it_shares(routes, fake_encoder):
    # "stop being a pirate captain for a sec" names the persona: still the words after it start something new
    router = persona_router(routes, fake_encoder)
    history = [{"role": "user", "content": "I want you to act as a pirate captain"}, {"role": "assistant", "content": "Arr"}]
    d = router.route("lol ok stop being a pirate for a sec, what is the capital of peru", history)
    assert d.conversation.kind == "new topic" and d.conversation.cues[0].startswith("leaves the persona")
    assert d.route == "knowledge"


def test_weak_cues_in_other_languages_and_additions():
    assert "opens with a connective" in follow_up_cues("und die kündigungsfrist?").weak
    assert "opens with a connective" in follow_up_cues("y si fuera medianoche?").weak
    assert not follow_up_cues("e.g. the capital of peru").weak
    assert "adds to what came before" in follow_up_cues("write the tests too").weak
    assert "adds to what came before" in follow_up_cues("perfect. can you also show how many orders each made").weak


def test_a_short_question_after_a_pasted_document_stays_with_it(routes, fake_encoder):
    document = "Here is the job ad, what are the requirements? " + "We are hiring a data analyst in Denver. " * 10
    router = build(routes, fake_encoder)
    history = [{"role": "user", "content": document}, {"role": "assistant", "content": "SQL and Python."}]
    thread_route = router.route(document).route
    d = router.route("do they pay well, roughly?", history)
    assert d.route == thread_route and d.conversation.kind in ("follow-up", "same topic")


@pytest.mark.parametrize(("message", "announces"), [
    ("cool thanks. unrelated but how do i undo a git commit", True),
    ("Different question: what is 12 * 13?", True),
    ("btw who wrote Dune?", True),
    ("thanks. random but roughly what's the population of Canada these days?", True),
    ("pretty. now diff thing, what is the capital of peru", True),
    ("random forest or gradient boosting for tabular data?", False),
    ("nvm figured it out. tldr this please", True),
    ("the crash seems to be on a totally unrelated line, why?", False),
    ("is the new question harder than the first one?", False),
])
def test_new_topic_cues_open_a_message(router, message, announces):
    d = router.route(message, CODE_TURN)
    assert any(c.startswith("announces a new topic") for c in d.conversation.cues) is announces


def aside_router(routes, encoder):
    import dataclasses

    chat = Route("chitchat", "zoomer", keywords=(r"are you (gpt|human)", "tell me a joke"),
                 utterances=("how are you today", "tell me a joke"))
    routes = [*routes, chat]
    return build(routes, encoder, dataclasses.replace(ConversationPolicy(), asides=("chitchat",)))


def test_small_talk_mid_task_leaves_the_task_open(routes, fake_encoder):
    router = aside_router(routes, fake_encoder)
    history = [*CODE_TURN, {"role": "user", "content": "lol are you gpt4?"}, {"role": "assistant", "content": "no"}]
    assert router.route("lol are you gpt4?", CODE_TURN).route == "chitchat"
    d = router.route("fine. now the sort function breaks on None, fix it", history)
    assert (d.route, d.conversation.kind, d.conversation.from_turn) == ("code", "follow-up", 1)
    # what continues the aside stays with it, and small talk once told a joke goes on with jokes
    jokes = [*CODE_TURN, {"role": "user", "content": "tell me a joke"}]
    assert router.route("tell me a joke, a better one", jokes).route == "chitchat"
    # back on the task, the aside is over
    back = [*history, {"role": "user", "content": "fine. now the sort function breaks on None, fix it"}]
    assert router.route("and add comments", back).route == "code"


def test_a_long_message_that_opens_by_pointing_back_follows(router):
    part_two = "same format please: " + " ".join(["the committee met on tuesday and agreed the budget"] * 6)
    d = router.route(part_two, CODE_TURN)
    assert d.route == "code" and d.conversation.kind in ("follow-up", "same topic")


def test_a_name_from_earlier_counts_however_it_is_spelled():
    earlier = ["Read this: the firm was founded in 1887 by the brothers Thomas and Henry Finch."]
    assert follow_up_cues("who took over after thomas?", earlier).referenced == ("thomas",)
    assert follow_up_cues("who took over after the war?", earlier).referenced == ()


@pytest.mark.parametrize("message", ["kürzer bitte, maximal zwei Sätze", "no entiendo, ¿me lo puedes explicar?",
                                     "je ne comprends pas, tu peux réexpliquer ?"])
def test_common_follow_ups_in_other_languages(message):
    assert "a follow-up in another language" in follow_up_cues(message).anaphora


def test_the_shipped_conversations_follow_up_and_switch(onnx_encoder):
    # docs/conversations.jsonl: hand-written follow-ups and topic switches, checked with the real model
    import dataclasses
    from collections import defaultdict
    from pathlib import Path

    from router.config import build_router, load_config
    from router.data import load_labelled

    rows = load_labelled(Path(__file__).parents[2] / "docs" / "conversations.jsonl")
    assert len(rows) >= 400 and {r.kind for r in rows} == {"follow_up", "topic_switch"} and all(r.history for r in rows)
    router = build_router(load_config(["router=hybrid"]), encoder=onnx_encoder)
    on = router.conversation
    right: dict[tuple[bool, str], list[bool]] = defaultdict(list)
    for enabled in (True, False):
        router.conversation = dataclasses.replace(on, enabled=enabled)
        for row in rows:
            right[enabled, row.kind].append(router.route(row.query, row.history).route == row.route)
    router.conversation = on
    share = {key: sum(v) / len(v) for key, v in right.items()}
    # follow-ups keep their route far more often than alone; genuine switches are not held back much
    assert share[True, "follow_up"] >= share[False, "follow_up"] + 0.25
    assert share[True, "topic_switch"] >= share[False, "topic_switch"] - 0.08
