"""Benchmarks tab handlers: sweep with the confirmation gate, reopening a run, calibration."""

import json

import pytest

from forensics.sweep import EncoderPool
from ui.benchmarks import calibrate, list_runs, reopen, sweep

ROWS = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("who wrote the novel frankenstein", "knowledge"),
    ("hi there, how are you doing today?", "chitchat"),
    ("Summarize the following text in two sentences: The council met on Monday.", "summarize"),
    ("What is 17% of 240?", "math"),
]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in ROWS), encoding="utf-8")
    return str(path)


def test_sweep_asks_before_a_large_grid(tmp_path, data):
    out = sweep(EncoderPool(), str(tmp_path / "runs"), 2, data, None,
                "router=keyword router.keyword.head_chars=100,200,300", False)
    assert "3 configurations, more than 2" in out[0]
    assert list_runs(str(tmp_path / "runs")) == []


def test_sweep_shows_figures_and_lists_the_run(tmp_path, data):
    runs = str(tmp_path / "runs")
    summary, table, accuracy, latency, scatter, confusion, dropdown = sweep(
        EncoderPool(), runs, 24, data, None, "router=keyword router.keyword.head_chars=100,300", False)
    assert "2 configurations" in summary and len(table) == 2
    assert accuracy is not None and latency is not None and scatter is not None
    [run] = list_runs(runs)
    again = reopen(run)
    assert again[1] == table and "Best:" in again[0]


def test_bad_data_is_reported(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x", "route": "cooking"}\n', encoding="utf-8")
    summary = sweep(EncoderPool(), str(tmp_path / "runs"), 24, str(bad), None, "router=keyword", False)[0]
    assert "cooking" in summary


@pytest.mark.model
def test_calibrate_writes_a_config(tmp_path, data):
    text, curve = calibrate(data, None, str(tmp_path / "calibrated.yaml"))
    assert "Threshold" in text and (tmp_path / "calibrated.yaml").exists() and curve is not None
