"""Gradio workbench: one module per tab; handlers call router/ and forensics/ and hold no routing logic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gradio as gr

from forensics.feedback import Flywheel
from router.service import ChatService
from ui.auth import Accounts, Forbidden, who_line
from ui.benchmarks import build_benchmarks
from ui.chat import build_chat
from ui.compare import build_compare
from ui.data import build_data
from ui.inbox import SHORTCUTS, build_inbox_tab
from ui.limits import Limits, RateLimiter
from ui.playground import build_playground

TITLE = "LLM router workbench"
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate",
                       font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],  # no web fonts: works offline
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
# One look for every mount: app.py passes these to gr.mount_gradio_app (Gradio 6 takes them at launch or mount).
CSS = """
#chatbot hr, #compare-card hr { margin: 6px 0; }
#chatbot .message table, #compare-card table { margin: 4px 0; font-size: 0.9em; }
#chatbot .message td, #chatbot .message th { padding: 1px 8px; }
#chatbot code, #compare-card code { white-space: pre-wrap; word-break: break-all; }
#last-decision span { overflow-wrap: anywhere; word-break: break-word; }  /* long patterns wrap */
"""
HEAD = SHORTCUTS  # the Inbox tab's keyboard shortcuts
LOOK = {"theme": THEME, "css": CSS, "head": HEAD}


def build_demo(
    service: ChatService, flywheel: Flywheel | None = None, concurrency: int = 16, store_problem: str = "",
    benchmarks: Mapping[str, Any] | None = None, accounts: Accounts | None = None, limits: Limits | None = None,
    chat_limiter: RateLimiter | None = None, inbox: Mapping[str, Any] | None = None,
) -> gr.Blocks:
    """The workbench: Chat, Compare, Router playground, Benchmarks and Data tabs over one chat service.

    `flywheel` stores preferences, corrections and routing events (None: nothing is stored, and
    `store_problem` says why); `concurrency` is how many answers may stream at once, all sessions together;
    `benchmarks` holds the Benchmarks tab's settings (`router`: the router config the app runs); `accounts`
    says who may do what (None: one local admin); `chat_limiter` is shared by every Blocks the app mounts,
    so a second mount is no way around it; `inbox` holds the Inbox tab's settings (`reference`: the
    labelled file previews run on, or None).
    """
    inbox = {"reference": None, "limit": 50, **(inbox or {})}
    accounts = accounts or Accounts()
    limits = limits or Limits()
    limiter = chat_limiter or RateLimiter(limits.chat_per_minute)
    bench = {"data": None, "data_dir": "data/benchmarks", "out_dir": "outputs/sweeps",
             "calibrations_dir": "outputs/calibrations", "max_configs": 24, "hard_max_configs": 200, "keep_runs": 20,
             "max_upload_bytes": limits.max_upload_bytes, "calibrated_path": "conf/router/calibrated.yaml",
             **(benchmarks or {})}
    # No telemetry calls (works offline); Gradio's copies of uploads and downloads are deleted after a day.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(f"# {TITLE}\nEvery answer shows which tier, route and model handled it, with scores and timings.")
        viewer = gr.Markdown("…", elem_id="viewer")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                chat = build_chat(service, flywheel, accounts, limiter, concurrency)
            with gr.Tab("Compare", id="compare"):
                compare = build_compare(service, flywheel, accounts, limiter, chat["session"])
            with gr.Tab("Router playground", id="playground"):
                build_playground(service, accounts, limiter, limits.playground_lines)
            with gr.Tab("Benchmarks", id="benchmarks") as bench_tab:
                benchmarks_tab = build_benchmarks(accounts, routes=list(service.router.routes), **bench)
            with gr.Tab("Data", id="data") as data_tab:
                data = build_data(flywheel, accounts, list(service.router.routes), list(service.experts), store_problem,
                                  mapping={name: r.expert for name, r in service.router.routes.items()})
            with gr.Tab("Inbox", id="inbox") as inbox_tab:
                inbox_view = build_inbox_tab(flywheel, accounts, inbox["reference"], inbox["limit"])
        chat["try_other"].click(
            chat["on_try_other"], chat["session"],
            [compare["prompt"], compare["a"], compare["b"], compare["side_a"], compare["side_b"], compare["card"],
             compare["state"], tabs],
            api_name="try_other", concurrency_limit=concurrency,
        )
        data_tab.select(data["fn"], data["inputs"], data["outputs"], api_visibility="private").then(
            data["mapping_fn"], None, data["mapping_outputs"], api_visibility="private")
        inbox_tab.select(inbox_view["fn"], None, inbox_view["outputs"], api_visibility="private")
        bench_tab.select(benchmarks_tab["fn"], benchmarks_tab["inputs"], benchmarks_tab["outputs"],
                         api_visibility="private")
        demo.load(chat["check"], None, chat["status"], api_visibility="private")

        def on_load(request: gr.Request):
            """Who is viewing, and the admin-only controls shown to admins only (the handlers check anyway)."""
            try:
                principal = accounts.from_gradio(request)
                admin, labeler = principal.is_admin, principal.can_label
            except Forbidden:
                admin = labeler = False
            return (who_line(accounts, request), gr.Tab(visible=admin), gr.Button(visible=admin),
                    gr.Button(visible=admin), gr.Tab(visible=labeler))

        demo.load(on_load, None, [viewer, bench_tab, data["promote"], data["apply"], inbox_tab],
                  api_visibility="private")
    return demo
