"""Benchmarks tab handlers: admins only, the grid sandbox, confined data, bounded outputs, calibration."""

import inspect
import json
import os
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

import ui.benchmarks as benchmarks
from forensics.encoder_cache import EncoderPool
from router.config import CONFIG_DIR, load_config
from tests.conftest import FakeEncoder
from ui.auth import Accounts, parse_users

ROWS = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("who wrote the novel frankenstein", "knowledge"),
    ("hi there, how are you doing today?", "chitchat"),
    ("Summarize the following text in two sentences: The council met on Monday.", "summarize"),
    ("What is 17% of 240?", "math"),
]
ROUTES = list(load_config().routes)
GRID = "router=semantic router.semantic.head=null"  # one quick configuration: no hyperscan compile


def request(username=None):
    return SimpleNamespace(username=username, session_hash="s-1", client=SimpleNamespace(host="10.0.0.7"))


ADMIN, LABELER, VISITOR = request("alice"), request("bob"), request()


def build(tmp_path: Path, router: str | None = None) -> SimpleNamespace:
    """The tab's handlers over folders in tmp_path, with the fake encoder; `.dirs` names the folders."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "labelled.jsonl").write_text(
        "".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in ROWS), encoding="utf-8")
    dirs = SimpleNamespace(data=data_dir, out=tmp_path / "runs", cal=tmp_path / "calibrations",
                           applied=tmp_path / "applied" / "router" / "calibrated.yaml")
    accounts = Accounts(users=parse_users("alice:admin:pw1234,bob:labeler:pw5678"), public_demo=True)
    with gr.Blocks() as demo:
        handlers = benchmarks.build_benchmarks(
            accounts, ROUTES, data=str(data_dir / "labelled.jsonl"), data_dir=str(data_dir), out_dir=str(dirs.out),
            calibrations_dir=str(dirs.cal), max_configs=2, hard_max_configs=200, keep_runs=2, max_upload_bytes=2000,
            calibrated_path=str(dirs.applied), pool=EncoderPool(factory=lambda cfg: FakeEncoder()), router=router)
    return SimpleNamespace(**handlers, dirs=dirs, demo=demo)


@pytest.fixture
def tab(tmp_path):
    return build(tmp_path)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """One tab shared by the tests in which every call is refused (each checks that nothing was written)."""
    return build(tmp_path_factory.mktemp("refusing"))


CALLS = {
    "sweep": ("labelled.jsonl", GRID, False), "reopen": ("x",), "calibrate": ("labelled.jsonl",), "apply": (),
    "upload": ("x.jsonl",), "fn": (),
}


@pytest.mark.parametrize("who", [VISITOR, LABELER], ids=["visitor", "labeler"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_handler_is_for_admins_only(refusing, name, who):
    with pytest.raises(gr.Error, match="Only an admin"):
        getattr(refusing, name)(*CALLS[name], who)
    assert not refusing.dirs.out.exists() and not refusing.dirs.cal.exists() and not refusing.dirs.applied.exists()


def test_handlers_take_the_request_last_and_runs_go_one_at_a_time(refusing):
    tab = refusing
    for fn in tab.demo.fns.values():
        params = list(inspect.signature(fn.fn).parameters.values())
        assert params[-1].name == "request" and params[-1].annotation == "gr.Request", fn.name
    runs = [fn for fn in tab.demo.fns.values() if fn.api_name in ("sweep", "calibrate")]
    assert len(runs) == 2 and all(fn.concurrency_limit == 1 for fn in runs)
    assert runs[0].concurrency_id == runs[1].concurrency_id


@pytest.mark.parametrize("grid, named", [
    ("${oc.env:HOME}", "interpolation"),
    ("+x._target_=pathlib.Path.unlink", "_target_"),
    ("router.semantic.threshold=${oc.env:HOME}", "interpolation"),
    ("hydra.run.dir=/tmp/x", "hydra settings"),
    ("~router.semantic", "deleting (~)"),
    ("router=../../etc/passwd", "paths"),
    ("router.semantic.head._target_=builtins.open", "_target_"),
    (" ".join([f"router.semantic.threshold={','.join(f'0.{i:02d}' for i in range(100))}",
               f"router.keyword.head_chars={','.join(str(i) for i in range(100))}"]), "at most 200"),
])
def test_grid_payloads_are_refused_before_anything_runs(refusing, grid, named):
    summary, *rest = refusing.sweep("labelled.jsonl", grid, True, ADMIN)
    assert summary.startswith("⚠️ ") and named in summary
    assert os.environ["HOME"] not in summary.replace("$HOME", "")
    assert rest[:5] == [[], None, None, None, None], "a refusal replaces the previous run's results"
    assert not refusing.dirs.out.exists()


def test_a_large_grid_needs_the_box_ticked(refusing):
    tab = refusing
    summary = tab.sweep("labelled.jsonl", "router=keyword router.keyword.head_chars=100,200,300", False, ADMIN)[0]
    assert "3 configurations, more than 2" in summary and not tab.dirs.out.exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../x.jsonl", "link.jsonl", "", None])
def test_data_paths_outside_data_dir_are_refused(tab, tmp_path, name):
    (tmp_path / "x.jsonl").write_text((tab.dirs.data / "labelled.jsonl").read_text())
    (tab.dirs.data / "link.jsonl").symlink_to(tmp_path / "x.jsonl")
    for handler, args in ((tab.sweep, (GRID, False)), (tab.calibrate, ())):
        message = handler(name, *args, ADMIN)[0]
        assert message.startswith("⚠️ ") and ("outside the benchmark data folder" in message or "Choose" in message)
    assert not tab.dirs.out.exists() and not tab.dirs.cal.exists()


def test_sweep_shows_figures_keeps_the_newest_runs_and_reopens_only_its_own(tab):
    for i, name in enumerate(["2020-01-01_00-00-00", "2020-01-02_00-00-00"]):
        old = tab.dirs.out / name
        old.mkdir(parents=True)
        (old / "results.json").write_text(json.dumps({"rows": [], "failed": [], "latency_note": ""}))
        os.utime(old, ns=(i * 10**9, i * 10**9))
    summary, table, accuracy, latency, scatter, confusion, dropdown = tab.sweep("labelled.jsonl", GRID, False, ADMIN)
    assert "1 configurations" in summary and "Best:" in summary and len(table) == 1
    assert accuracy is not None and latency is not None and scatter is not None
    for figure in (accuracy, latency):  # short labels, the overrides on hover, readable cells
        assert list(figure.data[0].y) == ["c0"] and "router=semantic" in figure.data[0].customdata[0][0]
        assert figure.data[0].textfont.size >= 11
    assert benchmarks.LATENCY_NOTE in summary and "\n" not in benchmarks.LATENCY_NOTE
    failed = tab.sweep("labelled.jsonl", "router=nonsense", False, ADMIN)
    assert failed[0].startswith("⚠️") and failed[1:6] == ([], None, None, None, None)
    new = tab.dirs.out / dropdown.value
    assert sorted(p.name for p in tab.dirs.out.iterdir()) == sorted(["2020-01-02_00-00-00", new.name, "plotly.min.js"])
    assert dropdown.choices[0][0] == new.name  # listed by name, newest first; no server path
    assert sum(p.stat().st_size for p in new.rglob("*")) < 500_000  # plotly.js is shared beside the runs
    again = tab.reopen(new.name, ADMIN)
    assert again[1] == table and "Best:" in again[0]
    for escape in ("..", str(new), "../runs/" + new.name, "/etc"):
        assert tab.reopen(escape, ADMIN)[0].startswith("⚠️ ")


def test_bad_data_is_reported_without_server_paths(tab):
    (tab.dirs.data / "bad.jsonl").write_text('{"query": "x", "route": "cooking"}\n', encoding="utf-8")
    summary = tab.sweep("bad.jsonl", GRID, False, ADMIN)[0]
    assert "cooking" in summary and "<data_dir>/bad.jsonl:1" in summary and str(tab.dirs.data) not in summary
    assert list(tab.dirs.out.iterdir()) == []  # the empty run folder is removed


def test_failures_shown_never_echo_environment_values(tab, monkeypatch):
    monkeypatch.setenv("SPACE_SECRET", "s3cr3t-value-xyz")
    bench = benchmarks.Bench(tab.dirs.data, tab.dirs.out, tab.dirs.cal, tuple(ROUTES))
    row = {"config_id": "c0", "overrides": ["router=semantic"], "strategy": None, "route": "all", "accuracy": None,
           "expert_accuracy": None, "error": "ConfigError: cannot open s3cr3t-value-xyz/x"}
    shown = benchmarks.show(bench, {"rows": [row], "failed": [{**row}]})
    assert "s3cr3t-value-xyz" not in shown[0] + json.dumps(shown[1]) and "$SPACE_SECRET/x" in shown[0]


def test_one_run_at_a_time(tab):
    with benchmarks._RUNNING:
        assert tab.sweep("labelled.jsonl", GRID, False, ADMIN)[0] == benchmarks.BUSY
        assert tab.calibrate("labelled.jsonl", ADMIN)[0] == benchmarks.BUSY
    assert not tab.dirs.out.exists() and not tab.dirs.cal.exists()


def test_uploads_are_checked_and_copied_into_data_dir(tab, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text((tab.dirs.data / "labelled.jsonl").read_text() * 10)
    dropdown, message = tab.upload(str(big), ADMIN)
    assert "big.jsonl is 0.0 MB; at most 0.0 MB" in message and not (tab.dirs.data / "uploads").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert "bad.jsonl:1: not valid JSON" in tab.upload(str(bad), ADMIN)[1]
    good = tmp_path / "good.jsonl"
    good.write_text((tab.dirs.data / "labelled.jsonl").read_text())
    dropdown, message = tab.upload(str(good), ADMIN)
    assert dropdown.value.startswith("uploads/") and (tab.dirs.data / dropdown.value).read_text() == good.read_text()
    data, runs = tab.fn(ADMIN)
    assert [c[0] for c in data.choices] == ["labelled.jsonl", dropdown.value]


def tree(root: Path) -> list:
    return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*"))


def test_calibrate_writes_under_calibrations_only_and_apply_needs_an_admin(tmp_path):
    tab = build(tmp_path, router="semantic")  # the app's router is what the tab calibrates
    before = tree(CONFIG_DIR)
    assert tab.apply(ADMIN).startswith("⚠️ There is no calibration")
    text, curve = tab.calibrate("labelled.jsonl", ADMIN)
    assert "Saved as calibration" in text and curve is not None and tree(CONFIG_DIR) == before
    [run] = [p for p in tab.dirs.cal.iterdir() if p.is_dir()]
    assert (run / "router" / "candidate.yaml").exists() and (tab.dirs.cal / "plotly.min.js").exists()
    assert sum(p.stat().st_size for p in run.rglob("*")) < 100_000
    with pytest.raises(gr.Error, match="Only an admin"):
        tab.apply(LABELER)
    assert not tab.dirs.applied.exists()
    message = tab.apply(ADMIN)
    assert "Applied calibration" in message and "router=calibrated" in message
    cfg = load_config(["router=calibrated", f"hydra.searchpath=[file://{tab.dirs.applied.parent.parent}]"])
    recorded = json.loads((run / "calibration.json").read_text())
    assert recorded["base"] == "semantic" and "- semantic" in (run / "router" / "candidate.yaml").read_text()
    assert cfg.router.semantic.threshold == recorded["threshold"] and tree(CONFIG_DIR) == before


def test_the_tab_calibrates_the_router_the_app_runs(tmp_path):
    from router.config import calibration_base

    applied = tmp_path / "router" / "calibrated.yaml"
    assert calibration_base("trained", applied) == "trained" and calibration_base("calibrated", applied) == "calibrated"
    applied.parent.mkdir()
    applied.write_text("defaults:\n  - trained\n  - _self_\nsemantic:\n  threshold: 0.2\n")
    assert calibration_base("calibrated", applied) == "trained"  # never on top of itself
    assert calibration_base("hybrid", applied) == "hybrid"
