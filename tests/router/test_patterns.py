"""The two multi-pattern engines agree with each other and with one-pattern-at-a-time search."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from router.patterns import PatternSet, add_word_boundaries

PATTERNS = ["act as", r"def \w+\(", "```", "tl;? ?dr", r"\d[^?]*how many [^?]*\?", "café", "summari[sz]e"]
WORDS = ["act", "as", "def", "f(", "```", "tl;dr", "12", "how", "many", "?", "café", "summarise", "x", " ", "\n", "é", "🤖"]

fast, portable = PatternSet(PATTERNS, engine="hyperscan"), PatternSet(PATTERNS, engine="re2")
singles = [re.compile(add_word_boundaries(p), re.IGNORECASE | re.ASCII) for p in PATTERNS]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=30).map("".join))
def test_engines_agree_with_single_searches(text):
    data = text.encode("utf-8")
    expected = sorted(i for i, rx in enumerate(singles) if rx.search(text))
    assert sorted(i for i, _ in fast.match(data)) == expected
    assert sorted(i for i, _ in portable.match(data)) == expected
    for i, end in fast.match(data):  # the reported end is where an occurrence ends
        assert singles[i].search(data[:end].decode("utf-8", "ignore")) is not None


def test_case_insensitive_and_empty_set():
    assert [i for i, _ in fast.match("ACT AS a pirate".encode())] == [0]
    assert PatternSet([]).match(b"anything") == []
