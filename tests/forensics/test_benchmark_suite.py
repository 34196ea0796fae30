import json

import pytest

from forensics.__main__ import main
from forensics.metrics import percentile_us

ROWS = [
    {"query": "I want you to act as a stand-up comedian", "route": "roleplay", "source": "a"},
    {"query": "Write a python function that checks for palindromes", "route": "code", "source": "a"},
    {"query": "who wrote the novel frankenstein", "route": "knowledge", "source": "b"},
    {"query": "hi there, how are you doing today?", "route": "chitchat", "source": "b"},
    {"query": "Summarize the following text in two sentences: The council met on Monday.", "route": "summarize"},
]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_percentile_us():
    assert percentile_us([1000, 2000, 3000], 50) == 2.0


def test_accuracy_keyword_only(data, capsys):
    assert main(["accuracy", "--data", str(data), "--json", "router=keyword", "router.default_route=knowledge"]) == 0
    report = last_json(capsys)
    assert set(report) >= {"n", "accuracy", "expert_accuracy", "per_route", "l1_coverage", "l1_precision", "confusion"}
    assert report["n"] == 5
    assert report["tier_share"]["L2"] == 0 and report["tier_share"]["L1"] + report["tier_share"]["default"] == 1
    l1 = report["l1_coverage"] * 5
    assert report["per_route"]["roleplay"] == {"n": 1, "accuracy": 1.0, "precision": 1.0}
    assert sum(sum(c.values()) for c in report["confusion"].values()) == 5
    assert report["per_source"]["a"]["n"] == 2 and l1 >= 2


def test_accuracy_macro_averages_over_datasets(tmp_path, capsys):
    rows = [{**r, "dataset": "one" if i < 4 else "two"} for i, r in enumerate(ROWS)]
    path = tmp_path / "grouped.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["accuracy", "--data", str(path), "--json", "router=keyword", "router.default_route=knowledge"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    one, two = report["per_dataset"]["one"], report["per_dataset"]["two"]
    assert (one["n"], two["n"]) == (4, 1)
    assert report["macro_accuracy"] == round((one["accuracy"] + two["accuracy"]) / 2, 4)
    assert report["macro_expert_accuracy"] == round((one["expert_accuracy"] + two["expert_accuracy"]) / 2, 4)
    assert "2 datasets: macro accuracy=" in out


@pytest.mark.model
def test_accuracy_with_exemplars_changes_the_index(data, tmp_path, capsys):
    exemplars = tmp_path / "mine.jsonl"
    exemplars.write_text(json.dumps({"query": "who wrote the novel frankenstein", "route": "chitchat"}) + "\n")
    assert main(["accuracy", "--data", str(data), "--json", "--exemplars", str(exemplars), "router=semantic", "router.semantic.top_k=1"]) == 0
    report = last_json(capsys)
    assert report["confusion"]["knowledge"] == {"chitchat": 1}  # the exemplar wins its own query


@pytest.mark.model
def test_latency_reports_tiers_and_baseline(data, capsys):
    assert main(["latency", "--data", str(data), "--json"]) == 0
    report = last_json(capsys)
    for key in ("l1_p50_us", "l1_p99_us", "l2_p50_us", "l2_p99_us", "decision_p50_us", "decision_p99_us",
                "st_encode_p50_us", "l2_vs_st_encode"):
        assert report[key] > 0, key
    assert report["l1_p50_us"] <= report["l1_p99_us"]


def test_bad_data_names_the_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"query": "x", "route": "cooking"}) + "\n")
    assert main(["accuracy", "--data", str(path), "router=keyword"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2" in err and "unknown route 'cooking'" in err


def test_accuracy_store_must_exist(data, tmp_path, capsys):
    missing = tmp_path / "typo.sqlite3"
    assert main(["accuracy", "--data", str(data), "--store", str(missing), "router=keyword"]) == 2
    assert "No preference store at" in capsys.readouterr().err
    assert not missing.exists(), "a typo must not leave an empty store behind"


@pytest.mark.model
def test_feedback_reports_before_after_and_lift(data, capsys):
    assert main(["feedback", "--data", str(data), "--fraction", "0.4", "--json", "router=semantic"]) == 0
    report = last_json(capsys)
    assert report["n_fed"] + report["n_already_right"] == 2 and report["n_eval"] == 3  # rows routed right are skipped
    assert report["lift"] == pytest.approx(report["after"] - report["before"], abs=1e-4)


def test_feedback_fraction_is_checked(data, capsys):
    assert main(["feedback", "--data", str(data), "--fraction", "1.5", "router=keyword"]) == 2
    assert "--fraction must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["forensics", "forensics.benchmark_suite"])
def test_both_entry_points_run_the_command_line(module, data):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", module, "accuracy", "--data", str(data), "--json", "router=keyword"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["n"] == 5
