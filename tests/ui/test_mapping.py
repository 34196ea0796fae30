"""Preference-driven mapping: votes propose a route → expert change, only an admin applies it, and only to a file
that a restart loads with `routes_mapping=<file>`; the running router never changes under anyone's feet.

The Data tab's own handlers are called as Gradio calls them (the request names the signed-in user).
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from forensics.feedback import Flywheel
from forensics.mapping import read_mapping
from forensics.preference_store import PreferenceStore
from router.config import build_router, load_config
from router.errors import ConfigError
from router.service import Finished
from ui.auth import Accounts, parse_users
from ui.data import build_data

KEYWORD = ["router=keyword"]  # the mapping is about experts, not about how routes are found: no encoder needed
CODE = "Write a python function that reverses a linked list"


def request(user: str | None):
    return SimpleNamespace(username=user, session_hash="s1", client=SimpleNamespace(host="10.0.0.5"))


class DataTab:
    """The Data tab built over a store, with its mapping handlers as Gradio runs them."""

    def __init__(self, flywheel: Flywheel, path) -> None:
        router = flywheel.router
        self.running = {name: r.expert for name, r in router.routes.items()}
        accounts = Accounts(parse_users("alice:admin:pw-alice-1,bob:labeler:pw-bob-22"), public_demo=True)
        with gr.Blocks() as self.demo:
            tab = build_data(flywheel, accounts, list(router.routes), ["professor", "zoomer"],
                             mapping=dict(self.running), mapping_path=path)
        self.table = tab["mapping_fn"]
        [self.apply] = [f.fn for f in self.demo.fns.values() if (tab["apply"]._id, "click") in f.targets]


def votes(flywheel: Flywheel, route_query: str, winner: str, loser: str, n: int, *, first: str = "") -> None:
    """`n` users each prefer `winner`'s answer to `loser`'s on a query the router sends to one route."""
    decision = flywheel.router.route(route_query)
    for i in range(n):
        a, b = Finished(f"answer {i}", winner, f"{winner}-model"), Finished(f"other {i}", loser, f"{loser}-model")
        flywheel.record_preference(route_query, [], a, b, "a", decision, user=f"{first}user{i}")


@pytest.fixture
def flywheel(tmp_path):
    router = build_router(load_config(KEYWORD))
    with PreferenceStore(tmp_path / "prefs.sqlite3") as store:
        yield Flywheel(store, router)


def test_votes_propose_a_change_that_only_an_admin_applies_to_a_file(flywheel, tmp_path):
    path = tmp_path / "outputs" / "mapping" / "route_experts.yaml"
    assert flywheel.router.route(CODE).route == "code"
    serving = flywheel.router.routes["code"].expert
    other = "zoomer" if serving == "professor" else "professor"
    votes(flywheel, CODE, other, serving, 8)
    tab = DataTab(flywheel, path)

    rows, text = tab.table(request("alice"))  # the admin sees everyone's votes and the proposal
    [row] = [r for r in rows if r[0] == "code" and r[1] == other]
    assert row[3:5] == [8, 0] and row[7] == "100%" and "–" in row[8]
    assert "Proposed mapping change" in text and f"code: {other} beats {serving} in 100% of 8" in text
    assert tab.table(request("bob"))[0] == [], "a labeler sees only their own votes (bob cast none)"
    assert tab.table(request(None)) == ([], ""), "a visitor sees no stored votes"

    for who, says in (("bob", "Only an admin"), (None, "Only an admin")):
        with pytest.raises(gr.Error, match=says):
            tab.apply(request(who))
    assert not path.exists(), "a refused apply writes nothing"

    said = tab.apply(request("alice"))
    assert f"Wrote code → {other} to {path}" in said and f"routes_mapping={path}" in said
    assert read_mapping(path) == {"code": other}
    assert "python app.py routes_mapping=" in path.read_text(encoding="utf-8"), "the file says how to load it"
    assert flywheel.router.routes["code"].expert == serving, "the running router is unchanged until a restart"

    restarted = build_router(load_config([*KEYWORD, f"routes_mapping={path}"]))
    assert {name: r.expert for name, r in restarted.routes.items()} == {**tab.running, "code": other}
    assert restarted.route(CODE).expert == other


def test_without_a_clear_winner_nothing_is_proposed_or_written(flywheel, tmp_path):
    path = tmp_path / "route_experts.yaml"
    serving = flywheel.router.routes["code"].expert
    other = "zoomer" if serving == "professor" else "professor"
    votes(flywheel, CODE, other, serving, 4)  # four votes: too few to move a route
    votes(flywheel, CODE, serving, other, 3, first="b")
    tab = DataTab(flywheel, path)
    _, text = tab.table(request("alice"))
    assert text.startswith("No mapping change proposed")
    assert tab.apply(request("alice")) == "Nothing to apply: no mapping change is proposed."
    assert not path.exists()


def test_a_mapping_file_naming_an_unknown_expert_fails_loudly(tmp_path):
    path = tmp_path / "route_experts.yaml"
    path.write_text("code: wizard\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="routes_mapping=.*'code' to 'wizard'"):
        build_router(load_config([*KEYWORD, f"routes_mapping={path}"]))
