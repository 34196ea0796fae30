"""Plotly figures built from result tables (lists of dicts); no UI code here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go


def win_rate_chart(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Win rate per expert per route over decisive votes, with its 95% interval when rows carry `ci`.

    `rows` come from PreferenceStore.win_rates() (forensics.mapping.with_intervals adds `ci`): route, expert,
    wins, losses, ties, both_bad, n, win_rate. Each bar is labelled with its counts, ties included.
    """
    figure = go.Figure()
    for expert in sorted({r["expert"] for r in rows}):
        mine = [r for r in rows if r["expert"] == expert]
        rate = [r["win_rate"] if r["win_rate"] is not None else 0 for r in mine]
        intervals = [r.get("ci") for r in mine]
        figure.add_bar(
            name=expert,
            x=[r["route"] or "(unrouted)" for r in mine],
            y=rate,
            error_y={"type": "data", "symmetric": False, "thickness": 1.2,
                     "array": [(ci[1] - y) if ci else 0 for ci, y in zip(intervals, rate)],
                     "arrayminus": [(y - ci[0]) if ci else 0 for ci, y in zip(intervals, rate)]},
            text=[f"{r['wins']}–{r['losses']}, {r['ties']} tie{'s' if r['ties'] != 1 else ''} (n={r['n']})"
                  for r in mine],
            textposition="inside", insidetextanchor="start", textfont={"size": 11},
            customdata=[[r["wins"], r["losses"], r["ties"], r["both_bad"], r["n"]] for r in mine],
            hovertemplate="%{x}: win rate %{y:.0%}<br>%{customdata[0]} won, %{customdata[1]} lost, "
                          "%{customdata[2]} ties, %{customdata[3]} both bad (%{customdata[4]} votes)<extra>"
                          + expert + "</extra>",
        )
    figure.add_hline(y=0.5, line_dash="dot", line_color="grey")
    figure.update_layout(
        barmode="group", yaxis={"title": "win rate (decisive votes)", "range": [0, 1.05], "tickformat": ".0%"},
        xaxis={"title": "route"}, title="Win rate per expert per route (bars: 95% interval; labels: won–lost, ties)",
        height=380, margin={"l": 50, "r": 10, "t": 50, "b": 40}, legend={"title": "expert"},
    )
    return figure


def _config_label(row: dict[str, Any]) -> str:
    return f"{row['config_id']}: {' '.join(row['overrides']) or '(defaults)'}"


def _grid(rows: Sequence[dict[str, Any]], value: str) -> tuple[list[str], list[str], list[list[float | None]]]:
    """(configuration ids, routes with "all" first, values) from sweep result rows."""
    labels = list(dict.fromkeys(str(r["config_id"]) for r in rows))
    routes = list(dict.fromkeys(["all", *[r["route"] for r in rows]])) if rows else []
    cells = {(str(r["config_id"]), r["route"]): r.get(value) for r in rows}
    return labels, routes, [[cells.get((label, route)) for route in routes] for label in labels]


CELL_FONT = 12  # px: heatmap numbers stay readable at the workbench's default width


def _heatmap(rows: Sequence[dict[str, Any]], value: str, title: str, colorscale: str, fmt: str) -> go.Figure:
    """Short configuration ids (c0, c1, ...) on the y axis; the full overrides are in the hover text."""
    labels, routes, z = _grid(rows, value)
    overrides = {str(r["config_id"]): " ".join(r["overrides"]) or "(defaults)" for r in rows}
    figure = go.Figure(go.Heatmap(
        z=z, x=routes, y=labels, colorscale=colorscale, texttemplate="%{z:" + fmt + "}",
        textfont={"size": CELL_FONT}, customdata=[[overrides[label]] * len(routes) for label in labels],
        hovertemplate="%{y}: %{customdata}<br>route %{x}: %{z:" + fmt + "}<extra></extra>",
        colorbar={"thickness": 12},
    ))
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis={"title": {"text": "route", "standoff": 8}, "tickangle": -35, "automargin": True,
               "tickfont": {"size": 11}},
        yaxis={"title": {"text": "configuration", "standoff": 6}, "autorange": "reversed", "automargin": True,
               "tickfont": {"size": 11}},
        height=max(320, 150 + 30 * len(labels)), margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def accuracy_heatmap(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Accuracy per configuration (y) and route (x, "all" first), from sweep result rows."""
    return _heatmap(rows, "accuracy", "Accuracy", "Viridis", ".2f")


def latency_heatmap(rows: Sequence[dict[str, Any]], value: str = "p50_us") -> go.Figure:
    """Decision latency (p50 µs by default) per configuration and route, from sweep result rows."""
    return _heatmap(rows, value, f"Decision latency {value.replace('_us', '')} (µs)", "Reds", ".0f")


def confusion_chart(confusion: dict[str, dict[str, int]], routes: Sequence[str] | None = None,
                    title: str = "Confusion matrix") -> go.Figure:
    """True (y) x predicted (x) counts from an accuracy report's `confusion`; colour is the row share."""
    names = list(routes) if routes else list(dict.fromkeys(
        [*confusion, *[p for c in confusion.values() for p in c]]))
    counts = [[confusion.get(t, {}).get(p, 0) for p in names] for t in names]
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    figure = go.Figure(go.Heatmap(
        z=shares, x=names, y=names, text=counts, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
        hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0%} of the row)<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis={"title": "predicted"}, yaxis={"title": "true", "autorange": "reversed"},
                         height=420 + 10 * len(names))
    return figure


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points no other point beats on both, fastest first.

    >>> pareto_front([(10, 0.8), (20, 0.9), (30, 0.85), (5, 0.5)])
    [3, 0, 1]
    """
    front, best = [], float("-inf")
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def latency_accuracy_scatter(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """One point per configuration (accuracy vs decision p50), with a line through the Pareto front."""
    mine = [r for r in rows if r["route"] == "all" and r.get("accuracy") is not None and not r.get("same_as")]
    points = [(r["p50_us"], r["accuracy"]) for r in mine]
    front = pareto_front(points)
    figure = go.Figure()
    figure.add_scatter(
        x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", name="configuration",
        text=[_config_label(r) for r in mine], marker={"size": 10},
        hovertemplate="%{text}<br>p50 %{x:.1f} µs, accuracy %{y:.3f}<extra></extra>",
    )
    figure.add_scatter(x=[points[i][0] for i in front], y=[points[i][1] for i in front], mode="lines+markers",
                       name="Pareto front", line={"dash": "dash"}, hoverinfo="skip")
    figure.update_layout(title="Accuracy vs decision latency (p50)", xaxis={"title": "decision p50 (µs)"},
                         yaxis={"title": "accuracy"}, height=420)
    return figure


def threshold_curve_chart(curve: Sequence[dict[str, float]], chosen: float | None = None,
                          default: float | None = None) -> go.Figure:
    """Accuracy against the L2 threshold (calibrate's curve), marking the chosen and default values."""
    figure = go.Figure()
    figure.add_scatter(x=[p["threshold"] for p in curve], y=[p["accuracy"] for p in curve], mode="lines+markers",
                       name="accuracy", hovertemplate="threshold %{x:.2f}: accuracy %{y:.4f}<extra></extra>")
    for value, name, dash in ((default, "default", "dot"), (chosen, "chosen", "solid")):
        if value is not None:
            figure.add_vline(x=value, line_dash=dash, annotation_text=f"{name} {value:.2f}")
    figure.update_layout(title="Accuracy vs L2 threshold", xaxis={"title": "router.semantic.threshold"},
                         yaxis={"title": "accuracy"}, height=380)
    return figure


def write_html(figure: go.Figure, path: str | Path, plotlyjs: bool | str = True) -> Path:
    """Write a standalone interactive page that works offline.

    plotly.js is embedded (True), or written once beside the page ("directory"), never fetched from a CDN.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs=plotlyjs, full_html=True)
    return path


def model_route_heatmap(rows: Sequence[dict[str, Any]], value: str, title: str, fmt: str = ".0f") -> go.Figure:
    """One value per expert model (y) and route (x), from end-to-end result rows."""
    models = list(dict.fromkeys(f"{r['expert']} ({r['model']})" for r in rows))
    routes = list(dict.fromkeys(r["route"] for r in rows))
    cells = {(f"{r['expert']} ({r['model']})", r["route"]): r.get(value) for r in rows}
    figure = go.Figure(go.Heatmap(
        z=[[cells.get((m, route)) for route in routes] for m in models], x=routes, y=models, colorscale="Reds",
        texttemplate="%{z:" + fmt + "}", hovertemplate="%{y}<br>route %{x}: %{z:" + fmt + "}<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis={"title": "route", "side": "top"}, height=max(260, 120 + 40 * len(models)),
                         margin={"l": 10, "r": 10, "t": 90, "b": 10})
    return figure
