"""The Data tab: preferences and routing corrections as paged tables, win rates with intervals, the
route → expert mapping the votes propose, deletion and undo of a selected row (confirmed), and export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from forensics.dpo_pipeline import export_dpo_dataset
from forensics.feedback import Flywheel, overruled_rule
from forensics.mapping import MAPPING_PATH, propose, read_mapping, with_intervals, write_mapping
from forensics.plots import win_rate_chart
from forensics.preference_records import VERDICTS
from forensics.preference_store import StoreError
from ui.auth import Accounts, Forbidden, Principal, caller, require

ALL = "(all)"
PAGE_ROWS = 15  # rows per table page
PREFERENCE_COLUMNS = ["id", "when", "user", "prompt", "A", "B", "verdict", "route"]
CORRECTION_COLUMNS = ["id", "when", "user", "scope", "query", "went to", "should go to", "rule it overrules"]
MAPPING_COLUMNS = ["route", "expert", "serves it now", "won", "lost", "ties", "both bad", "win rate", "95% interval"]
SCOPES = {"global": "everyone", "session": "own session (pending review)"}


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def page_of(rows: list, page: float | None, size: int = PAGE_ROWS) -> tuple[list, int, int]:
    """(the rows of page `page`, counted from 1 and clamped, that page, the number of pages).

    >>> page_of(list(range(5)), 9, 2)
    ([4], 3, 3)
    """
    pages = max(1, -(-len(rows) // size))
    try:
        number = min(max(1, int(page or 1)), pages)
    except (TypeError, ValueError, OverflowError):
        number = 1
    return rows[(number - 1) * size: number * size], number, pages


def load_tables(flywheel: Flywheel | None, principal: Principal, route: str, expert: str, verdict: str,
                pref_page: float | None = None, corr_page: float | None = None):
    """(preferences rows, win-rate figure, corrections rows, message) for the current filters and pages.

    An admin sees every record, visitors' pending session corrections included; a labeler sees their own.
    Without pages, every row; with them, one page of each table (the message says which).
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
    pref_rows = [[p.id, p.created_at[:10], p.user, _short(p.prompt), p.expert_a, p.expert_b, p.verdict, p.route or ""]
                 for p in prefs]
    corr_rows = [[c.id, c.created_at[:10], c.user, SCOPES.get(c.scope, c.scope), _short(c.query), c.wrong_route or "",
                  c.right_route, _short(overruled_rule(c.decision, c.right_route) or "", 40)] for c in corrections]
    whose = "All users' records" if mine is None else f"Your records ({principal.name})"
    message = f"{whose}: {len(pref_rows)} preferences, {len(corr_rows)} active corrections."
    if pref_page is not None or corr_page is not None:
        pref_rows, p, pp = page_of(pref_rows, pref_page)
        corr_rows, c, cp = page_of(corr_rows, corr_page)
        message += f" Preferences page {p} of {pp}, corrections page {c} of {cp}. Select a row to delete or undo it."
    return pref_rows, win_rate_chart(with_intervals(rates)), corr_rows, message


def mapping_table(flywheel: Flywheel | None, principal: Principal, mapping: dict[str, str],
                  min_votes: int = 5) -> tuple[list[list], str]:
    """(per route and expert: counts, win rate and Wilson interval; the proposed mapping changes, in words)."""
    try:
        require(principal, "see stored data", label=True)
    except Forbidden:
        return [], ""
    if flywheel is None:
        return [], ""
    try:
        rates = with_intervals(flywheel.store.win_rates(user=principal.owner_filter))
    except StoreError as e:
        return [], f"⚠️ {e}"
    rows = [[r["route"] or "(unrouted)", r["expert"], "yes" if mapping.get(r["route"]) == r["expert"] else "",
             r["wins"], r["losses"], r["ties"], r["both_bad"],
             "-" if r["win_rate"] is None else f"{r['win_rate']:.0%}",
             "-" if r["ci"] is None else f"{r['ci'][0]:.0%}–{r['ci'][1]:.0%}"] for r in rates]
    proposals = propose(rates, mapping, min_votes)
    if not proposals:
        text = (f"No mapping change proposed: no expert wins a route it does not serve with at least {min_votes} "
                "decisive votes and a 95% interval above 50%.")
    else:
        text = "**Proposed mapping change** (an admin applies it):\n" + "\n".join(f"- {p.sentence()}" for p in proposals)
    return rows, text


def apply_mapping_change(flywheel: Flywheel | None, principal: Principal, mapping: dict[str, str],
                         path: str | Path, min_votes: int = 5) -> str:
    """Write the proposed route → expert changes to `path` (admin only); the running router is not changed."""
    require(principal, "change the route → expert mapping", admin=True)
    if flywheel is None:
        return "⚠️ The preference store is not available."
    proposals = propose(with_intervals(flywheel.store.win_rates()), mapping, min_votes)
    if not proposals:
        return "Nothing to apply: no mapping change is proposed."
    changed = {**read_mapping(path), **{p.route: p.better for p in proposals}}
    written = write_mapping(path, changed, "; ".join(f"{p.route} {p.current}->{p.better} "
                                                      f"({p.win_rate:.0%} of {p.n})" for p in proposals))
    moves = ", ".join(f"{p.route} → {p.better}" for p in proposals)
    return (f"Wrote {moves} to {written}. The running workbench is unchanged; start it with "
            f"routes_mapping={written} to use it.")


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


def selected_id(evt: gr.SelectData) -> int | None:
    """The record id in the first column of the selected table row."""
    row = getattr(evt, "row_value", None) or []
    return _id(row[0]) if row else None


def build_data(flywheel: Flywheel | None, accounts: Accounts, routes: list[str], experts: list[str],
               store_problem: str = "", mapping: dict[str, str] | None = None,
               mapping_path: str | Path = MAPPING_PATH) -> dict:
    """Lay out the Data tab inside the current Blocks context; returns its refresh (fn, inputs, outputs).

    `mapping` is the running route → expert table the votes are compared with; an admin's "Apply" writes
    the proposed changes to `mapping_path`.
    """
    mapping = dict(mapping or {})
    if store_problem:
        gr.Markdown(f"⚠️ **Preferences are not being saved.** {store_problem}")
    with gr.Row():
        route = gr.Dropdown([ALL, *routes], value=ALL, label="Route")
        expert = gr.Dropdown([ALL, *experts], value=ALL, label="Expert")
        verdict = gr.Dropdown([ALL, *VERDICTS], value=ALL, label="Verdict")
        refresh = gr.Button("Reload tables", elem_id="data-refresh")
    message = gr.Markdown(elem_id="data-message")
    prefs = gr.Dataframe(headers=PREFERENCE_COLUMNS, label="Preferences (select a row to delete it)", wrap=True,
                         interactive=False, elem_id="data-preferences",
                         column_widths=["6%", "11%", "10%", "37%", "9%", "9%", "8%", "10%"])
    with gr.Row():
        pref_prev = gr.Button("◀ Newer", size="sm", scale=0, min_width=110, elem_id="data-pref-prev")
        pref_page = gr.Number(1, label="Preferences page", precision=0, minimum=1, elem_id="data-pref-page")
        pref_next = gr.Button("Older ▶", size="sm", scale=0, min_width=110, elem_id="data-pref-next")
    with gr.Row(visible=False, elem_id="data-pref-confirm") as pref_confirm:
        pref_text = gr.Markdown(elem_id="data-pref-selected")
        delete = gr.Button("Yes, delete this vote", variant="stop", elem_id="data-delete")
        pref_cancel = gr.Button("Cancel", elem_id="data-pref-cancel")
    pref_id = gr.Number(visible=False, precision=0, elem_id="pref-id")
    with gr.Row():
        chart = gr.Plot(label="Win rate per expert per route", elem_id="data-chart")
    with gr.Row():
        rates = gr.Dataframe(headers=MAPPING_COLUMNS, label="Votes per route and expert", wrap=True,
                             interactive=False, elem_id="data-rates")
    proposal = gr.Markdown(elem_id="data-proposal")
    apply = gr.Button("Apply proposed mapping (admin: writes a config file)", elem_id="data-apply-mapping")
    corrections = gr.Dataframe(headers=CORRECTION_COLUMNS, label="Routing corrections (select a row to undo it)",
                               wrap=True, interactive=False, elem_id="data-corrections",
                               column_widths=["6%", "11%", "10%", "11%", "30%", "9%", "10%", "13%"])
    with gr.Row():
        corr_prev = gr.Button("◀ Newer", size="sm", scale=0, min_width=110, elem_id="data-corr-prev")
        corr_page = gr.Number(1, label="Corrections page", precision=0, minimum=1, elem_id="data-corr-page")
        corr_next = gr.Button("Older ▶", size="sm", scale=0, min_width=110, elem_id="data-corr-next")
    with gr.Row(visible=False, elem_id="data-corr-confirm") as corr_confirm:
        corr_text = gr.Markdown(elem_id="data-corr-selected")
        undo = gr.Button("Yes, undo this correction", elem_id="data-undo")
        promote = gr.Button("Promote to everyone", elem_id="data-promote")
        corr_cancel = gr.Button("Cancel", elem_id="data-corr-cancel")
    corr_id = gr.Number(visible=False, precision=0, elem_id="corr-id")
    with gr.Row():
        answers = gr.Button("Export DPO pairs (answers)", elem_id="data-export-answers")
        routing = gr.Button("Export routing triplets", elem_id="data-export-routing")
        download = gr.File(label="Download", elem_id="data-download")

    def load(route_: str, expert_: str, verdict_: str, pref_page_: float | None, corr_page_: float | None,
             request: gr.Request):
        try:
            principal = accounts.from_gradio(request)
        except Forbidden as e:
            return [], None, [], str(e)
        return load_tables(flywheel, principal, route_, expert_, verdict_, pref_page_ or 1, corr_page_ or 1)

    def load_mapping(request: gr.Request):
        try:
            principal = accounts.from_gradio(request)
        except Forbidden:
            return [], ""
        return mapping_table(flywheel, principal, mapping)

    # Each handler checks the caller itself: a direct HTTP call meets the same check as the button.
    def on_pick_preference(evt: gr.SelectData, request: gr.Request):
        caller(accounts, request, "delete preferences", label=True)
        rid = selected_id(evt)
        if rid is None:
            return gr.skip(), "", gr.Row(visible=False)
        row = evt.row_value
        return rid, f"Delete preference **#{rid}** ({row[2]}: “{_short(str(row[3]), 60)}”, verdict {row[6]})?", \
            gr.Row(visible=True)

    def on_pick_correction(evt: gr.SelectData, request: gr.Request):
        caller(accounts, request, "undo corrections", label=True)
        rid = selected_id(evt)
        if rid is None:
            return gr.skip(), "", gr.Row(visible=False)
        row = evt.row_value
        return rid, f"Undo correction **#{rid}** (“{_short(str(row[4]), 60)}” → {row[6]})?", gr.Row(visible=True)

    def on_delete(record_id: float | None, request: gr.Request):
        done = delete_preference(flywheel, caller(accounts, request, "delete preferences", label=True), record_id)
        return done, gr.Row(visible=False)

    def on_undo(record_id: float | None, request: gr.Request):
        done = undo_correction(flywheel, caller(accounts, request, "undo corrections", label=True), record_id)
        return done, gr.Row(visible=False)

    def on_promote(record_id: float | None, request: gr.Request):
        done = promote_correction(flywheel, caller(accounts, request, "promote corrections", admin=True), record_id)
        return done, gr.Row(visible=False)

    def on_cancel(request: gr.Request):
        caller(accounts, request, "use the Data tab")  # nothing is read or changed: it hides the confirmation
        return gr.Row(visible=False)

    def on_apply(request: gr.Request) -> str:
        return apply_mapping_change(flywheel, caller(accounts, request, "change the route → expert mapping",
                                                     admin=True), mapping, mapping_path)

    def export_of(kind: str):
        def on_export(request: gr.Request):
            return export(flywheel, caller(accounts, request, "export data", label=True), kind)
        return on_export

    inputs = [route, expert, verdict, pref_page, corr_page]
    tables = [prefs, chart, corrections, message]
    gr.on([refresh.click, route.change, expert.change, verdict.change, pref_page.submit, corr_page.submit],
          load, inputs, tables, api_name="data").then(load_mapping, None, [rates, proposal], api_visibility="private")
    private = {"api_visibility": "private"}
    # Paging is arithmetic in the browser; the reload that follows checks the caller.
    for button, number, step in ((pref_prev, pref_page, -1), (pref_next, pref_page, 1), (corr_prev, corr_page, -1),
                                 (corr_next, corr_page, 1)):
        button.click(None, number, number, js=f"(p) => Math.max(1, (p || 1) + ({step}))").then(load, inputs, tables,
                                                                                              **private)
    prefs.select(on_pick_preference, None, [pref_id, pref_text, pref_confirm], **private)
    corrections.select(on_pick_correction, None, [corr_id, corr_text, corr_confirm], **private)
    pref_cancel.click(on_cancel, None, pref_confirm, **private)
    corr_cancel.click(on_cancel, None, corr_confirm, **private)
    delete.click(on_delete, pref_id, [message, pref_confirm], **private).then(load, inputs, tables)
    undo.click(on_undo, corr_id, [message, corr_confirm], **private).then(load, inputs, tables)
    promote.click(on_promote, corr_id, [message, corr_confirm], **private).then(load, inputs, tables)
    apply.click(on_apply, None, proposal, **private)
    answers.click(export_of("answers"), None, [download, message], **private)
    routing.click(export_of("routing"), None, [download, message], **private)
    return {"fn": load, "inputs": inputs, "outputs": tables, "promote": promote, "apply": apply,
            "mapping_fn": load_mapping, "mapping_outputs": [rates, proposal]}
