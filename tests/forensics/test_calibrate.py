import json

import numpy as np
import pytest

from forensics.__main__ import main
from forensics.calibrate import Rankings, accuracy_at, fit_thresholds, run_calibrate
from router.config import build_router, load_config
from tests.conftest import FakeEncoder


def rankings(**kw):
    base = dict(truth=["a", "b", "c", "c"], l1_route=["", "", "", "b"], best_route=["a", "b", "a", "b"],
                best_score=[0.3, 0.15, 0.25, 0.9], margin=[0.1, 0.1, 0.1, 0.1])
    base.update(kw)
    return Rankings(**{k: np.array(v) for k, v in base.items()}, default_route="c", min_margin=0.0)


def test_accuracy_at_follows_l1_then_l2_then_default():
    r = rankings()
    # threshold 0.2: a (L2 right), b -> default c (wrong), a (wrong), L1 b (wrong)
    assert accuracy_at(r, 0.2) == pytest.approx(0.25)
    assert accuracy_at(r, 0.1) == pytest.approx(0.5)  # b now accepted
    assert accuracy_at(r, 0.1, {"a": 0.28}) == pytest.approx(0.75)  # row 3 falls to the default


def test_fit_never_worse_than_default_and_finds_route_thresholds():
    r = rankings(best_score=[0.28, 0.15, 0.25, 0.9])
    fit = fit_thresholds(r, default=0.2, grid=[0.0, 0.1, 0.2, 0.3])
    # 0.0 and 0.1 tie at 0.5; the one nearer the default wins
    assert fit["accuracy_before"] == 0.25 and fit["threshold"] == 0.1 and fit["accuracy_global"] == 0.5
    # route a needs more than its stray 0.25 row: 0.2 is in the grid but does not help, 0.3 loses row 0
    assert fit["route_thresholds"] == {} and fit["accuracy"] == 0.5
    finer = fit_thresholds(r, default=0.1, grid=[0.0, 0.1, 0.26])
    assert finer["threshold"] == 0.1 and finer["route_thresholds"] == {"a": 0.26} and finer["accuracy"] == 0.75
    assert [p["threshold"] for p in fit["curve"]] == [0.0, 0.1, 0.2, 0.3]
    flat = rankings(best_score=[0.3, 0.3, 0.3, 0.3], best_route=["a", "b", "c", "c"])
    kept = fit_thresholds(flat, default=0.2, grid=[0.0, 0.1, 0.2, 0.3, 0.4])
    assert kept["threshold"] == 0.2 and kept["accuracy"] >= kept["accuracy_before"]  # ties keep the default


def test_calibrate_writes_a_config_that_composes(labelled, tmp_path):
    out = tmp_path / "conf" / "router" / "calibrated.yaml"
    report = run_calibrate(labelled, ["router.semantic.threshold=0.45"], out, tmp_path / "plots",
                           grid=[0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5], encoder=FakeEncoder())
    assert out.exists() and (tmp_path / "plots" / "threshold_curve.html").exists()
    assert report["accuracy"] >= report["accuracy_before"]
    assert report["load_with"] == ["router=calibrated", f"hydra.searchpath=[file://{out.parent.parent.resolve()}]"]
    cfg = load_config(report["load_with"])
    assert cfg.router.semantic.threshold == report["threshold"] and cfg.router.keyword is not None
    assert dict(cfg.router.semantic.route_thresholds or {}) == report["route_thresholds"]
    router = build_router(cfg, encoder=FakeEncoder())
    assert router.semantic.route_thresholds == report["route_thresholds"]
    assert report["accuracy_measured"] == pytest.approx(report["accuracy"], abs=1e-4)  # offline fit = real routing
    assert "<script" in (tmp_path / "plots" / "threshold_curve.html").read_text()
    assert (tmp_path / "plots" / "threshold_curve.html").stat().st_size > 1_000_000  # plotly.js embedded


def test_calibrate_can_point_its_page_at_a_shared_plotlyjs(labelled, tmp_path):
    report = run_calibrate(labelled, (), tmp_path / "run" / "router" / "candidate.yaml", tmp_path / "run",
                           grid=[0.1, 0.2], encoder=FakeEncoder(), plotlyjs="../plotly.min.js")
    page = (tmp_path / "run" / "threshold_curve.html")
    assert report["curve_html"] == str(page) and 'src="../plotly.min.js"' in page.read_text()
    assert page.stat().st_size < 50_000


def test_calibrate_needs_a_semantic_tier(labelled, tmp_path, capsys):
    assert main(["calibrate", "--data", str(labelled), "--out", str(tmp_path / "c.yaml"), "router=keyword"]) == 2
    assert "has none" in capsys.readouterr().err


@pytest.mark.model
def test_calibrate_cli_with_the_real_model(labelled, tmp_path, capsys):
    out = tmp_path / "router" / "calibrated.yaml"
    assert main(["calibrate", "--data", str(labelled), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["accuracy_measured"] >= report["accuracy_before"]
    assert (tmp_path / "router" / "calibrated_threshold_curve.html").exists()
    assert len(report["curve"]) == 51
