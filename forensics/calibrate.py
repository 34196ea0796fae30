"""Fit the L2 threshold (global, then per route) to a labelled file and write it as a router config.

    python -m forensics.benchmark_suite calibrate --data FILE [--out conf/router/calibrated.yaml] [--json]

The semantic tier ranks each query once; every candidate threshold is then scored offline from
those rankings, since a threshold changes only whether the best route is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.encoder_cache import MemoEncoder
from forensics.metrics import evaluate
from router.config import CONFIG_DIR, build_encoder, build_router, load_config, router_choice
from router.data import load_labelled
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.schema import LabelledQuery
from router.text import clean_query

DEFAULT_GRID = tuple(round(0.01 * i, 2) for i in range(51))  # 0.00 .. 0.50


@dataclass(frozen=True)
class Rankings:
    """What the router needs to decide each row offline: L1's route (or ""), L2's best route, score and margin."""

    truth: np.ndarray
    l1_route: np.ndarray
    best_route: np.ndarray
    best_score: np.ndarray
    margin: np.ndarray
    default_route: str
    min_margin: float


def collect_rankings(router: HybridRouter, rows: Sequence[LabelledQuery]) -> Rankings:
    """Run L1 and rank L2 once per row."""
    if router.semantic is None:
        raise ConfigError("calibrate fits the semantic tier's threshold, and this router has none. "
                          "Use router=hybrid or router=semantic.")
    l1, best, score, margin = [], [], [], []
    for row in rows:
        query = clean_query(row.query)
        decision = router.keyword.route(query) if router.keyword is not None else None
        l1.append(decision.route if decision is not None else "")
        ranking = router.semantic.rank(query)
        best.append(ranking.best.route)
        score.append(ranking.best.score)
        margin.append(ranking.margin)
    return Rankings(np.array([r.route for r in rows]), np.array(l1), np.array(best), np.array(score),
                    np.array(margin), router.default_route, router.semantic.margin)


def accuracy_at(r: Rankings, threshold: float, route_thresholds: dict[str, float] | None = None) -> float:
    """Accuracy the router would reach with these thresholds (L1 first, then L2, then the default)."""
    needed = np.full(len(r.truth), threshold, dtype=np.float64)
    for route, value in (route_thresholds or {}).items():
        needed[r.best_route == route] = value
    accepted = (r.best_score >= needed) & (r.margin >= r.min_margin)
    predicted = np.where(r.l1_route != "", r.l1_route, np.where(accepted, r.best_route, r.default_route))
    return float((predicted == r.truth).mean())


def fit_thresholds(r: Rankings, default: float, default_routes: dict[str, float] | None = None,
                   grid: Sequence[float] = DEFAULT_GRID, passes: int = 3) -> dict[str, Any]:
    """The global threshold with the best accuracy, then per-route ones by coordinate ascent.

    Never worse than the starting point: a global value must beat the default's accuracy to
    replace it (ties go to the value nearest the default), and a route threshold must raise accuracy.
    """
    default_routes = dict(default_routes or {})
    before = accuracy_at(r, default, default_routes)
    curve = [{"threshold": t, "accuracy": round(accuracy_at(r, t), 4)} for t in grid]
    top = max(p["accuracy"] for p in curve)
    threshold, routes, accuracy = default, default_routes, before
    if top > round(before, 4):
        threshold = min((p["threshold"] for p in curve if p["accuracy"] == top), key=lambda t: abs(t - default))
        routes, accuracy = {}, accuracy_at(r, threshold)
    for _ in range(passes):
        changed = False
        for route in sorted(set(r.best_route[r.l1_route == ""])):
            for t in grid:
                trial = {**routes, route: t}
                score = accuracy_at(r, threshold, trial)
                if score > accuracy:
                    routes, accuracy, changed = trial, score, True
        if not changed:
            break
    routes = {k: v for k, v in sorted(routes.items()) if v != threshold}
    return {"default_threshold": default, "accuracy_before": round(before, 4), "threshold": threshold,
            "route_thresholds": routes, "accuracy_global": round(accuracy_at(r, threshold), 4),
            "accuracy": round(accuracy, 4), "curve": curve}


def write_calibrated_config(path: str | Path, base: str, threshold: float, route_thresholds: dict[str, float],
                            comment: str = "") -> Path:
    """Write a router config group file: the `base` router with the fitted thresholds."""
    path = Path(path)
    if path.parent.name == "router" and path.stem == base:
        raise ConfigError(f"{path} would include itself (defaults: [{base}]). Pass another --out, "
                          "or calibrate on top of router=hybrid.")
    lines = [f"# Written by forensics.calibrate{': ' + comment if comment else ''}. Regenerate rather than edit.",
             "defaults:", f"  - {base}", "  - _self_", "", "semantic:",
             f"  threshold: {threshold}      # global L2 threshold fitted on the labelled file"]
    if route_thresholds:
        lines.append("  route_thresholds:      # the winning route's own threshold, instead of the global one")
        lines += [f"    {route}: {value}" for route, value in route_thresholds.items()]
    else:
        lines.append("  route_thresholds: null")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _set_by_calibration(override: str) -> bool:
    """Whether the written file decides this override's key (the router and its thresholds).

    >>> _set_by_calibration("router.semantic.threshold=0.4"), _set_by_calibration("router.semantic.top_k=3")
    (True, False)
    """
    key = override.partition("=")[0].lstrip("+~")
    return key in ("router", "router.semantic.threshold") or key.startswith("router.semantic.route_thresholds")


def how_to_load(path: Path) -> list[str]:
    """The overrides that compose a config written at `path` (a search path unless it is under conf/router)."""
    path = path.resolve()
    if path.parent == (CONFIG_DIR / "router").resolve():
        return [f"router={path.stem}"]
    if path.parent.name == "router":
        return [f"router={path.stem}", f"hydra.searchpath=[file://{path.parent.parent}]"]
    return []


def run_calibrate(data: str | Path, overrides: Sequence[str] = (), out: str | Path = CONFIG_DIR / "router" / "calibrated.yaml",
                  plots_dir: str | Path | None = None, grid: Sequence[float] = DEFAULT_GRID,
                  encoder: Any = None, plotlyjs: bool | str = True) -> dict[str, Any]:
    """Fit the thresholds, write the config and the curve, and check the result by routing the file again.

    `plotlyjs`: as plots.write_html takes it; True embeds plotly.js (4.8 MB) in the curve's page,
    a src such as "../plotly.min.js" points it at one shared copy.
    """
    from forensics import plots

    cfg = load_config(overrides)
    if not cfg.router.get("semantic"):
        raise ConfigError("calibrate fits the semantic tier's threshold, and this router has none. "
                          "Use router=hybrid or router=semantic.")
    rows = load_labelled(data, routes=list(cfg.routes))  # a bad file fails before the model loads
    if encoder is None:
        encoder = build_encoder(cfg.encoder)
    encoder = MemoEncoder(encoder)  # the check below re-ranks the same queries for free
    router = build_router(cfg, encoder=encoder)
    encoder.encode([clean_query(r.query) for r in rows])  # one batched pass
    fit = fit_thresholds(collect_rankings(router, rows), router.semantic.threshold,
                         dict(router.semantic.route_thresholds), grid)
    out = write_calibrated_config(out, router_choice(overrides), fit["threshold"], fit["route_thresholds"],
                                  f"{Path(data).name}, accuracy {fit['accuracy_before']} -> {fit['accuracy']}")
    load = how_to_load(out)
    check = {}
    if load:
        extra = [o for o in overrides if not _set_by_calibration(o)]
        check = evaluate(build_router(load_config([*load, *extra]), encoder=encoder), rows)
    curve_path = (Path(plots_dir) / "threshold_curve.html") if plots_dir else out.with_name(f"{out.stem}_threshold_curve.html")
    plots.write_html(plots.threshold_curve_chart(fit["curve"], fit["threshold"], fit["default_threshold"]), curve_path,
                     plotlyjs)
    return {**fit, "n": len(rows), "config": str(out), "load_with": load, "curve_html": str(curve_path),
            "accuracy_measured": check.get("accuracy"), "expert_accuracy_measured": check.get("expert_accuracy")}


def print_calibration(report: dict[str, Any]) -> None:
    print("threshold  accuracy")
    for p in report["curve"]:
        mark = "  <- chosen" if p["threshold"] == report["threshold"] else ""
        mark += "  (default)" if p["threshold"] == report["default_threshold"] else ""
        print(f"{p['threshold']:>9.2f}  {p['accuracy']:.4f}{mark}")
    print(f"global threshold {report['default_threshold']} -> {report['threshold']} "
          f"(accuracy {report['accuracy_before']:.4f} -> {report['accuracy_global']:.4f})")
    routes = ", ".join(f"{k}={v}" for k, v in report["route_thresholds"].items()) or "none"
    print(f"route thresholds: {routes} (accuracy {report['accuracy']:.4f})")
    if report["accuracy_measured"] is not None:
        print(f"routing the file with the written config: accuracy {report['accuracy_measured']:.4f}, "
              f"expert accuracy {report['expert_accuracy_measured']:.4f}")
    print(f"wrote {report['config']} (load with: {' '.join(report['load_with']) or 'move it under conf/router/'}); "
          f"curve: {report['curve_html']}")
