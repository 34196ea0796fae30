"""Small labelled files for the sweep and calibrate tests, and a preference store in tmp_path."""

import json

import pytest

from forensics.preference_store import PreferenceStore

ROWS = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("pretend you are a pirate captain and greet me", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("fix the bug in my javascript code please", "code"),
    ("def add(a, b): return a - b  # why is this wrong", "code"),
    ("what is 15 percent of 240", "math"),
    ("solve the equation 3x + 5 = 20 for x", "math"),
    ("who wrote the novel frankenstein", "knowledge"),
    ("what is the capital of peru", "knowledge"),
    ("who was the first president of the united states", "knowledge"),
    ("hi there, how are you doing today?", "chitchat"),
    ("lol ok", "chitchat"),
    ("Summarize the following text in two sentences: The council met on Monday.", "summarize"),
    ("give me a tl;dr of this article about whales", "summarize"),
    ("Extract all email addresses from this text: a@b.com, c@d.org", "extract"),
    ("Write a haiku about autumn leaves", "creative"),
    ("write a short poem about the sea", "creative"),
    ("If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?", "reasoning"),
    ("which is heavier, a kilo of feathers or a kilo of steel?", "reasoning"),
    ("tell me about the history of rome", "knowledge"),
]


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in ROWS), encoding="utf-8")
    return path


@pytest.fixture
def fake_pool():
    """An encoder pool that builds the deterministic fake encoder instead of the model."""
    from forensics.encoder_cache import EncoderPool
    from tests.conftest import FakeEncoder

    return EncoderPool(factory=lambda cfg: FakeEncoder())


@pytest.fixture
def store(tmp_path):
    with PreferenceStore(tmp_path / "prefs.sqlite3") as s:
        yield s
