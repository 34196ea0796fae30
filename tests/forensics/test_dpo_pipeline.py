import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.dpo_pipeline import (
    Correction,
    Preference,
    PreferenceStore,
    StoreError,
    export_dpo_dataset,
    main,
)

REPO = Path(__file__).resolve().parents[2]
HOSTILE = [
    "\x00nul\x00 inside",
    "".join(chr(i) for i in range(32)) + "\x7f\x85\u2028\u2029",
    "'); DROP TABLE preferences; --",
    "emoji 👩‍💻 🏳️‍🌈 \U0001F600",
    "RTL \u202eשלום עולם\u202c مرحبا",
    "\ufeffBOM, \\u0000 as text, \"quotes\" and \\ backslashes",
]


def pref(**kw) -> Preference:
    values = dict(prompt="what is 2+2?", answer_a="4", answer_b="five", expert_a="professor", model_a="qwen",
                  expert_b="zoomer", model_b="llama", verdict="a", route="math",
                  created_at="2025-01-01T00:00:00Z")
    return Preference(**{**values, **kw})


def read_jsonl(path: Path) -> list[dict]:
    lines = path.read_bytes().decode("utf-8").splitlines()  # splitlines: escaped U+2028 must not split a row
    return [json.loads(line) for line in lines]


def test_standard_form_leaves_out_ties_and_both_bad(store, tmp_path):
    store.add_preference(pref(prompt="p1", created_at="2025-01-01T00:00:00Z"))
    store.add_preference(pref(prompt="p2", verdict="b", created_at="2025-01-02T00:00:00Z"))
    store.add_preference(pref(prompt="p3", verdict="tie"))
    store.add_preference(pref(prompt="p4", verdict="both_bad"))
    out = tmp_path / "out" / "dpo.jsonl"
    assert export_dpo_dataset(store, out) == 2
    assert read_jsonl(out) == [  # oldest first
        {"prompt": "p1", "chosen": "4", "rejected": "five"},
        {"prompt": "p2", "chosen": "five", "rejected": "4"},
    ]


def test_conversational_form_with_history(store, tmp_path):
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
               {"role": "assistant", "content": "hello"}]
    store.add_preference(pref(prompt="and 3+3?", history=history, created_at="2025-01-02T00:00:00Z"))
    store.add_preference(pref(prompt="no history"))  # one file, one schema: this row is conversational too
    out = tmp_path / "dpo.jsonl"
    assert export_dpo_dataset(store, out) == 2
    rows = read_jsonl(out)
    assert rows[0] == {"prompt": [{"role": "user", "content": "no history"}],
                       "chosen": [{"role": "assistant", "content": "4"}],
                       "rejected": [{"role": "assistant", "content": "five"}]}
    assert rows[1]["prompt"] == [*history, {"role": "user", "content": "and 3+3?"}]


def test_duplicates_are_removed(store, tmp_path):
    for _ in range(3):
        store.add_preference(pref())
    store.add_preference(pref(expert_a="other", model_b="other"))  # same prompt, chosen, rejected
    store.add_preference(pref(answer_b="six"))
    assert export_dpo_dataset(store, tmp_path / "dpo.jsonl") == 2


def test_since(store, tmp_path):
    store.add_preference(pref(prompt="old", created_at="2025-01-31T23:59:59Z"))
    store.add_preference(pref(prompt="new", created_at="2025-02-01T00:00:00Z"))
    store.add_correction(Correction(query="old q", wrong_route="a", right_route="b", created_at="2025-01-01"))
    store.add_correction(Correction(query="new q", wrong_route="a", right_route="b", created_at="2025-03-01"))
    out = tmp_path / "dpo.jsonl"
    assert export_dpo_dataset(store, out, since="2025-02-01") == 1
    assert read_jsonl(out)[0]["prompt"] == "new"
    export_dpo_dataset(store, out, kind="routing", since="2025-02-01")
    assert [r["prompt"] for r in read_jsonl(out)] == ["new", "new q"]
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        export_dpo_dataset(store, out, since="last week")


def test_routing_kind(store, tmp_path):
    store.add_preference(pref(prompt="p1"))
    store.add_preference(pref(prompt="p2", verdict="b"))
    store.add_preference(pref(prompt="p2", verdict="b"))  # duplicate
    store.add_preference(pref(prompt="p3", verdict="tie"))
    store.add_preference(pref(prompt="p4", expert_b="professor"))  # same expert both sides
    store.add_correction(Correction(query="q1", wrong_route="code", right_route="math"))
    store.add_correction(Correction(query="q2", wrong_route=None, right_route="math"))
    store.add_correction(Correction(query="q3", wrong_route="math", right_route="math"))
    undone = store.add_correction(Correction(query="q4", wrong_route="code", right_route="math"))
    store.undo_correction(undone)
    out = tmp_path / "routing.jsonl"
    assert export_dpo_dataset(store, out, kind="routing") == 3
    assert read_jsonl(out) == [
        {"prompt": "p1", "chosen": "professor", "rejected": "zoomer"},
        {"prompt": "p2", "chosen": "zoomer", "rejected": "professor"},
        {"prompt": "q1", "chosen": "math", "rejected": "code"},
    ]
    with pytest.raises(ValueError, match="Available: answers, routing"):
        export_dpo_dataset(store, out, kind="experts")


def test_hostile_text_is_exported_intact(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite3", max_text_chars=2_000_000)  # the megabyte is kept whole
    texts = [*HOSTILE, ("".join(HOSTILE) * 20_000)[:1_000_000], "lone \ud800"]
    for i, text in enumerate(texts):
        store.add_preference(pref(prompt=text, answer_a=f"{i}{text}", answer_b=text[::-1], expert_a=text[:9]))
    out = tmp_path / "dpo.jsonl"
    assert export_dpo_dataset(store, out) == len(texts)
    rows = read_jsonl(out)
    texts[-1] = "lone \ufffd"  # the documented exception: lone surrogates are stored as U+FFFD
    assert [r["prompt"] for r in rows] == texts
    assert [r["chosen"] for r in rows] == [f"{i}{t}" for i, t in enumerate(texts)]
    assert [r["rejected"] for r in rows] == [t[::-1] for t in texts]
    export_dpo_dataset(store, out, kind="routing")
    assert [r["chosen"] for r in read_jsonl(out)] == [t[:9] for t in texts]
    store.close()


def test_export_is_atomic_and_accepts_a_path(store, tmp_path):
    store.add_preference(pref())
    out = tmp_path / "dpo.jsonl"
    out.write_text("stale\n" * 1000)
    assert export_dpo_dataset(str(store.path), out) == 1
    assert read_jsonl(out) == [{"prompt": "what is 2+2?", "chosen": "4", "rejected": "five"}]
    assert sorted(p.name for p in tmp_path.iterdir() if "dpo" in p.name) == ["dpo.jsonl"]  # no temp left
    with pytest.raises(StoreError, match="No preference store at"):
        export_dpo_dataset(tmp_path / "missing.sqlite3", out)
    assert not (tmp_path / "missing.sqlite3").exists()  # a typo in --db does not create an empty store


@pytest.mark.parametrize("history", [False, True], ids=["standard", "conversational"])
def test_loads_with_hugging_face_datasets(store, tmp_path, monkeypatch, history):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # keep any cache under tmp_path
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    for i, text in enumerate(HOSTILE):
        turns = [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}] if history else []
        store.add_preference(pref(prompt=text, answer_a=f"good {i}", answer_b=f"bad {i}", history=turns))
    out = tmp_path / "dpo.jsonl"
    export_dpo_dataset(store, out)
    ds = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert len(ds) == len(HOSTILE)
    assert ds[0]["prompt"] == ([{"role": "user", "content": HOSTILE[0]}, {"role": "assistant", "content": "ok"},
                                {"role": "user", "content": HOSTILE[0]}] if history else HOSTILE[0])


def test_cli_main(store, tmp_path, capsys):
    store.add_preference(pref())
    out = tmp_path / "dpo.jsonl"
    assert main(["export", "--out", str(out), "--db", str(store.path), "--kind", "routing"]) == 0
    assert "Wrote 1 routing rows" in capsys.readouterr().out


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "forensics.dpo_pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_subprocess(tmp_path):
    with PreferenceStore(tmp_path / "data" / "preferences.sqlite3") as store:
        store.add_preference(pref(created_at="2025-05-01"))
        store.add_preference(pref(prompt="older", created_at="2025-04-01"))
    done = run_cli("export", "--out", "dpo.jsonl", "--since", "2025-04-15", cwd=tmp_path)  # the default --db
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Wrote 1 answers rows to dpo.jsonl"
    assert len(read_jsonl(tmp_path / "dpo.jsonl")) == 1

    for args, message in ((["--db", "nope.sqlite3"], "error: No preference store at nope.sqlite3"),
                          (["--since", "2025-13-40"], "error: Invalid date '2025-13-40'")):
        done = run_cli("export", "--out", "x.jsonl", *args, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "x.jsonl").exists()


def test_user_keeps_only_that_users_records(store, tmp_path):
    store.add_preference(pref(prompt="alice's", user="alice"))
    store.add_preference(pref(prompt="bob's", user="bob"))
    store.add_correction(Correction(query="alice q", wrong_route="code", right_route="math", user="alice"))
    store.add_correction(Correction(query="bob q", wrong_route="code", right_route="math", user="bob"))
    out = tmp_path / "dpo.jsonl"
    assert export_dpo_dataset(store, out, user="alice") == 1 and read_jsonl(out)[0]["prompt"] == "alice's"
    assert export_dpo_dataset(store, out, kind="routing", user="alice") == 2
    assert [r["prompt"] for r in read_jsonl(out)] == ["alice's", "alice q"]
    assert export_dpo_dataset(store, out, kind="routing") == 4
    assert main(["export", "--out", str(out), "--db", str(store.path), "--user", "bob"]) == 0
    assert [r["prompt"] for r in read_jsonl(out)] == ["bob's"]


def test_session_corrections_stay_out_of_routing_data_until_promoted(store, tmp_path):
    store.add_correction(Correction(query="reviewed", wrong_route="code", right_route="math"))
    pending = store.add_correction(Correction(query="pending", wrong_route="code", right_route="math",
                                              user="anonymous:ab12cd", scope="session"))
    out = tmp_path / "routing.jsonl"
    assert export_dpo_dataset(store, out, kind="routing") == 1 and read_jsonl(out)[0]["prompt"] == "reviewed"
    store.promote_correction(pending)
    assert export_dpo_dataset(store, out, kind="routing") == 2


def test_votes_on_clipped_prompts_are_left_out_of_the_answers(tmp_path):
    with PreferenceStore(tmp_path / "p.sqlite3", max_text_chars=10) as store:
        store.add_preference(pref(prompt="short one"))
        store.add_preference(pref(prompt="a prompt longer than ten characters"))
        out = tmp_path / "dpo.jsonl"
        assert export_dpo_dataset(store, out) == 1 and read_jsonl(out)[0]["prompt"] == "short one"
        assert export_dpo_dataset(store, out, kind="routing") == 2  # which expert won still holds


def test_command_line_exports_from_a_postgresql_store(tmp_path):
    from tests.support.postgres import fresh_database

    with fresh_database("dpo") as url:
        with PreferenceStore(url) as store:
            store.add_preference(pref(prompt="Explain recursion"))
        done = run_cli("export", "--db", url, "--out", "pg.jsonl", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert [row["prompt"] for row in read_jsonl(tmp_path / "pg.jsonl")] == ["Explain recursion"]
