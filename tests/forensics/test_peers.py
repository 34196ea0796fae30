import json
import socket
import sys

import pytest

from forensics.__main__ import main
from forensics.peers import build_peer
from router.errors import ConfigError


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a connection fails the test: the peer must run from local files."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "labelled.jsonl"
    rows = [("write a python function that reverses a string", "code"), ("what is 12 percent of 300", "math")]
    path.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in rows), encoding="utf-8")
    return path


def test_unknown_peer_names_the_known_ones(routes):
    with pytest.raises(ConfigError, match="Available: semantic-router"):
        build_peer("rasa", routes)


def test_peer_flag_without_the_package_says_how_to_install_it(data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "semantic_router", None)  # import fails as if not installed
    assert main(["latency", "--data", str(data), "--peer", "semantic-router", "router=keyword",
                 "router.default_route=code"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install -e '.[peers]'" in err


@pytest.mark.model
def test_semantic_router_routes_over_our_table_offline(routes, offline):
    pytest.importorskip("semantic_router")
    peer = build_peer("semantic-router", routes)
    assert peer.name == "semantic-router" and peer.version.startswith("1.")
    assert peer.decide("please write a python function that sorts a list of numbers") == "code"


@pytest.mark.model
def test_latency_times_the_peer_in_the_same_run(data, offline, capsys):
    pytest.importorskip("semantic_router")
    assert main(["latency", "--data", str(data), "--json", "--no-baseline", "--peer", "semantic-router"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["peer"].startswith("semantic-router 1.")
    for key in ("peer_decision_p50_us", "peer_decision_p99_us", "decision_speedup_vs_peer", "l2_speedup_vs_peer"):
        assert key in report, key
    assert report["decision_speedup_vs_peer"] == pytest.approx(
        report["peer_decision_p50_us"] / report["decision_p50_us"], rel=0.05)
