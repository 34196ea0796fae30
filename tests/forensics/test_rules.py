import json
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.__main__ import main
from forensics.rules import audit_rules, keyword_router
from router.data import load_labelled
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.strategies.keyword import KeywordRoutingStrategy

FAST = ["router=keyword", "router.keyword.engine=re2"]  # no encoder, no Hyperscan compile


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def router(routes):
    return HybridRouter(routes, default_route="knowledge", keyword=KeywordRoutingStrategy(routes, engine="re2"))


@pytest.fixture
def train(tmp_path, router):
    path = write(tmp_path / "train.jsonl", [
        {"query": "Write a python function that adds two numbers", "route": "code", "dataset": "mbpp"},
        {"query": "Which python function names are reserved words?", "route": "knowledge", "dataset": "trivia"},
        {"query": "I want you to act as a pirate", "route": "roleplay", "dataset": "prompts"},
        {"query": "I want you to act as a linter: def f(x): pass", "route": "roleplay", "dataset": "prompts"},
        {"query": "solve for x: 2x = 4", "route": "math", "source": "gsm8k"},
        {"query": "who wrote frankenstein", "route": "knowledge"},
    ])
    return load_labelled(path, routes=list(router.routes))


def rule(report, pattern):
    return next(r for r in report["rules"] if r["pattern"] == pattern)


def test_rows_are_named_by_dataset_then_source(router, train):
    rows = train
    report = audit_rules(router, {"train": rows})
    seen = {ds for r in report["rules"] for ds in r["per_dataset"]}
    assert seen == {"mbpp", "trivia", "prompts", "gsm8k"}  # the last row has neither and L1 leaves it
    assert rule(report, r"solve for \w")["per_dataset"] == {"gsm8k": {"fired": 1, "correct": 1}}  # its `source`


def test_counts_precision_and_wrong_examples(router, train):
    rows = train
    report = audit_rules(router, {"train": rows})
    python = rule(report, "python function")
    assert (python["fired"], python["correct"], python["precision"]) == (2, 1, 0.5)
    assert python["per_dataset"] == {"mbpp": {"fired": 1, "correct": 1}, "trivia": {"fired": 1, "correct": 0}}
    assert python["wrong"] == [{"query": "Which python function names are reserved words?", "route": "knowledge",
                                "dataset": "trivia", "file": "train"}]
    assert rule(report, "i want you to act as")["precision"] == 1.0
    assert rule(report, r"solve for \w")["per_dataset"] == {"gsm8k": {"fired": 1, "correct": 1}}
    assert report["files"]["train"] == {"n": 6, "l1_decisions": 5, "l1_coverage": 0.8333, "l1_precision": 0.8}
    assert report["below"] == [{"route": "code", "pattern": "python function", "fired": 2, "correct": 1, "precision": 0.5}]


def test_never_fired_and_shadowed_rules(router, train):
    rows = train
    report = audit_rules(router, {"train": rows})
    assert report["never_fired"] == [{"route": "code", "pattern": "```"}]
    # `def f(` matches the linter prompt, but the roleplay rule comes first and decides it
    assert report["shadowed"] == [{"route": "code", "pattern": r"def \w+\(", "matched": 1}]
    assert rule(report, r"def \w+\(")["fired"] == 0 and rule(report, r"def \w+\(")["precision"] is None


def test_min_precision_and_max_examples(router, train):
    rows = train
    report = audit_rules(router, {"train": rows}, min_precision=0.4, max_examples=0)
    assert report["below"] == [] and rule(report, "python function")["wrong"] == []


def test_two_files_each_and_together(router, train, tmp_path):
    rows = train
    dev = write(tmp_path / "dev.jsonl", [
        {"query": "```print(1)```", "route": "code", "dataset": "chat"},
        {"query": "hello there", "route": "knowledge", "dataset": "chat"},
    ])
    report = audit_rules(router, {"train": rows, "dev": load_labelled(dev, routes=list(router.routes))})
    assert report["files"]["dev"] == {"n": 2, "l1_decisions": 1, "l1_coverage": 0.5, "l1_precision": 1.0}
    assert report["all"] == {"n": 8, "l1_decisions": 6, "l1_coverage": 0.75, "l1_precision": 0.8333}
    assert rule(report, "```")["per_file"] == {"dev": {"fired": 1, "correct": 1}}
    assert set(rule(report, "python function")["per_file"]) == {"train"}
    assert report["never_fired"] == []


def test_cli_json_line_over_two_files(tmp_path, capsys):
    one = write(tmp_path / "one.jsonl", [
        {"query": "I want you to act as a travel guide for Lisbon", "route": "roleplay", "dataset": "a"},
        {"query": "Write a python function that reverses a string", "route": "code", "dataset": "a"},
    ])
    two = write(tmp_path / "two.jsonl", [
        {"query": "I want you to act as my lawyer and read this contract", "route": "extract", "dataset": "b"},
    ])
    assert main(["rules", "--data", str(one), "--data", str(two), "--json", *FAST]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"{one}: n=2") and "L1 precision=1.000" in out[0]
    report = json.loads(out[-1])
    assert set(report) >= {"files", "all", "rules", "never_fired", "shadowed", "below", "min_precision"}
    assert report["files"][str(two)] == {"n": 1, "l1_decisions": 1, "l1_coverage": 1.0, "l1_precision": 0.0}
    roleplay = [r for r in report["rules"] if r["route"] == "roleplay" and r["fired"]]
    assert len(roleplay) == 1 and roleplay[0]["fired"] == 2 and roleplay[0]["precision"] == 0.5
    assert roleplay[0]["wrong"][0]["dataset"] == "b" and roleplay[0]["wrong"][0]["route"] == "extract"
    assert {"route": roleplay[0]["route"], "pattern": roleplay[0]["pattern"], "fired": 2, "correct": 1,
            "precision": 0.5} in report["below"]
    assert all(set(r) >= {"route", "pattern", "fired", "correct", "precision", "wrong", "per_dataset"}
               for r in report["rules"])


def test_cli_min_precision_flag(tmp_path, capsys):
    data = write(tmp_path / "d.jsonl", [
        {"query": "I want you to act as my lawyer", "route": "roleplay"},
        {"query": "I want you to act as a judge of this essay", "route": "extract"},
    ])
    assert main(["rules", "--data", str(data), "--json", "--min-precision", "0.5", *FAST]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["below"] == []


def test_cli_errors(tmp_path, capsys):
    bad = write(tmp_path / "bad.jsonl", [{"query": "hi", "route": "cooking"}])
    assert main(["rules", "--data", str(bad), *FAST]) == 2
    assert "unknown route 'cooking'" in capsys.readouterr().err
    good = write(tmp_path / "good.jsonl", [{"query": "hi", "route": "chitchat"}])
    assert main(["rules", "--data", str(good), "router=semantic"]) == 2
    assert "needs an L1 tier" in capsys.readouterr().err


def test_keyword_router_builds_no_semantic_tier():
    router = keyword_router(["router.keyword.engine=re2"])
    assert router.semantic is None and router.keyword is not None
    with pytest.raises(ConfigError, match="needs an L1 tier"):
        keyword_router(["router=semantic"])


def test_benchmark_suite_forwards_the_rules_command(tmp_path):
    data = write(tmp_path / "d.jsonl", [{"query": "Write a python function that sums a list", "route": "code"}])
    out = subprocess.run([sys.executable, "-m", "forensics.benchmark_suite", "rules", "--data", str(data), "--json", *FAST],
                         capture_output=True, text=True, timeout=120, check=False, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["all"]["l1_precision"] == 1.0
