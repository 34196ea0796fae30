"""The Benchmarks tab: sweeps and calibration on labelled data, with interactive heatmaps and past runs."""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from functools import partial
from pathlib import Path

import gradio as gr

from forensics import plots
from forensics.calibrate import run_calibrate
from forensics.sweep import EncoderPool, best_config, expand_grid, run_sweep
from router.errors import RouterError

DEFAULT_GRID = "router=keyword,semantic,hybrid router.semantic.threshold=0.1,0.15,0.2,0.25,0.3"
TABLE_COLUMNS = ["config", "overrides", "strategy", "accuracy", "expert accuracy", "L1", "L2", "default",
                 "p50 µs", "p99 µs", "error"]


def list_runs(out_dir: str) -> list[str]:
    """Earlier sweep folders (newest first) that hold results."""
    root = Path(out_dir)
    return sorted((str(p.parent) for p in root.glob("*/results.json")), reverse=True) if root.is_dir() else []


def show(report: dict) -> tuple:
    """(summary, table, accuracy heatmap, latency heatmap, scatter, confusion) for a sweep report."""
    rows = [r for r in report["rows"] if r.get("error") is None]
    table = [[r["config_id"], " ".join(r["overrides"]), r["strategy"], r["accuracy"], r["expert_accuracy"],
              r.get("l1_share"), r.get("l2_share"), r.get("default_share"), r.get("p50_us"), r.get("p99_us"),
              r.get("error") or ""] for r in report["rows"] if r["route"] == "all"]
    best = report.get("best")
    lines = [f"**{len(table)} configurations**" + (f" in {report['wall_s']} s" if report.get("wall_s") else "")
             + (" (interrupted: rows so far kept)" if report.get("interrupted") else "")]
    if best:
        lines.append(f"Best: `{' '.join(best['overrides'])}` · accuracy {best['accuracy']:.3f} · "
                     f"expert accuracy {best['expert_accuracy']:.3f} · p50 {best['p50_us']:.0f} µs")
    for failure in report.get("failed", []):
        lines.append(f"⚠️ `{' '.join(failure['overrides'])}` failed: {failure['error']}")
    analytics = report.get("analytics", {}).get(best["config_id"], {}) if best else {}
    if analytics.get("never_fired") is not None:
        lines.append(f"L1 rules that never fired: {len(analytics['never_fired'])}")
    if analytics.get("l1_l2_disagreements"):
        d = analytics["l1_l2_disagreements"]
        lines.append(f"Queries where L1 and L2 disagree: {d['count']} (L1 right {d['l1_right']}, L2 right {d['l2_right']})")
    if report.get("latency_note"):
        lines.append(f"_{report['latency_note']}_")
    if not rows:
        return "  \n".join(lines), table, None, None, None, None
    confusion = report.get("confusion", {}).get(best["config_id"]) if best else None
    return ("  \n".join(lines), table, plots.accuracy_heatmap(rows), plots.latency_heatmap(rows),
            plots.latency_accuracy_scatter(rows), plots.confusion_chart(confusion) if confusion else None)


def sweep(pool: EncoderPool, out_dir: str, max_configs: int, data: str, upload: str | None, grid_text: str,
          confirmed: bool, progress=gr.Progress(track_tqdm=True)):
    """Run a sweep from the tab; asks for confirmation above `max_configs` configurations."""
    path = upload or data
    if not path:
        return ("Choose a labelled JSONL file: a path or an upload.", *[gr.skip()] * 5, gr.skip())
    try:
        grid = shlex.split(grid_text or "")
        n = len(expand_grid(grid))
    except (ValueError, RouterError) as e:
        return (f"⚠️ {e}", *[gr.skip()] * 5, gr.skip())
    if n > max_configs and not confirmed:
        return (f"This grid has {n} configurations, more than {max_configs} (benchmarks.max_configs). "
                "Tick “Run large grids” to go ahead.", *[gr.skip()] * 5, gr.skip())
    target = Path(out_dir) / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    try:
        report = run_sweep(path, grid, out_dir=target, pool=pool)
    except RouterError as e:
        return (f"⚠️ {e}", *[gr.skip()] * 5, gr.skip())
    return (*show(report), gr.Dropdown(choices=list_runs(out_dir), value=str(target)))


def reopen(run_dir: str | None):
    """Show an earlier sweep from its folder."""
    if not run_dir:
        return ("Pick a run.", *[gr.skip()] * 5)
    folder = Path(run_dir)
    report = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    analytics = folder / "analytics.json"
    report["analytics"] = json.loads(analytics.read_text(encoding="utf-8")) if analytics.exists() else {}
    report["best"] = best_config(report["rows"])
    return show(report)


def calibrate(data: str, upload: str | None, out: str, progress=gr.Progress(track_tqdm=True)):
    """Fit the L2 thresholds on the labelled file and write a router config the app can load."""
    path = upload or data
    if not path:
        return "Choose a labelled JSONL file: a path or an upload.", None
    try:
        report = run_calibrate(path, out=out)
    except RouterError as e:
        return f"⚠️ {e}", None
    routes = ", ".join(f"{k} {v}" for k, v in report["route_thresholds"].items()) or "none"
    text = (f"Threshold {report['default_threshold']} → **{report['threshold']}**; per route: {routes}.  \n"
            f"Accuracy {report['accuracy_before']:.3f} → {report['accuracy']:.3f}. Wrote `{report['config']}`; "
            f"load it with `{' '.join(report['load_with']) or 'a copy under conf/router/'}`.")
    return text, plots.threshold_curve_chart(report["curve"], report["threshold"], report["default_threshold"])


def build_benchmarks(data: str | None, out_dir: str, max_configs: int, calibrated_path: str) -> None:
    """Lay out the Benchmarks tab inside the current Blocks context."""
    pool = EncoderPool()  # query embeddings are computed once per encoder and reused by every run
    with gr.Row():
        path = gr.Textbox(value=data or "", label="Labelled JSONL (path)", scale=3, elem_id="bench-data")
        upload = gr.File(label="…or upload one", file_types=[".jsonl"], type="filepath", scale=2)
    grid = gr.Textbox(value=DEFAULT_GRID, label="Grid (Hydra-style sweep overrides)", elem_id="bench-grid")
    with gr.Row():
        confirmed = gr.Checkbox(label=f"Run large grids (over {max_configs} configurations)")
        go = gr.Button("Run sweep", variant="primary", elem_id="bench-run")
        fit = gr.Button("Calibrate L2 thresholds", elem_id="bench-calibrate")
    summary = gr.Markdown(elem_id="bench-summary")
    table = gr.Dataframe(headers=TABLE_COLUMNS, label="Configurations", wrap=True, elem_id="bench-table")
    with gr.Row():
        accuracy = gr.Plot(label="Accuracy: configuration × route", elem_id="bench-accuracy")
        latency = gr.Plot(label="Latency p50: configuration × route", elem_id="bench-latency")
    with gr.Row():
        scatter = gr.Plot(label="Latency vs accuracy (Pareto front)", elem_id="bench-scatter")
        confusion = gr.Plot(label="Confusion of the best configuration", elem_id="bench-confusion")
    with gr.Row():
        runs = gr.Dropdown(choices=list_runs(out_dir), label="Earlier runs", scale=3, elem_id="bench-runs")
        reopen_button = gr.Button("Open run", scale=1)
    calibration = gr.Markdown(elem_id="bench-calibration")
    curve = gr.Plot(label="Accuracy vs L2 threshold", elem_id="bench-curve")
    figures = [summary, table, accuracy, latency, scatter, confusion]
    go.click(partial(sweep, pool, out_dir, max_configs), [path, upload, grid, confirmed], [*figures, runs],
             api_name="sweep")
    reopen_button.click(reopen, runs, figures, api_visibility="private")
    fit.click(partial(calibrate, out=calibrated_path), [path, upload], [calibration, curve], api_name="calibrate")
