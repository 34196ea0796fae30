"""The Data tab: preferences and routing corrections as tables, win rates, deletion, undo and export."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import gradio as gr

from forensics.dpo_pipeline import export_dpo_dataset
from forensics.feedback import Flywheel, overruled_rule
from forensics.plots import win_rate_chart
from forensics.preference_records import VERDICTS
from forensics.preference_store import StoreError

ALL = "(all)"
PREFERENCE_COLUMNS = ["id", "created", "prompt", "expert A", "model A", "expert B", "model B", "verdict", "route"]
CORRECTION_COLUMNS = ["id", "created", "query", "went to", "should go to", "keyword rule it overrules"]


def _short(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def load_tables(flywheel: Flywheel | None, route: str, expert: str, verdict: str):
    """(preferences rows, win-rate figure, corrections rows, message) for the current filters."""
    if flywheel is None:
        return [], None, [], "⚠️ The preference store is not available; see the message at the top of this tab."
    pick = lambda value: None if value in (None, "", ALL) else value  # noqa: E731
    try:
        prefs = flywheel.store.preferences(route=pick(route), expert=pick(expert), verdict=pick(verdict))
        rates = flywheel.store.win_rates()
        corrections = flywheel.store.corrections()
    except StoreError as e:
        return [], None, [], f"⚠️ {e}"
    pref_rows = [[p.id, p.created_at[:19], _short(p.prompt), p.expert_a, p.model_a, p.expert_b, p.model_b,
                  p.verdict, p.route or ""] for p in prefs]
    corr_rows = [[c.id, c.created_at[:19], _short(c.query), c.wrong_route or "", c.right_route,
                  _short(overruled_rule(c.decision, c.right_route) or "", 60)] for c in corrections]
    return pref_rows, win_rate_chart(rates), corr_rows, f"{len(pref_rows)} preferences, {len(corr_rows)} active corrections."


def delete_preference(flywheel: Flywheel | None, record_id: float | None) -> str:
    if flywheel is None or record_id is None:
        return "Give the id of the preference to delete."
    try:
        gone = flywheel.store.delete_preference(int(record_id))
    except StoreError as e:
        return f"⚠️ {e}"
    return f"Deleted preference #{int(record_id)}." if gone else f"There is no preference #{int(record_id)}."


def undo_correction(flywheel: Flywheel | None, record_id: float | None) -> str:
    if flywheel is None or record_id is None:
        return "Give the id of the correction to undo."
    try:
        undone = flywheel.undo(int(record_id))
    except StoreError as e:
        return f"⚠️ {e}"
    return (f"Undid correction #{int(record_id)}; the router no longer uses it." if undone
            else f"There is no active correction #{int(record_id)}.")


def export(flywheel: Flywheel | None, kind: str) -> tuple[str | None, str]:
    """Write the DPO export to a temporary file for download."""
    if flywheel is None:
        return None, "⚠️ The preference store is not available."
    out = Path(tempfile.mkdtemp(prefix="dpo-")) / f"dpo-{kind}.jsonl"
    try:
        rows = export_dpo_dataset(flywheel.store, out, kind=kind)
    except StoreError as e:
        return None, f"⚠️ {e}"
    return str(out), f"Exported {rows} rows ({kind})."


def build_data(flywheel: Flywheel | None, routes: list[str], experts: list[str], store_problem: str = "") -> dict:
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
        delete = gr.Button("Delete preference", variant="stop")
    corrections = gr.Dataframe(headers=CORRECTION_COLUMNS, label="Routing corrections (used by the router)",
                               wrap=True, elem_id="data-corrections")
    with gr.Row():
        corr_id = gr.Number(label="Correction id", precision=0)
        undo = gr.Button("Undo correction")
    with gr.Row():
        answers = gr.Button("Export DPO pairs (answers)")
        routing = gr.Button("Export routing triplets")
        download = gr.File(label="Download", elem_id="data-download")
    load = partial(load_tables, flywheel)
    filters = [route, expert, verdict]
    tables = [prefs, chart, corrections, message]
    gr.on([refresh.click, route.change, expert.change, verdict.change], load, filters, tables, api_name="data")
    delete.click(partial(delete_preference, flywheel), pref_id, message, api_visibility="private").then(
        load, filters, tables)
    undo.click(partial(undo_correction, flywheel), corr_id, message, api_visibility="private").then(
        load, filters, tables)
    answers.click(partial(export, flywheel, "answers"), None, [download, message], api_visibility="private")
    routing.click(partial(export, flywheel, "routing"), None, [download, message], api_visibility="private")
    return {"fn": load, "inputs": filters, "outputs": tables}
