"""Plotly figures built from result tables (lists of dicts); no UI code here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go


def win_rate_chart(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Win rate per expert per route, as grouped bars; hover shows wins, losses, ties and votes.

    `rows` come from PreferenceStore.win_rates(): route, expert, wins, losses, ties, both_bad, n, win_rate.
    """
    figure = go.Figure()
    for expert in sorted({r["expert"] for r in rows}):
        mine = [r for r in rows if r["expert"] == expert]
        figure.add_bar(
            name=expert,
            x=[r["route"] or "(unrouted)" for r in mine],
            y=[r["win_rate"] if r["win_rate"] is not None else 0 for r in mine],
            customdata=[[r["wins"], r["losses"], r["ties"], r["both_bad"], r["n"]] for r in mine],
            hovertemplate="%{x}: win rate %{y:.0%}<br>%{customdata[0]} won, %{customdata[1]} lost, "
                          "%{customdata[2]} ties, %{customdata[3]} both bad (%{customdata[4]} votes)<extra>"
                          + expert + "</extra>",
        )
    figure.update_layout(
        barmode="group", yaxis={"title": "win rate", "range": [0, 1], "tickformat": ".0%"},
        xaxis={"title": "route"}, title="Win rate per expert per route", height=360,
        margin={"l": 40, "r": 10, "t": 50, "b": 40}, legend={"title": "expert"},
    )
    return figure
