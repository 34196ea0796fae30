"""Grouped cross-validation: folds by dataset, both designs in the same folds, the JSON report."""

import json

import pytest

from forensics import crossval
from forensics.__main__ import main
from forensics.crossval import assign_folds, load_grouped, reliability, run_crossval
from tests.conftest import FakeEncoder
from tests.forensics.conftest import ROWS

KEYS = ("macro_accuracy", "macro_expert_accuracy", "baseline_macro_accuracy", "baseline_macro_expert_accuracy")


@pytest.fixture
def grouped(tmp_path):
    """Twenty rows in five datasets of four (rows i, i+5, i+10, i+15 share dataset i)."""
    path = tmp_path / "grouped.jsonl"
    path.write_text("".join(json.dumps({"query": q, "route": r, "dataset": f"d{i % 5}"}) + "\n"
                            for i, (q, r) in enumerate(ROWS)), encoding="utf-8")
    return path


def test_every_dataset_in_exactly_one_fold_balanced_and_seeded():
    sizes = {f"d{i}": n for i, n in enumerate([400, 200, 120, 120, 120, 90, 90, 60, 45, 45, 35, 19])}
    folds = assign_folds(sizes, 5, seed=3)
    assert set(folds) == set(sizes) and set(folds.values()) == set(range(5))
    load = [sum(n for d, n in sizes.items() if folds[d] == f) for f in range(5)]
    assert max(load) - min(load) <= max(sizes.values())  # greedy: no fold is more than one dataset heavier
    assert assign_folds(sizes, 5, seed=3) == folds
    assert assign_folds(sizes, 0) == {d: i for i, d in enumerate(sorted(sizes))}
    with pytest.raises(Exception, match="--folds"):
        assign_folds(sizes, 13)


def test_reliability_table_and_ece():
    import numpy as np

    table, ece = reliability(np.array([0.95, 0.95, 0.55, 0.55]), np.array([True, True, True, False]))
    assert [b["n"] for b in table] == [2, 2] and ece == pytest.approx(0.05, abs=1e-4)


def test_load_grouped_keeps_the_dataset(grouped):
    rows = load_grouped([grouped], ["roleplay", "code", "math", "knowledge", "chitchat", "summarize", "extract",
                                    "creative", "reasoning"])
    assert len(rows) == 20 and {r.source for r in rows} == {f"d{i}" for i in range(5)}


NO_SHIPPED = ["router.semantic.corpus=null"]  # train on the folds only, not on the shipped corpus too


def test_both_designs_in_the_same_folds(grouped):
    report = run_crossval([grouped], folds=2, seed=0, encoder=FakeEncoder(), overrides=NO_SHIPPED)
    assert all(isinstance(report[k], float) for k in KEYS)
    assert set(report["per_dataset"]) == set(report["fold_of"]) == {f"d{i}" for i in range(5)}
    for name, row in report["per_dataset"].items():
        assert row["fold"] == report["fold_of"][name]  # tested once, in its own fold, by both designs
        assert {"accuracy", "baseline_accuracy", "expert_accuracy", "baseline_expert_accuracy"} <= set(row)
    assert report["folds"] == 2
    assert {"ece", "reliability"} <= set(report["calibration"])
    assert set(report["unsure"]["curves"]) == set(crossval.POLICIES)
    assert run_crossval([grouped], folds=2, seed=0, encoder=FakeEncoder(),
                        overrides=NO_SHIPPED)["per_dataset"] == report["per_dataset"]


def test_leave_one_dataset_out_from_the_command_line(grouped, monkeypatch, capsys):
    monkeypatch.setattr(crossval, "build_encoder", lambda cfg: FakeEncoder())
    assert main(["crossval", "--data", str(grouped), "--folds", "0", "--json", *NO_SHIPPED]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(k in report for k in KEYS) and report["folds"] == 5
    assert sorted(report["fold_of"].values()) == [0, 1, 2, 3, 4]


def test_configured_corpus_files_outside_the_evaluation_train_every_fold(grouped, tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(json.dumps({"query": f"tell me a joke about {animal}", "route": "chitchat",
                                         "dataset": "jokes"}) + "\n" for animal in ("cats", "dogs")))
    corpus = f"router.semantic.corpus=[{json.dumps(str(grouped))},{json.dumps(str(extra))}]"
    report = run_crossval([grouped], folds=2, seed=0, encoder=FakeEncoder(), overrides=[corpus])
    assert report["always_trained"] == {"rows": 2, "datasets": ["jokes"]}
    assert "jokes" not in report["per_dataset"] and set(report["per_dataset"]) == {f"d{i}" for i in range(5)}
    # the evaluated file is never trained on whole, even when the configuration lists it
    assert run_crossval([grouped, extra], folds=2, seed=0, encoder=FakeEncoder(),
                        overrides=[corpus])["always_trained"]["rows"] == 0
