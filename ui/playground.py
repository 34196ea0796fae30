"""The Router playground tab: paste one query or many, see decisions only, fast."""

from __future__ import annotations

import gradio as gr

from router.errors import InvalidQueryError
from router.service import ChatService
from ui.auth import Accounts, caller
from ui.card import format_us
from ui.limits import RateLimiter, wait_message

COLUMNS = ["query", "route", "expert", "tier", "score", "margin", "why", "router time"]
MAX_LINES = 100


def route_lines(service: ChatService, text: str, max_lines: int = MAX_LINES) -> list[list]:
    """One row per non-empty line of `text` (at most `max_lines`; the rest are not routed)."""
    rows = []
    for line in [ln for ln in (text or "").splitlines() if ln.strip()][:max_lines]:
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


def build_playground(service: ChatService, accounts: Accounts, limiter: RateLimiter, max_lines: int = MAX_LINES) -> None:
    """Lay out the Router playground tab inside the current Blocks context."""
    gr.Markdown(f"One query per line (up to {max_lines}). Only the router runs here: no model is asked.")
    queries = gr.Textbox(lines=8, label="Queries", elem_id="playground-input",
                         placeholder="Write a haiku about rain\nWhat is 17% of 230?\nI want you to act as a chef")
    go = gr.Button("Route", variant="primary", elem_id="playground-route")
    table = gr.Dataframe(headers=COLUMNS, label="Decisions", wrap=True, elem_id="playground-table")

    def on_route(text: str, request: gr.Request) -> list[list]:
        principal = caller(accounts, request, "route queries")
        if wait := limiter.retry_after(principal.client):
            raise gr.Error(wait_message(wait), title="Slow down", print_exception=False)
        return route_lines(service, text, max_lines)

    go.click(on_route, queries, table, api_name="route_many")
