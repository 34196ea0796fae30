import json
import subprocess
import sys

import pytest


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "router", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


def test_route_prints_the_decision_as_json():
    out = run("route", "I want you to act as a Linux terminal", "router=keyword")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["route"] == "roleplay" and decision["tier"] == "L1" and decision["rule"]["text"]
    assert decision["timings"]["l1_us"] > 0


@pytest.mark.model
def test_route_with_the_semantic_tier_and_an_override():
    out = run("route", "zzzz qqqq", "router.semantic.threshold=0.99")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["tier"] == "default" and len(decision["top_routes"]) == 3 and "0.99" in decision["reason"]


def test_query_from_stdin():
    out = run("route", "-", "router=keyword", stdin="please write a python function for me\n")
    assert out.returncode == 0 and json.loads(out.stdout)["route"] == "code"


@pytest.mark.parametrize("args, message", [
    (["route", "   "], "query is empty"),
    (["route", "hi", "router.semantic.treshold=0.4"], "router.semantic.treshold"),
    (["route", "hi", "router=nope"], "Available options in 'router'"),
    (["route", "hi", "router.semantic.threshold=abc"], "must be a number"),
])
def test_errors_are_one_line_without_traceback(args, message):
    out = run(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ")


def test_shell_routes_lines_until_empty():
    out = run("shell", "router=keyword", stdin="I want you to act as a chef\n\n")
    assert out.returncode == 0 and "-> roleplay" in out.stdout


@pytest.mark.model
def test_train_fits_once_into_the_cache_then_finds_it(router_cache, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"query": q, "route": r, "dataset": d}) + "\n" for q, r, d in [
        ("sort this array in python", "code", "a"), ("what is 7 times 8", "math", "b"),
        ("capital of chile", "knowledge", "c"), ("pretend you are a wizard", "roleplay", "d")]))
    first = run("train", f"router.semantic.corpus={corpus}")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["datasets"] == 5 and report["artifact"].startswith(str(router_cache))  # 4 + the utterances
    assert "Fitting the trained router" in first.stderr
    again = run("train", f"router.semantic.corpus={corpus}")
    assert json.loads(again.stdout)["artifact"] == report["artifact"] and "Fitting" not in again.stderr
    assert run("train", "router=keyword").returncode == 2
