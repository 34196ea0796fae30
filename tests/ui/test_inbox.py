"""The Inbox: labels where the router is unsure lift accuracy more than random labels; previews tell the truth."""

import json
import random
import subprocess
import sys

import pytest

from forensics.feedback import Flywheel
from forensics.inbox import accuracy_of, build_inbox, preview
from forensics.preference_store import PreferenceStore, RoutingEvent
from router.config import CONFIG_DIR
from router.config import build_router, load_config
from router.data import load_labelled
from router.session import normalized
from ui.auth import Principal, Role
from ui.inbox import label, load, preview_text
from ui.inbox import InboxState

REPO = CONFIG_DIR.parent
CORPUS = REPO / "corpus" / "routing_train.jsonl"
BOB = Principal("bob", Role.LABELER, "bob")
VISITOR = Principal("anonymous:1", Role.VISITOR, "x")
SEED = 0


def traffic(seed: int) -> list[dict]:
    """200 routed turns: 120 distinct labelled queries, the popular ones asked again (a long tail)."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    pool = rng.sample(rows, 120)
    turns = pool + rng.choices(pool, weights=[1 / (i + 1) ** 0.8 for i in range(len(pool))], k=80)
    rng.shuffle(turns)
    return turns


def stored(tmp_path, name, encoder, turns) -> Flywheel:
    # router=hybrid: the traffic comes from the corpus, which the default (trained) router learnt from
    router = build_router(load_config(["router=hybrid"]), encoder=encoder)
    store = PreferenceStore(tmp_path / f"{name}.sqlite3")
    for i, t in enumerate(turns):
        d = router.route(t["query"])
        store.add_routing_event(RoutingEvent(query=t["query"], route=d.route, expert=d.expert, model=None, tier=d.tier,
                                             score=d.score, margin=d.margin, router_us=1.0, outcome="answered",
                                             user=f"user{i % 50}"))
    return Flywheel(store, router)


def test_labelling_the_inbox_first_lifts_accuracy_more_than_random_labels(tmp_path, onnx_encoder):
    turns = traffic(SEED)
    truth = {normalized(t["query"]): t["route"] for t in turns}
    inbox = stored(tmp_path, "inbox", onnx_encoder, turns)
    random_ = stored(tmp_path, "random", onnx_encoder, turns)
    first = [it.query for it in build_inbox(inbox.store.routing_events(), inbox.router, limit=20)]
    drawn = random.Random(SEED).sample([e.query for e in random_.store.routing_events()], 20)
    labelled = {normalized(q) for q in first + drawn}
    rest = [t for t in turns if normalized(t["query"]) not in labelled]  # labelled by neither: a fair comparison

    def accuracy(router):
        return sum(router.route(t["query"]).route == t["route"] for t in rest) / len(rest)

    before = accuracy(inbox.router)
    state, _ = load(inbox, BOB, limit=20)
    assert [it.query for it in state.items] == first
    for query in first:  # the handler keeps the list on screen: label each item in turn
        state.at = next(i for i, it in enumerate(state.items) if it.query == query)
        assert label(inbox, BOB, state, truth[normalized(query)]).startswith("Label #")
    pool = InboxState(build_inbox(random_.store.routing_events(), random_.router, limit=None))
    for query in dict.fromkeys(drawn):  # the same handler, on the same kind of list, in random order
        found = [i for i, it in enumerate(pool.items) if normalized(it.query) == normalized(query)]
        if not found:  # a near-duplicate of an earlier random label: that item stood for it
            continue
        pool.at = found[0]
        assert label(random_, BOB, pool, truth[normalized(query)]).startswith("Label #")
    after_inbox, after_random = accuracy(inbox.router), accuracy(random_.router)
    print(f"\ninbox vs random, seed {SEED}: {len(rest)} turns labelled by neither; accuracy before {before:.3f}, "
          f"after 20 inbox labels {after_inbox:.3f} ({after_inbox - before:+.3f}), "
          f"after 20 random labels {after_random:.3f} ({after_random - before:+.3f})")
    assert after_inbox - before > after_random - before


# The reference file of the preview test: 20 rows, two of them about words no route knows, labelled math.
ROWS = [("I want you to act as a stand-up comedian", "roleplay"), ("Write a python function for palindromes", "code"),
        ("who wrote the novel frankenstein", "knowledge"), ("what is 15 percent of 240", "math"),
        ("zorblax frobnicate the quux", "math"), ("frobnicate my zorblax please", "math"),
        ("hi there, how are you doing today?", "chitchat"), ("write a short poem about the sea", "creative"),
        ("pretend you are a pirate captain and greet me", "roleplay"), ("fix the bug in my javascript code", "code"),
        ("solve the equation 3x + 5 = 20 for x", "math"), ("what is the capital of peru", "knowledge"),
        ("lol ok", "chitchat"), ("give me a tl;dr of this article about whales", "summarize"),
        ("Extract all email addresses from this text: a@b.com, c@d.org", "extract"),
        ("Write a haiku about autumn leaves", "creative"), ("tell me about the history of rome", "knowledge"),
        ("If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?", "reasoning"),
        ("which is heavier, a kilo of feathers or a kilo of steel?", "reasoning"),
        ("Summarize the following text in two sentences: The council met on Monday.", "summarize")]
# The test's router and the command's: the fixture's encoder is the float32 export.
OVERRIDES = ["encoder.quantize=null"]


def accuracy_command(*args: str) -> dict:
    """The figures `python -m forensics.benchmark_suite accuracy ... --json` prints, run as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "forensics.benchmark_suite", "accuracy", *args, "--json",
                           *OVERRIDES], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_preview_equals_what_accuracy_reports_after_the_label(tmp_path, onnx_encoder):
    path = tmp_path / "reference.jsonl"
    path.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in ROWS), encoding="utf-8")
    router = build_router(load_config(OVERRIDES), encoder=onnx_encoder)
    rows = load_labelled(path, routes=list(router.routes))
    before = accuracy_of(router, rows)
    shown = preview(router, [("zorblax frobnicate quux", "math")], rows)
    assert accuracy_of(router, rows) == before == shown.accuracy_before, "the preview left the live router alone"
    assert shown.fixed > 0, "the label moves rows of the reference file, so the comparison below means something"
    with PreferenceStore(tmp_path / "s.sqlite3") as store:
        flywheel = Flywheel(store, router)
        routes_before = [router.route(r.query).route for r in rows]
        flywheel.correct("zorblax frobnicate quux", router.route("zorblax frobnicate quux"), "math", user="bob")
        if hasattr(router.semantic, "settle"):  # the trained tier refits with the correction in the background
            assert router.semantic.settle(timeout=120)
        after = [router.route(r.query).route for r in rows]
        assert len(shown.changed) == sum(a != b for a, b in zip(after, routes_before))
        assert [c[0] for c in shown.changed] == [r.query for r, a, b in zip(rows, after, routes_before) if a != b]
    # The command, in a process of its own, restores the stored correction the way the app does at start-up.
    report = accuracy_command("--data", str(path), "--store", str(tmp_path / "s.sqlite3"))
    assert report["corrections_restored"] == 1
    assert report["n"] == shown.n == len(ROWS)
    assert report["accuracy"] == shown.accuracy_after
    right_before = round(shown.accuracy_before * shown.n)
    assert round(report["accuracy"] * report["n"]) == right_before + shown.fixed - shown.broken
    print(f"\npreview: {shown.sentence()} accuracy --store: {report['accuracy']:.4f} on {report['n']} rows")


def test_visitors_cannot_use_the_inbox(tmp_path, onnx_encoder):
    from ui.auth import Forbidden

    flywheel = stored(tmp_path, "v", onnx_encoder, traffic(1)[:5])
    for call in (lambda: load(flywheel, VISITOR), lambda: label(flywheel, VISITOR, InboxState(), "math"),
                 lambda: preview_text(flywheel, VISITOR, InboxState(), "math", [])):
        with pytest.raises(Forbidden):
            call()
