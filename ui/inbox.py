"""The Inbox tab (labelers and admins): routed turns where the router was unsure, the most valuable label first.

Ranking lives in forensics.inbox; here the handlers check the caller, label through Flywheel.correct
(the same live effect as "Should have gone to" in the chat) and preview a label on the reference file.
Keys: 1–9 pick a route, Enter or c confirms the route shown, l labels with the picked route, p previews,
s skips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from forensics.feedback import Flywheel, SameRouteError
from forensics.inbox import InboxItem, build_inbox, preview
from forensics.preference_store import StoreError
from router.data import load_labelled
from router.errors import RouterError
from router.schema import LabelledQuery
from ui.auth import Accounts, Principal, caller, require
from ui.card import shorten

log = logging.getLogger(__name__)
COLUMNS = ["#", "query", "goes to", "tier", "why it is here", "similar turns", "value"]
MAX_EVENTS = 2000  # newest stored turns the inbox ranks: one inbox costs one routing pass over them
SHORTCUTS = """
<script>
document.addEventListener("keydown", (e) => {
  const inbox = document.querySelector("#inbox-panel");
  if (!inbox || inbox.offsetParent === null || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest("input, textarea, [contenteditable=true]")) return;
  const press = (id) => { const b = document.querySelector(id); if (b) { e.preventDefault(); b.click(); } };
  if (/^[1-9]$/.test(e.key)) {
    const options = document.querySelectorAll("#inbox-route input[type=radio]");
    const pick = options[Number(e.key) - 1];
    if (pick) { e.preventDefault(); pick.click(); }
  } else if (e.key === "Enter" || e.key === "c") press("#inbox-confirm");
  else if (e.key === "l") press("#inbox-label");
  else if (e.key === "p") press("#inbox-preview");
  else if (e.key === "s") press("#inbox-skip");
});
</script>
"""


@dataclass
class InboxState:
    """The items on screen and the one being labelled (per browser session)."""

    items: list[InboxItem] = field(default_factory=list)
    at: int = 0

    @property
    def current(self) -> InboxItem | None:
        return self.items[self.at] if 0 <= self.at < len(self.items) else None


def table(items: Sequence[InboxItem]) -> list[list]:
    """One row per inbox item, in rank order."""
    return [[i + 1, shorten(it.query, 90), it.route, it.tier, ", ".join(it.reasons), it.arrivals, round(it.value, 2)]
            for i, it in enumerate(items)]


def load(flywheel: Flywheel | None, principal: Principal, limit: int = 50) -> tuple[InboxState, str]:
    """A fresh inbox from the stored turns, leaving out queries that already carry a label."""
    require(principal, "use the inbox", label=True)
    if flywheel is None:
        return InboxState(), "⚠️ The preference store is not available, so there are no stored turns to label."
    try:
        events = flywheel.store.routing_events(limit=MAX_EVENTS)
        labelled = [c.query for c in flywheel.store.corrections()]
    except StoreError as e:
        return InboxState(), f"⚠️ {e}"
    items = build_inbox(events, flywheel.router, labelled, limit=limit)
    if not items:
        return InboxState(), "Nothing to label: every stored turn is labelled, or none was routed yet."
    return InboxState(items), (f"{len(items)} items from {len(events)} stored turns, the most valuable label first "
                               "(uncertainty × similar turns). Keys: 1–9 pick, Enter confirm, l label, p preview, s skip.")


def label(flywheel: Flywheel | None, principal: Principal, state: InboxState, route: str | None) -> str:
    """Label the current item with `route`: confirming the router's route, or correcting it (live at once)."""
    require(principal, "label routed turns", label=True)
    item = state.current
    if item is None:
        return "Nothing selected: reload the inbox."
    if flywheel is None:
        return "⚠️ Not saved: the preference store is not available."
    if route not in flywheel.router.routes:
        return f"Pick a route first. Available: {', '.join(flywheel.router.routes)}."
    confirm = route == item.route
    try:  # a confirmation carries no decision: it is a label for the route the query already takes
        saved = flywheel.correct(item.query, None if confirm else item.decision, route, user=principal.name)
    except (StoreError, SameRouteError, RouterError) as e:
        return f"⚠️ Not saved: {e}"
    state.items.pop(state.at)
    state.at = min(state.at, len(state.items) - 1) if state.items else 0
    what = f"confirmed {route}" if confirm else f"moved from {item.route} to {route}"
    return f"Label #{saved.id} saved ({what}) for “{shorten(item.query, 60)}”; it is in effect now (undo in Data)."


def skip(state: InboxState) -> None:
    """Move on to the next item without labelling this one."""
    if state.items:
        state.at = (state.at + 1) % len(state.items)


def view(state: InboxState) -> tuple[str, dict]:
    """(the current item in words, the route picker set to its route)."""
    item = state.current
    if item is None:
        return "_No item selected._", gr.Radio(choices=[], value=None)
    text = (f"**{state.at + 1}. “{shorten(item.query, 300)}”**  \n"
            f"goes to **{item.route}** ({item.tier}) · {item.count} stored turn(s), {item.arrivals} similar · "
            f"why: {', '.join(item.reasons) or 'low value'}")
    return text, gr.Radio(choices=list(item.ranked), value=item.route)


def preview_text(flywheel: Flywheel | None, principal: Principal, state: InboxState, route: str | None,
                 reference: Sequence[LabelledQuery] | None) -> tuple[str, list[list]]:
    """What labelling the current item with `route` would change on the reference file, before it goes live."""
    require(principal, "preview a label", label=True)
    item = state.current
    if item is None or flywheel is None:
        return "Nothing selected: reload the inbox.", []
    if not reference:
        return "No reference file is configured (inbox.reference), so there is nothing to preview on.", []
    if route not in flywheel.router.routes:
        return "Pick a route first.", []
    shown = preview(flywheel.router, [(item.query, route)], reference)
    rows = [[shorten(q, 90), truth, before, after] for q, truth, before, after in shown.changed[:50]]
    return f"Labelling it **{route}**: {shown.sentence()}", rows


def build_inbox_tab(flywheel: Flywheel | None, accounts: Accounts, reference: str | None = None,
                    limit: int = 50) -> dict:
    """Lay out the Inbox tab inside the current Blocks context; returns its load event (fn, inputs, outputs)."""
    rows: list[LabelledQuery] | None = None
    if reference and flywheel is not None:
        try:
            rows = load_labelled(Path(reference).expanduser(), routes=list(flywheel.router.routes))
        except (RouterError, OSError) as e:
            log.warning("inbox.reference is not usable, so previews are off: %s", e)
    with gr.Column(elem_id="inbox-panel"):
        gr.Markdown("Labelers and admins. Turns where the router was unsure, the label worth most first. "
                    "Select a row, then confirm its route or pick another; each label is live at once."
                    + (f" Previews run on `{Path(reference).name}` ({len(rows)} rows)." if rows else ""))
        with gr.Row():
            reload = gr.Button("Reload inbox", elem_id="inbox-refresh", scale=0)
            message = gr.Markdown(elem_id="inbox-message")
        items = gr.Dataframe(headers=COLUMNS, label="To label (select a row)", wrap=True, interactive=False,
                             elem_id="inbox-table", column_widths=["4%", "40%", "10%", "7%", "25%", "7%", "7%"])
        current = gr.Markdown("_No item selected._", elem_id="inbox-current")
        route = gr.Radio([], label="Route (keys 1–9)", elem_id="inbox-route")
        with gr.Row():
            confirm = gr.Button("Confirm route (Enter)", variant="primary", elem_id="inbox-confirm")
            relabel = gr.Button("Label with picked route (l)", elem_id="inbox-label")
            check = gr.Button("Preview on reference file (p)", elem_id="inbox-preview")
            skip_button = gr.Button("Skip (s)", elem_id="inbox-skip")
        outcome = gr.Markdown(elem_id="inbox-outcome")
        changed = gr.Dataframe(headers=["query", "labelled", "before", "after"], label="Rows the label would move",
                               wrap=True, interactive=False, elem_id="inbox-changed")
    state = gr.State(InboxState())

    def on_load(request: gr.Request):
        principal = caller(accounts, request, "use the inbox", label=True)
        fresh, note = load(flywheel, principal, limit)
        return (fresh, table(fresh.items), note, *view(fresh))

    def on_pick(inbox: InboxState, evt: gr.SelectData, request: gr.Request):
        caller(accounts, request, "use the inbox", label=True)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if isinstance(index, int) and 0 <= index < len(inbox.items):
            inbox.at = index
        return (inbox, *view(inbox))

    def on_label(inbox: InboxState, picked: str | None, confirming: bool, request: gr.Request):
        principal = caller(accounts, request, "label routed turns", label=True)
        item = inbox.current
        note = label(flywheel, principal, inbox, item.route if confirming and item else picked)
        return (inbox, table(inbox.items), note, *view(inbox))

    def on_confirm(inbox: InboxState, picked: str | None, request: gr.Request):
        return on_label(inbox, picked, True, request)

    def on_relabel(inbox: InboxState, picked: str | None, request: gr.Request):
        return on_label(inbox, picked, False, request)

    def on_skip(inbox: InboxState, request: gr.Request):
        caller(accounts, request, "use the inbox", label=True)
        skip(inbox)
        return (inbox, *view(inbox))

    def on_preview(inbox: InboxState, picked: str | None, request: gr.Request):
        principal = caller(accounts, request, "preview a label", label=True)
        return preview_text(flywheel, principal, inbox, picked, rows)

    listing = [state, items, message, current, route]
    private = {"api_visibility": "private"}
    reload.click(on_load, None, listing, api_name="inbox")
    items.select(on_pick, state, [state, current, route], **private)
    confirm.click(on_confirm, [state, route], [state, items, outcome, current, route], api_name="inbox_confirm")
    relabel.click(on_relabel, [state, route], [state, items, outcome, current, route], api_name="inbox_label")
    skip_button.click(on_skip, state, [state, current, route], **private)
    check.click(on_preview, [state, route], [outcome, changed], api_name="inbox_preview")
    return {"fn": on_load, "inputs": None, "outputs": listing, "pick": on_pick, "confirm": on_confirm,
            "label": on_relabel, "skip": on_skip, "preview": on_preview}
