"""The Router playground tab: paste one query or many, see decisions only, fast."""

from __future__ import annotations

from functools import partial

import gradio as gr

from router.errors import InvalidQueryError
from router.service import ChatService
from ui.card import format_us

COLUMNS = ["query", "route", "expert", "tier", "score", "margin", "why", "router time"]
MAX_LINES = 1000


def route_lines(service: ChatService, text: str) -> list[list]:
    """One row per non-empty line of `text` (at most MAX_LINES)."""
    rows = []
    for line in [ln for ln in (text or "").splitlines() if ln.strip()][:MAX_LINES]:
        try:
            d = service.route(line)
        except InvalidQueryError as e:
            rows.append([line, "-", "-", "-", None, None, str(e), "-"])
            continue
        why = (f"rule {d.rule.pattern!r} matched {d.rule.text!r}" if d.rule
               else ", ".join(f"{s.route} {s.score:.3f}" for s in d.top_routes))
        rows.append([line[:200], d.route, d.expert, d.tier, round(d.score, 3), round(d.margin, 3), why,
                     format_us(d.timings.total_us)])
    return rows


def build_playground(service: ChatService) -> None:
    """Lay out the Router playground tab inside the current Blocks context."""
    gr.Markdown("One query per line. Only the router runs here: no model is asked.")
    queries = gr.Textbox(lines=8, label="Queries", elem_id="playground-input",
                         placeholder="Write a haiku about rain\nWhat is 17% of 230?\nI want you to act as a chef")
    go = gr.Button("Route", variant="primary", elem_id="playground-route")
    table = gr.Dataframe(headers=COLUMNS, label="Decisions", wrap=True, elem_id="playground-table")
    go.click(partial(route_lines, service), queries, table, api_name="route_many")
