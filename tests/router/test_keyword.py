import pytest

from router.errors import ConfigError
from router.schema import Route
from router.patterns import add_word_boundaries, star_height, validate_pattern
from router.strategies.keyword import KeywordRoutingStrategy
from router.text import word_cuts


def test_reports_pattern_and_span(routes):
    query = "Please write a Python function that adds two numbers"
    d = KeywordRoutingStrategy(routes).route(query)
    assert (d.route, d.expert, d.tier, d.score) == ("code", "professor", "L1", 1.0)
    assert d.rule.pattern == "python function"
    assert query[d.rule.start : d.rule.end] == "Python function" == d.rule.text


def test_priority_follows_route_order_then_pattern_order(routes):
    query = "I want you to act as a tutor. Show a python function and solve for x."
    d = KeywordRoutingStrategy(routes).route(query)
    assert d.route == "roleplay"
    assert set(d.rule.also_matched) == {"code", "math"}
    assert d.margin == 0.0
    d = KeywordRoutingStrategy(routes, priority=["math", "code"]).route(query)
    assert d.route == "math" and d.rule.text == "solve for x"
    # within a route the first listed pattern wins, wherever it occurs
    d = KeywordRoutingStrategy(routes).route("```\ndef f(x):\n```")
    assert d.rule.pattern == r"def \w+\("


def test_unknown_priority_route_is_named(routes):
    with pytest.raises(ConfigError, match="'?mth'?.*Available: roleplay, code, math, knowledge"):
        KeywordRoutingStrategy(routes, priority=["mth"])


def test_word_boundaries_and_case():
    s = KeywordRoutingStrategy([Route("x", "e", keywords=("cat",))])
    assert s.route("A CAT sat") is not None
    assert s.route("concatenate these") is None
    assert add_word_boundaries("tl;dr") == r"\b(?:tl;dr)\b"
    assert add_word_boundaries("```") == "(?:```)"


def test_no_match_declines(routes):
    assert KeywordRoutingStrategy(routes).route("what a lovely day") is None
    assert KeywordRoutingStrategy([Route("x", "e")]).route("anything") is None


def test_only_head_and_tail_are_scanned_and_spans_map_back(routes):
    s = KeywordRoutingStrategy(routes, head_chars=50, tail_chars=50)
    body = "lorem ipsum " * 100
    assert s.route(body + "python function" + body) is None  # in the middle: a pasted text's words
    query = body + "Now give me a python function."
    d = s.route(query)
    assert d.route == "code"
    assert query[d.rule.start : d.rule.end] == "python function"


def test_the_scan_window_is_cut_at_whole_words():
    # A job ad cut mid-word ("...we|ek" at the head's end, "ba|sed monitoring" at the tail's start)
    # must not show rules the fragments "we" and "sed": only whole words are scanned.
    s = KeywordRoutingStrategy([Route("code", "professor", keywords=(r"\bsed ",)), Route("x", "e", keywords=("monitoring",))],
                               head_chars=19, tail_chars=15)
    query = "Hybrid, 3 days a week. " + "Benefits and more. " * 10 + "You bring risk-based monitoring."
    assert query[:19].endswith(" we") and query[-15:].startswith("sed ")
    d = s.route(query)
    assert d.route == "x" and query[d.rule.start : d.rule.end] == "monitoring"
    assert word_cuts("one two three four five six", 9, 7) == (8, 24)
    assert word_cuts("x" * 50, 10, 10) == (10, 40)  # one long word: cut where it must be


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("(unclosed", "not a valid regular expression"),
        ("(a+)+b", "backtrack catastrophically"),
        ("(x*y*)*z", "backtrack catastrophically"),
        ("a*", "empty string"),
        ("foo(?=bar)", "RE2"),
        (r"(a)\1", "RE2"),
        ("  ", "empty"),
    ],
)
def test_bad_patterns_are_rejected_naming_route_and_pattern(pattern, message):
    with pytest.raises(ConfigError, match=message) as info:
        KeywordRoutingStrategy([Route("code", "professor", keywords=("fine", pattern))])
    assert "'code'" in str(info.value) and repr(pattern) in str(info.value)


def test_star_height():
    assert star_height("abc") == 0
    assert star_height("a+b") == 1
    assert star_height("(ab+)+") == 2
    assert star_height("(ab{2,3})+") == 1
    validate_pattern("r", "write (?:a|an) (?:python )?function")  # no error


def test_counted_repeats_are_bounded():
    with pytest.raises(ConfigError, match="counted repeat"):
        validate_pattern("math", r"\d.{0,300}how much")
    validate_pattern("math", r"\d[^?]*how much")


def test_unknown_engine_is_named(routes):
    with pytest.raises(ConfigError, match="Unknown pattern engine 'pcre'. Available: hyperscan, re2"):
        KeywordRoutingStrategy(routes, engine="pcre")


SAMPLES = [
    "I want you to act as a linux terminal. Reply only with the terminal output.",
    "Summarize the following article in two sentences:\n\nThe mayor said on Tuesday ...",
    "def add(a, b):\n    return a + b\n\nWhat does this function do?",
    "Natalia sold 48 clips in April and half as many in May. How many clips did she sell altogether?",
    "Context: The river floods every spring.\nQuestion: When does the river flood?",
    "who sang the song 'yesterday'",
    "hey there! how are you doing today?",
    "Write me a short poem about the sea at night",
    "Options: (A) red (B) blue (C) green (D) white (E) black",
    "Ünïcödé text with émojis 🤖 and أبجد and summarize: this",
    "x" * 5000 + " tl;dr",
]


def test_both_engines_give_the_same_decisions():
    from router.config import build_routes, load_config

    cfg = load_config()
    routes = build_routes(cfg.routes, cfg.experts)
    fast, portable = KeywordRoutingStrategy(routes, engine="hyperscan"), KeywordRoutingStrategy(routes, engine="re2")
    for text in SAMPLES:
        assert fast.route(text) == portable.route(text), text
    assert sum(fast.route(t) is not None for t in SAMPLES) >= 8


@pytest.mark.parametrize(("text", "route"), [
    ("thanks a lot!", "chitchat"),
    ("thanks! what's the capital of australia?", None),  # thanks before a question: the question decides
    ("Imagine yourself as a doctor tasked with devising remedies", "roleplay"),
    ("Please assume the role of an English translator", "roleplay"),
    ("Embody the persona of Tony Stark throughout this conversation", "roleplay"),
    ("act as Sherlock Holmes and deduce things about me", "roleplay"),  # a named persona, not a deduction task
    ("be a grumpy old pirate captain and answer everything i say like one", "roleplay"),
    ("from this email, when do budget drafts have to be in?", "extract"),
    ("thx. here's my flight confirmation, what time does the gate close?", "extract"),
    ("in this text, is there any grammar mistake?", None),
    ("Summary\n\n===\n\nWrite a summary of the text above", "summarize"),  # '===' as a separator is not code
    ("if (a === b) { return a; }", "code"),
    ("Fass diesen Text zusammen: Die Energiewende ...", "summarize"),  # other languages: the encoder reads English
    ("Joue le rôle d'un serveur dans un café parisien", "roleplay"),
    ("update my resume a bit", None),
    ("how do I format my resume in word?", None),  # the English word, not "résume en"
    ("can you rewrite this so it sounds more professional? hey mark, the deadline moved AGAIN", "creative"),
    ("make this more polite pls: you didnt send the invoice", "creative"),
    ("fix my english: yesterday I go to the shop", "creative"),
    ("rewrite this function so it runs faster", None),  # a rewrite for speed, not for tone
    ("be napoleon and answer my questions like him", "roleplay"),
    ("talk like a pirate from now on", "roleplay"),
    ("how do I talk like a native speaker?", None),
    ("find the flaws in this argument: crime fell after the cameras went up, so cameras work", "reasoning"),
    ("riddle: what gets wetter the more it dries", "reasoning"),
    ("do you speak french?", "chitchat"),
    ("Tu parles français ?", "chitchat"),
    ("résume en 2 phrases stp : la SNCF annonce une grève", "summarize"),
    ("Schreib mir eine kurze Rede für die Hochzeit meines Bruders", "creative"),
    ("Du bist jetzt ein Kellner in Berlin. Bleib in der Rolle.", "roleplay"),
    ("here are the unit test scores of my two classes (out of 100)", None),  # a school test, not code
    ("write unit tests for this parser", "code"),
    ("list only the skills from this cv\n\nCARLOS MENDES, SQL queries, Excel", "extract"),  # not the SQL in it
    ("Parse this resume into JSON with: full_name, email\n\nJ. ELLIS, PostgreSQL, nginx", "extract"),
    ("In this nginx access log excerpt, when did the first 5xx response occur?", "extract"),
    ("how do I rotate the nginx access log?", "code"),
    ("Seating for the wedding: the couple sit next to each other. How many ways can the head table be arranged?", "math"),
    ("Be Sherlock Holmes. I'll describe someone and you deduce things about them in his voice.", None),
    ("be a noir detective from the 1940s, im the mysterious dame who just walked in", "roleplay"),
    ("Be Socrates for this chat. Only ask me questions.", "roleplay"),
    ("u are goku now. talk like goku", "roleplay"),
    ("be honest and tell me if this is good", None),
    ("be a dear and review my essay", None),
    ("Quiero que actúes como mi profesora de español llamada Lucía.", "roleplay"),
    ("Stell dir vor du bist ein Reiseführer in Berlin und ich bin Tourist.", "roleplay"),
    ("Stell dir vor, die Erde hätte keinen Mond.", None),  # a what-if, not a persona
    ("tu es un vendeur de croissants à Paris, parle-moi uniquement en français", "roleplay"),
    ("Turn this lecture transcript chunk into concise study notes: elasticity...", "summarize"),
    ("I have a 3 gallon jug and a 5 gallon jug. how do i measure exactly 4 gallons", "reasoning"),
    ("wolf goat cabbage river crossing, how does the farmer get them all across", "reasoning"),
    ("what has keys but cant open locks", "reasoning"),
    ("what has more protein, eggs or chicken?", None),
    ("Sally has 3 brothers. Each of her brothers has 2 sisters. How many sisters does Sally have?", "reasoning"),
    ("Each of her sisters has 5 candies. How many candies in total?", "math"),
])
def test_default_rules_on_conversation_openers(text, route):
    from router.config import build_routes, load_config

    cfg = load_config()
    decision = KeywordRoutingStrategy(build_routes(cfg.routes, cfg.experts)).route(text)
    assert (decision.route if decision else None) == route
