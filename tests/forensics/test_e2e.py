"""End-to-end mode against the Ollama-protocol test server, with the real client."""

import json

from forensics.__main__ import main
from tests.support.backends import FakeLLMServer

ROWS = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("Write a rust function that reverses a string", "code"),
    ("who wrote the novel frankenstein", "knowledge"),
]


def test_e2e_measures_every_model_on_every_route(tmp_path, capsys):
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in ROWS), encoding="utf-8")
    with FakeLLMServer(reply="An answer in a few words.", chunk_delay=0.005) as server:
        code = main(["sweep", "--e2e", "--data", str(data), "--out", str(tmp_path / "out"), "--per-route", "1",
                     "--json", "router=keyword", f"ollama.host={server.url}"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cells = {(r["model"], r["route"]): r for r in report["rows"]}
    assert set(cells) == {(m, r) for m in ("llama3.2:3b", "tinyllama") for r in ("roleplay", "code", "knowledge")}
    for row in cells.values():
        assert row["n"] == row["answered"] == 1 and row["errors"] == []
        assert row["ttft_p50_ms"] > 0 and row["tokens_per_s_p50"] == 50.0 and row["total_p50_ms"] > 0
        assert 0 < row["router_share_p50"] < 1
    assert (tmp_path / "out" / "e2e.csv").exists() and (tmp_path / "out" / "e2e_total_latency.html").exists()


def test_e2e_reports_a_missing_backend_per_cell(tmp_path, capsys):
    data = tmp_path / "labelled.jsonl"
    data.write_text(json.dumps({"query": ROWS[1][0], "route": "code"}) + "\n", encoding="utf-8")
    assert main(["sweep", "--e2e", "--data", str(data), "--out", str(tmp_path / "out"), "--json", "router=keyword",
                 "ollama.host=http://127.0.0.1:9", "ollama.connect_timeout=0.5"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(r["answered"] == 0 and "not reachable" in r["errors"][0] for r in report["rows"])
