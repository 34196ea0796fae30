"""The Benchmarks tab (admins only): sweeps and calibration on labelled data, heatmaps and past runs.

Everything a caller sends is only input, checked on the server: the grid goes through the allowlist
of forensics.grid (the command line keeps full Hydra overrides), data names must lie inside
benchmarks.data_dir, run names inside their folder, and every handler checks for an admin first.
Runs go one at a time, and only the newest `keep_runs` sweeps and calibrations are kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from forensics import plots, workspace
from forensics.calibrate import run_calibrate, write_calibrated_config
from forensics.grid import MAX_ENCODERS, GridError, NeedsConfirmation, parse_grid, redact
from forensics.encoder_cache import EncoderPool
from forensics.sweep import best_config, run_sweep
from router.config import calibration_base, load_config, router_choice
from router.errors import RouterError
from ui.auth import Accounts, caller

DEFAULT_GRID = "router=keyword,semantic,hybrid,trained router.semantic.threshold=0.1,0.15,0.2,0.25,0.3"
TABLE_COLUMNS = ["config", "overrides", "strategy", "accuracy", "expert accuracy", "L1", "L2", "default",
                 "p50 µs", "p99 µs", "error"]
SWEEP_MARKER, CALIBRATION_MARKER = "results.json", "calibration.json"
CANDIDATE = "candidate"  # a calibration's config is router/candidate.yaml in its folder: no name under conf/router
ACTION = "run benchmarks"
BUSY = "⚠️ A sweep or calibration is already running; try again when it has finished."
LATENCY_NOTE = "Latency here is the router's decision time with each query's embedding cached (no model encode)."
# One sweep or calibration at a time in this process, however many Blocks the app builds: runs are
# CPU-bound, share the encoder memo, and retention must not delete a folder another run is writing.
_RUNNING = threading.Lock()
log = logging.getLogger(__name__)


@contextmanager
def _exclusive() -> Iterator[bool]:
    """Whether this caller got the one run slot (held until the block ends); never waits for it."""
    free = _RUNNING.acquire(blocking=False)
    try:
        yield free
    finally:
        if free:
            _RUNNING.release()


@dataclass(frozen=True)
class Bench:
    """The tab's settings: where it may read and write, and how much one run may do."""

    data_dir: Path
    out_dir: Path
    calibrations_dir: Path
    routes: tuple[str, ...]
    max_configs: int = 24
    hard_max_configs: int = 200
    keep_runs: int = 20
    max_upload_bytes: int = 5_000_000
    calibrated_path: Path = Path("conf/router/calibrated.yaml")
    pool: EncoderPool = field(default_factory=lambda: EncoderPool(max_encoders=MAX_ENCODERS))
    base: str = "trained"  # the router config the tab calibrates: the one the app runs


def scrub(bench: Bench, text: str) -> str:
    """A message fit for the page: server folders named by their setting, environment values by their name."""
    for path, name in ((bench.data_dir, "<data_dir>"), (bench.out_dir, "<out_dir>"),
                       (bench.calibrations_dir, "<calibrations_dir>")):
        text = text.replace(str(path.resolve()), name)
    return redact(text, os.environ)


def _warn(bench: Bench, error: Exception) -> str:
    return "⚠️ " + scrub(bench, str(error))


def show(bench: Bench, report: dict) -> tuple:
    """(summary, table, accuracy heatmap, latency heatmap, scatter, confusion) for a sweep report."""
    rows = [r for r in report["rows"] if r.get("error") is None]
    table = [[r["config_id"], " ".join(r["overrides"]), r["strategy"], r["accuracy"], r["expert_accuracy"],
              r.get("l1_share"), r.get("l2_share"), r.get("default_share"), r.get("p50_us"), r.get("p99_us"),
              scrub(bench, r.get("error") or "")] for r in report["rows"] if r["route"] == "all"]
    best = report.get("best")
    lines = [f"**{len(table)} configurations**" + (f" in {report['wall_s']} s" if report.get("wall_s") else "")
             + (" (interrupted: rows so far kept)" if report.get("interrupted") else "")]
    if best:
        lines.append(f"Best: `{' '.join(best['overrides'])}` · accuracy {best['accuracy']:.3f} · "
                     f"expert accuracy {best['expert_accuracy']:.3f} · p50 {best['p50_us']:.0f} µs")
    for failure in report.get("failed", []):
        lines.append(f"⚠️ {' '.join(failure['overrides'])} failed: {scrub(bench, failure['error'])}")
    analytics = report.get("analytics", {}).get(best["config_id"], {}) if best else {}
    if analytics.get("never_fired") is not None:
        lines.append(f"L1 rules that never fired: {len(analytics['never_fired'])}")
    if analytics.get("l1_l2_disagreements"):
        d = analytics["l1_l2_disagreements"]
        lines.append(f"Queries where L1 and L2 disagree: {d['count']} (L1 right {d['l1_right']}, L2 right {d['l2_right']})")
    if table:
        lines.append(f"_{LATENCY_NOTE}_")
    if not rows:
        return "  \n".join(lines), table, None, None, None, None
    confusion = report.get("confusion", {}).get(best["config_id"]) if best else None
    return ("  \n".join(lines), table, plots.accuracy_heatmap(rows), plots.latency_heatmap(rows),
            plots.latency_accuracy_scatter(rows), plots.confusion_chart(confusion) if confusion else None)


def cleared(message: str) -> tuple:
    """(summary, table, 4 figures, runs dropdown) for a refusal or error: it replaces the last run's results."""
    return (message, [], None, None, None, None, gr.skip())


def sweep(bench: Bench, data: str | None, grid_text: str, confirmed: bool) -> tuple:
    """Run a grid from the tab: (summary, table, 4 figures, runs dropdown); refusals go to the summary."""
    try:
        path = workspace.confine(bench.data_dir, data)
        grid = parse_grid(grid_text, bench.routes, max_configs=bench.max_configs,
                          hard_max_configs=bench.hard_max_configs, confirmed=confirmed is True)
    except NeedsConfirmation as e:
        return cleared(f"This grid has {e.size} configurations, more than {e.max_configs} "
                       "(benchmarks.max_configs). Tick “Run large grids” to go ahead.")
    except (GridError, RouterError) as e:
        return cleared(_warn(bench, e))
    with _exclusive() as free:
        if not free:
            return cleared(BUSY)
        target = workspace.new_run_dir(bench.out_dir)
        try:
            report = run_sweep(path, list(grid.overrides), out_dir=target, pool=bench.pool, plotlyjs="shared")
        except RouterError as e:
            shutil.rmtree(target)  # nothing ran (the data did not load): no empty run to list
            return cleared(_warn(bench, e))
        finally:
            workspace.prune_runs(bench.out_dir, bench.keep_runs, SWEEP_MARKER, protect=target)
    return (*show(bench, report), gr.Dropdown(choices=workspace.list_runs(bench.out_dir, SWEEP_MARKER),
                                              value=target.name))


def reopen(bench: Bench, name: str | None) -> tuple:
    """Show an earlier sweep, found by its folder name under out_dir."""
    try:
        folder = workspace.run_dir(bench.out_dir, name, SWEEP_MARKER)
    except RouterError as e:
        return cleared(_warn(bench, e))[:6]
    report = json.loads((folder / SWEEP_MARKER).read_text(encoding="utf-8"))
    analytics = folder / "analytics.json"
    report["analytics"] = json.loads(analytics.read_text(encoding="utf-8")) if analytics.exists() else {}
    report["best"] = best_config(report["rows"])
    return show(bench, report)


def calibrate(bench: Bench, data: str | None) -> tuple:
    """Fit the L2 thresholds into a new folder under calibrations_dir: (text, curve); conf/ is not touched."""
    try:
        path = workspace.confine(bench.data_dir, data)
    except RouterError as e:
        return _warn(bench, e), None
    with _exclusive() as free:
        if not free:
            return BUSY, None
        folder = workspace.new_run_dir(bench.calibrations_dir)
        try:
            report = run_calibrate(path, [f"router={bench.base}"], out=folder / "router" / f"{CANDIDATE}.yaml",
                                   plots_dir=folder, encoder=bench.pool.get(load_config().encoder),
                                   plotlyjs=workspace.shared_plotlyjs(bench.calibrations_dir))
        except RouterError as e:
            shutil.rmtree(folder)
            return _warn(bench, e), None
        finally:
            workspace.prune_runs(bench.calibrations_dir, bench.keep_runs, CALIBRATION_MARKER, protect=folder)
        record = {k: v for k, v in report.items() if k not in ("config", "curve_html", "load_with")}
        record.update(base=bench.base, data=path.relative_to(bench.data_dir.resolve()).as_posix())
        (folder / CALIBRATION_MARKER).write_text(json.dumps(record, indent=1), encoding="utf-8")
    routes = ", ".join(f"{k} {v}" for k, v in report["route_thresholds"].items()) or "none"
    measured = report.get("accuracy_measured")
    text = (f"Threshold {report['default_threshold']} → **{report['threshold']}**; per route: {routes}.  \n"
            f"Accuracy {report['accuracy_before']:.3f} → {report['accuracy']:.3f}"
            + (f" (routing the file with it: {measured:.3f})" if measured is not None else "")
            + f". Saved as calibration `{folder.name}`; “Apply latest calibration” makes it "
            f"`router={bench.calibrated_path.stem}`.")
    return text, plots.threshold_curve_chart(report["curve"], report["threshold"], report["default_threshold"])


def apply_calibration(bench: Bench) -> str:
    """Write the newest calibration as the router config at calibrated_path (router=calibrated loads it)."""
    names = workspace.list_runs(bench.calibrations_dir, CALIBRATION_MARKER)
    if not names:
        return "⚠️ There is no calibration to apply yet; run one first."
    folder = workspace.run_dir(bench.calibrations_dir, names[0], CALIBRATION_MARKER)
    fit = json.loads((folder / CALIBRATION_MARKER).read_text(encoding="utf-8"))
    try:
        written = write_calibrated_config(
            bench.calibrated_path, fit["base"], fit["threshold"], fit["route_thresholds"],
            f"calibration {folder.name} on {' '.join(str(fit['data']).split())}, "
            f"accuracy {fit['accuracy_before']} -> {fit['accuracy']}")
    except RouterError as e:
        return _warn(bench, e)
    return scrub(bench, f"Applied calibration `{folder.name}` (threshold {fit['threshold']}) to `{written}`. "
                        f"Start the app with `router={written.stem}` to route with it.")


def add_upload(bench: Bench, file: str | None) -> tuple:
    """Check an uploaded labelled file and copy it into data_dir/uploads: (data dropdown, message)."""
    if not file:
        return gr.skip(), ""
    try:
        stored = workspace.store_upload(file, bench.data_dir, bench.max_upload_bytes, bench.routes,
                                        keep=bench.keep_runs, shown=Path(file).name)
    except RouterError as e:
        return gr.skip(), _warn(bench, e)
    except OSError:
        return gr.skip(), "⚠️ The upload could not be read; upload it again."
    name = stored.relative_to(bench.data_dir.resolve()).as_posix()
    return gr.Dropdown(choices=workspace.data_files(bench.data_dir), value=name), f"Uploaded as `{name}`."


def listing(bench: Bench) -> tuple:
    """The data files and earlier sweeps, for the two dropdowns."""
    return (gr.Dropdown(choices=workspace.data_files(bench.data_dir)),
            gr.Dropdown(choices=workspace.list_runs(bench.out_dir, SWEEP_MARKER)))


def build_benchmarks(
    accounts: Accounts, routes: Sequence[str], data: str | None = None, data_dir: str = "data/benchmarks",
    out_dir: str = "outputs/sweeps", calibrations_dir: str = "outputs/calibrations", max_configs: int = 24,
    hard_max_configs: int = 200, keep_runs: int = 20, max_upload_bytes: int = 5_000_000,
    calibrated_path: str = "conf/router/calibrated.yaml", pool: EncoderPool | None = None, router: str | None = None,
) -> dict:
    """Lay out the Benchmarks tab inside the current Blocks context; returns its handlers and listing event.

    `data` is the file offered first (it must lie inside `data_dir`); `pool` builds the encoders
    (tests pass one with a fake encoder); `router` is the router config the app runs, which
    calibration fits (None: conf/config.yaml's default). The returned "fn"/"inputs"/"outputs" fill the dropdowns:
    wire them to the tab's select event.
    """
    bench = Bench(Path(data_dir), Path(out_dir), Path(calibrations_dir), tuple(routes), max_configs,
                  hard_max_configs, keep_runs, max_upload_bytes, Path(calibrated_path),
                  pool or EncoderPool(max_encoders=MAX_ENCODERS),
                  calibration_base(router or router_choice(), calibrated_path))
    first = workspace.relative_name(data_dir, data) if data else None
    if data and first is None:
        log.warning("benchmarks.data lies outside benchmarks.data_dir, so the Benchmarks tab does not offer it.")
    gr.Markdown("Admins only. Sweeps and calibrations run one at a time; the newest "
                f"{keep_runs} of each are kept.")
    with gr.Row():
        path = gr.Dropdown(choices=[first] if first else [], value=first, allow_custom_value=True, scale=3,
                           label="Labelled JSONL (a file in benchmarks.data_dir)", elem_id="bench-data")
        upload = gr.File(label="…or upload one", file_types=[".jsonl"], type="filepath", scale=2)
        refresh = gr.Button("Reload files and runs", scale=1, elem_id="bench-refresh")
    grid = gr.Textbox(value=DEFAULT_GRID, label="Grid: key=v1,v2 … (router, encoder, thresholds, margins, top_k, "
                      "head and encoder settings, default_route)", elem_id="bench-grid")
    with gr.Row():
        confirmed = gr.Checkbox(label=f"Run large grids (over {max_configs}; at most {hard_max_configs})")
        go = gr.Button("Run sweep", variant="primary", elem_id="bench-run")
        fit = gr.Button("Calibrate L2 thresholds", elem_id="bench-calibrate")
        apply = gr.Button("Apply latest calibration", elem_id="bench-apply")
    summary = gr.Markdown(elem_id="bench-summary")
    table = gr.Dataframe(headers=TABLE_COLUMNS, label="Configurations", wrap=True, elem_id="bench-table")
    with gr.Row():
        accuracy = gr.Plot(label="Accuracy: configuration × route", elem_id="bench-accuracy")
        latency = gr.Plot(label="Latency p50: configuration × route", elem_id="bench-latency")
    with gr.Row():
        scatter = gr.Plot(label="Latency vs accuracy (Pareto front)", elem_id="bench-scatter")
        confusion = gr.Plot(label="Confusion of the best configuration", elem_id="bench-confusion")
    with gr.Row():
        runs = gr.Dropdown(choices=[], label="Earlier runs", scale=3, elem_id="bench-runs")
        reopen_button = gr.Button("Open this run", scale=1)
    calibration = gr.Markdown(elem_id="bench-calibration")
    curve = gr.Plot(label="Accuracy vs L2 threshold", elem_id="bench-curve")

    # Closures, not partials: Gradio injects gr.Request only into a plain function's hints.
    # Each checks the caller first, so a direct HTTP call meets the same check as the button.
    def on_sweep(data: str | None, grid_text: str, confirmed: bool, request: gr.Request):
        caller(accounts, request, ACTION, admin=True)
        return sweep(bench, data, grid_text, confirmed)

    def on_reopen(name: str | None, request: gr.Request):
        caller(accounts, request, ACTION, admin=True)
        return reopen(bench, name)

    def on_calibrate(data: str | None, request: gr.Request):
        caller(accounts, request, ACTION, admin=True)
        return calibrate(bench, data)

    def on_apply(request: gr.Request) -> str:
        caller(accounts, request, "apply a calibration", admin=True)
        return apply_calibration(bench)

    def on_upload(file: str | None, request: gr.Request):
        caller(accounts, request, ACTION, admin=True)
        return add_upload(bench, file)

    def on_list(request: gr.Request):
        caller(accounts, request, ACTION, admin=True)
        return listing(bench)

    figures = [summary, table, accuracy, latency, scatter, confusion]
    one_at_a_time = {"concurrency_limit": 1, "concurrency_id": "benchmark-runs"}
    go.click(on_sweep, [path, grid, confirmed], [*figures, runs], api_name="sweep", **one_at_a_time)
    fit.click(on_calibrate, path, [calibration, curve], api_name="calibrate", **one_at_a_time)
    apply.click(on_apply, None, calibration, api_visibility="private")
    reopen_button.click(on_reopen, runs, figures, api_visibility="private")
    upload.upload(on_upload, upload, [path, summary], api_visibility="private")
    refresh.click(on_list, None, [path, runs], api_visibility="private")
    return {"sweep": on_sweep, "reopen": on_reopen, "calibrate": on_calibrate, "apply": on_apply,
            "upload": on_upload, "fn": on_list, "inputs": [], "outputs": [path, runs]}
