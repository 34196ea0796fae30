import csv
import json

import numpy as np
import pytest

import forensics.sweep as sweep_module
from forensics.__main__ import main
import forensics.encoder_cache as encoder_cache
from forensics.encoder_cache import MemoEncoder
from forensics.sweep import expand_grid, run_sweep, split_values
from router.errors import ConfigError
from tests.conftest import FakeEncoder


def test_split_values_respects_brackets_and_quotes():
    assert split_values("0.1,0.2") == ["0.1", "0.2"]
    assert split_values("[a,b],c") == ["[a,b]", "c"]
    assert split_values("'x,y',\"u,v\",{k: 1, j: 2}") == ["'x,y'", '"u,v"', "{k: 1, j: 2}"]
    assert split_values("single") == ["single"]


def test_expand_grid_is_a_cartesian_product():
    grid = expand_grid(["router=keyword,hybrid", "router.semantic.threshold=0.1,0.2", "router.semantic.margin=0"])
    assert len(grid) == 4
    assert grid[0] == ["router=keyword", "router.semantic.threshold=0.1", "router.semantic.margin=0"]
    assert all(combo[2] == "router.semantic.margin=0" for combo in grid)
    assert expand_grid(["router.keyword.priority=[code,math]"]) == [["router.keyword.priority=[code,math]"]]
    assert expand_grid([]) == [[]]
    with pytest.raises(ConfigError, match="not key=value"):
        expand_grid(["router"])


def test_memo_encoder_embeds_each_text_once():
    inner = FakeEncoder()
    memo = MemoEncoder(inner)
    first = memo.encode(["a b", "c d", "a b"])
    assert inner.calls == 1 and first.shape == (3, 64) and np.allclose(first[0], first[2])
    assert np.allclose(memo.encode(["c d"])[0], first[1]) and inner.calls == 1
    assert memo.model_id == inner.model_id and memo.encode([]).shape[0] == 0


def test_encoder_pool_keeps_the_most_recently_used(monkeypatch):
    monkeypatch.setattr(encoder_cache, "config_key", str)
    built = []

    def factory(cfg):
        built.append(cfg)
        encoder = FakeEncoder()
        encoder.model_id = cfg
        return encoder

    pool = encoder_cache.EncoderPool(factory, max_encoders=2)
    a = pool.get("a")
    a.encode(["x"])
    assert pool.get("b") is not a and pool.get("a") is a  # "a" is now the most recently used
    pool.get("c")  # evicts "b"
    assert pool.get("a") is a and len(built) == 3
    pool.get("b")  # built again; evicts "c"
    assert built == ["a", "b", "c", "b"] and set(pool._memos) == {"a", "b"}


def test_sweep_writes_rows_per_config_and_route(labelled, tmp_path, fake_pool):
    out = tmp_path / "sweep"
    report = run_sweep(labelled, ["router=keyword,hybrid", "router.semantic.threshold=0.1,0.3"], out, pool=fake_pool)
    routes = {r["route"] for r in report["rows"]}
    assert len(routes) == 10 and "all" in routes  # 9 routes plus "all"
    assert len(report["rows"]) == 4 * 10 and not report["failed"]
    keyword_rows = [r for r in report["rows"] if r["strategy"] == "keyword" and r["route"] == "all"]
    assert keyword_rows[1]["same_as"] == keyword_rows[0]["config_id"]  # the threshold does not apply to L1 only
    with (out / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 40
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"][0]["overrides"] == ["router=keyword", "router.semantic.threshold=0.1"]
    assert "cached" in saved["latency_note"]
    configs = json.loads((out / "configs.json").read_text())
    assert set(configs) == {"c0", "c1", "c2", "c3"}
    assert set(configs["c2"]["config"]) == {"router", "encoder", "experts", "exemplars", "routes"}
    tables = json.loads((out / "routes.json").read_text())  # the route table, once for every configuration
    assert list(tables) == [configs["c2"]["config"]["routes"]] and "code" in tables[configs["c2"]["config"]["routes"]]
    analytics = json.loads((out / "analytics.json").read_text())
    hybrid = analytics["c2"]
    assert {"route", "pattern"} <= set(hybrid["never_fired"][0])
    assert hybrid["l1_l2_disagreements"]["count"] >= len(hybrid["l1_l2_disagreements"]["sample"])
    for name in ("accuracy_heatmap.html", "latency_heatmap.html", "latency_accuracy.html", "confusion_best.html"):
        html = (out / name).read_text()
        assert 'src="https://cdn.plot.ly' not in html and 'src="plotly.min.js"' in html
    assert (out / "plotly.min.js").exists()


def test_runs_can_share_one_plotlyjs(labelled, tmp_path, fake_pool):
    out = tmp_path / "runs" / "one"
    run_sweep(labelled, ["router=keyword"], out, pool=fake_pool, plotlyjs="shared")
    assert not (out / "plotly.min.js").exists() and (tmp_path / "runs" / "plotly.min.js").exists()
    assert 'src="../plotly.min.js"' in (out / "accuracy_heatmap.html").read_text()
    assert sum(p.stat().st_size for p in out.iterdir()) < 500_000


def test_failed_configuration_is_reported_and_others_kept(labelled, tmp_path, fake_pool):
    report = run_sweep(labelled, ["router=semantic", "router.semantic.threshold=0.1,5,0.2"], tmp_path / "s", pool=fake_pool)
    assert [f["config_id"] for f in report["failed"]] == ["c1"]
    assert "threshold" in report["failed"][0]["error"]
    all_rows = [r for r in report["rows"] if r["route"] == "all"]
    assert [r["error"] is None for r in all_rows] == [True, False, True]
    saved = json.loads((tmp_path / "s" / "results.json").read_text())
    assert any(r["error"] and "threshold" in r["error"] for r in saved["rows"])


def test_interrupted_sweep_keeps_finished_rows(labelled, tmp_path, fake_pool, monkeypatch):
    real, calls = sweep_module.build_router, []

    def interrupt_second(cfg, encoder=None):
        calls.append(cfg)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, encoder=encoder)

    monkeypatch.setattr(sweep_module, "build_router", interrupt_second)
    out = tmp_path / "s"
    report = run_sweep(labelled, ["router=semantic", "router.semantic.threshold=0.1,0.2,0.3"], out, pool=fake_pool)
    assert report["interrupted"] and {r["config_id"] for r in report["rows"]} == {"c0"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["interrupted"] and {r["config_id"] for r in saved["rows"]} == {"c0"}


@pytest.mark.parametrize("content, message", [
    ('{"query": "hi", "route": "chitchat"}\nnot json\n', ":2: not valid JSON"),
    ('{"query": "hi", "route": "chitchat"}\n{"query": "x", "route": "cooking"}\n', ":2: unknown route 'cooking'"),
    ("", "holds no labelled rows"),
])
@pytest.mark.parametrize("command", ["sweep", "calibrate"])
def test_bad_data_is_an_error_with_exit_2(tmp_path, capsys, content, message, command):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    extra = ["router=keyword"] if command == "sweep" else ["--out", str(tmp_path / "router" / "c.yaml")]
    assert main([command, "--data", str(path), "--out" if command == "sweep" else "--plots", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "router" / "c.yaml").exists()


def test_sweep_cli_prints_table_and_json(labelled, tmp_path, capsys):
    assert main(["sweep", "--data", str(labelled), "--out", str(tmp_path / "s"), "--json",
                 "router=keyword", "router.default_route=knowledge,chitchat"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["n_configs"] == 2 and report["best"]["route"] == "all" and "wall_s" in report
    assert any(line.startswith("best: ") for line in lines)


@pytest.mark.model
def test_sweep_with_the_real_model_encodes_each_query_once(labelled, tmp_path):
    report = run_sweep(labelled, ["router=semantic,hybrid", "router.semantic.threshold=0.1,0.2"], tmp_path / "s")
    assert not report["failed"] and len([r for r in report["rows"] if r["route"] == "all"]) == 4
