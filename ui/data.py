"""The Data tab: preferences and routing corrections as tables, win rates, deletion, undo and export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from forensics.dpo_pipeline import export_dpo_dataset
from forensics.feedback import Flywheel, overruled_rule
from forensics.plots import win_rate_chart
from forensics.preference_records import VERDICTS
from forensics.preference_store import StoreError
from ui.auth import Accounts, Forbidden, Principal, caller, require

ALL = "(all)"
PREFERENCE_COLUMNS = ["id", "created", "user", "prompt", "expert A", "model A", "expert B", "model B", "verdict",
                      "route"]
CORRECTION_COLUMNS = ["id", "created", "user", "scope", "query", "went to", "should go to",
                      "keyword rule it overrules"]
SCOPES = {"global": "everyone", "session": "own session (pending review)"}


def _short(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def load_tables(flywheel: Flywheel | None, principal: Principal, route: str, expert: str, verdict: str):
    """(preferences rows, win-rate figure, corrections rows, message) for the current filters.

    An admin sees every record, visitors' pending session corrections included; a labeler sees their own.
    """
    try:
        require(principal, "see stored data", label=True)
    except Forbidden:
        return [], None, [], "The Data tab is for signed-in labelers and admins: sign in to see your records."
    if flywheel is None:
        return [], None, [], "⚠️ The preference store is not available; see the message at the top of this tab."
    pick = lambda value: None if value in (None, "", ALL) else value  # noqa: E731
    mine = principal.owner_filter
    try:
        prefs = flywheel.store.preferences(route=pick(route), expert=pick(expert), verdict=pick(verdict), user=mine)
        rates = flywheel.store.win_rates(user=mine)
        corrections = flywheel.store.corrections(user=mine)
    except StoreError as e:
        return [], None, [], f"⚠️ {e}"
    pref_rows = [[p.id, p.created_at[:19], p.user, _short(p.prompt), p.expert_a, p.model_a, p.expert_b, p.model_b,
                  p.verdict, p.route or ""] for p in prefs]
    corr_rows = [[c.id, c.created_at[:19], c.user, SCOPES.get(c.scope, c.scope), _short(c.query), c.wrong_route or "",
                  c.right_route, _short(overruled_rule(c.decision, c.right_route) or "", 60)] for c in corrections]
    whose = "All users' records" if mine is None else f"Your records ({principal.name})"
    return (pref_rows, win_rate_chart(rates), corr_rows,
            f"{whose}: {len(pref_rows)} preferences, {len(corr_rows)} active corrections.")


def _id(record_id: float | None) -> int | None:
    try:
        return None if record_id is None else int(record_id)
    except (TypeError, ValueError, OverflowError):
        return None


def delete_preference(flywheel: Flywheel | None, principal: Principal, record_id: float | None) -> str:
    """Delete a vote: an admin any, a labeler only their own."""
    require(principal, "delete preferences", label=True)
    if flywheel is None or (rid := _id(record_id)) is None:
        return "Give the id of the preference to delete."
    try:
        gone = flywheel.store.delete_preference(rid, user=principal.owner_filter)
    except StoreError as e:
        return f"⚠️ {e}"
    return f"Deleted preference #{rid}." if gone else f"There is no preference #{rid} of yours."


def undo_correction(flywheel: Flywheel | None, principal: Principal, record_id: float | None) -> str:
    """Undo a correction: an admin any, a labeler only their own."""
    require(principal, "undo corrections", label=True)
    if flywheel is None or (rid := _id(record_id)) is None:
        return "Give the id of the correction to undo."
    try:
        undone = flywheel.undo(rid, user=principal.owner_filter)
    except StoreError as e:
        return f"⚠️ {e}"
    return (f"Undid correction #{rid}; the router no longer uses it." if undone
            else f"There is no active correction #{rid} of yours.")


def promote_correction(flywheel: Flywheel | None, principal: Principal, record_id: float | None) -> str:
    """Make a visitor's session correction apply to everyone (admin only)."""
    require(principal, "promote a visitor's correction", admin=True)
    if flywheel is None or (rid := _id(record_id)) is None:
        return "Give the id of the session correction to promote."
    try:
        promoted = flywheel.promote(rid)
    except StoreError as e:
        return f"⚠️ {e}"
    return (f"Promoted correction #{rid}: it now routes everyone's queries." if promoted
            else f"There is no pending session correction #{rid}.")


def export(flywheel: Flywheel | None, principal: Principal, kind: str) -> tuple[str | None, str]:
    """Write the DPO export to a temporary file for download: an admin's has everyone's, a labeler's their own."""
    require(principal, "export data", label=True)
    if flywheel is None:
        return None, "⚠️ The preference store is not available."
    if kind not in ("answers", "routing"):
        return None, f"Unknown export '{kind}'. Available: answers, routing."
    out = Path(tempfile.mkdtemp(prefix="dpo-")) / f"dpo-{kind}.jsonl"
    try:
        rows = export_dpo_dataset(flywheel.store, out, kind=kind, user=principal.owner_filter)
    except StoreError as e:
        return None, f"⚠️ {e}"
    return str(out), f"Exported {rows} rows ({kind})."


def build_data(flywheel: Flywheel | None, accounts: Accounts, routes: list[str], experts: list[str],
               store_problem: str = "") -> dict:
    """Lay out the Data tab inside the current Blocks context; returns its refresh (fn, inputs, outputs)."""
    if store_problem:
        gr.Markdown(f"⚠️ **Preferences are not being saved.** {store_problem}")
    with gr.Row():
        route = gr.Dropdown([ALL, *routes], value=ALL, label="Route")
        expert = gr.Dropdown([ALL, *experts], value=ALL, label="Expert")
        verdict = gr.Dropdown([ALL, *VERDICTS], value=ALL, label="Verdict")
        refresh = gr.Button("Refresh", elem_id="data-refresh")
    message = gr.Markdown(elem_id="data-message")
    prefs = gr.Dataframe(headers=PREFERENCE_COLUMNS, label="Preferences", wrap=True, elem_id="data-preferences")
    chart = gr.Plot(label="Win rate per expert per route", elem_id="data-chart")
    with gr.Row():
        pref_id = gr.Number(label="Preference id", precision=0)
        delete = gr.Button("Delete preference", variant="stop", elem_id="data-delete")
    corrections = gr.Dataframe(headers=CORRECTION_COLUMNS, label="Routing corrections", wrap=True,
                               elem_id="data-corrections")
    with gr.Row():
        corr_id = gr.Number(label="Correction id", precision=0)
        undo = gr.Button("Undo correction", elem_id="data-undo")
        promote = gr.Button("Promote to everyone", elem_id="data-promote")
    with gr.Row():
        answers = gr.Button("Export DPO pairs (answers)", elem_id="data-export-answers")
        routing = gr.Button("Export routing triplets", elem_id="data-export-routing")
        download = gr.File(label="Download", elem_id="data-download")

    def load(route_: str, expert_: str, verdict_: str, request: gr.Request):
        try:
            principal = accounts.from_gradio(request)
        except Forbidden as e:
            return [], None, [], str(e)
        return load_tables(flywheel, principal, route_, expert_, verdict_)

    # Each handler checks the caller itself: a direct HTTP call meets the same check as the button.
    def on_delete(record_id: float | None, request: gr.Request) -> str:
        return delete_preference(flywheel, caller(accounts, request, "delete preferences", label=True), record_id)

    def on_undo(record_id: float | None, request: gr.Request) -> str:
        return undo_correction(flywheel, caller(accounts, request, "undo corrections", label=True), record_id)

    def on_promote(record_id: float | None, request: gr.Request) -> str:
        return promote_correction(flywheel, caller(accounts, request, "promote corrections", admin=True), record_id)

    def export_of(kind: str):
        def on_export(request: gr.Request):
            return export(flywheel, caller(accounts, request, "export data", label=True), kind)
        return on_export

    filters = [route, expert, verdict]
    tables = [prefs, chart, corrections, message]
    gr.on([refresh.click, route.change, expert.change, verdict.change], load, filters, tables, api_name="data")
    delete.click(on_delete, pref_id, message, api_visibility="private").then(load, filters, tables)
    undo.click(on_undo, corr_id, message, api_visibility="private").then(load, filters, tables)
    promote.click(on_promote, corr_id, message, api_visibility="private").then(load, filters, tables)
    answers.click(export_of("answers"), None, [download, message], api_visibility="private")
    routing.click(export_of("routing"), None, [download, message], api_visibility="private")
    return {"fn": load, "inputs": filters, "outputs": tables, "promote": promote}
