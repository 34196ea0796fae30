"""Gradio workbench: one module per tab; handlers call router/ and forensics/ and hold no routing logic."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import gradio as gr

from forensics.feedback import Flywheel
from router.service import ChatService
from ui.benchmarks import build_benchmarks
from ui.chat import build_chat, try_other
from ui.compare import build_compare
from ui.data import build_data
from ui.playground import build_playground

TITLE = "LLM router workbench"


def build_demo(
    service: ChatService, flywheel: Flywheel | None = None, concurrency: int = 16, store_problem: str = "",
    benchmarks: Mapping[str, Any] | None = None,
) -> gr.Blocks:
    """The workbench: Chat, Compare, Router playground and Data tabs over one chat service.

    `flywheel` stores preferences, corrections and routing events (None: nothing is stored, and
    `store_problem` says why); `concurrency` is how many answers may stream at once, all sessions together;
    `benchmarks` holds the Benchmarks tab's settings (data, out_dir, max_configs, calibrated_path).
    """
    bench = {"data": None, "out_dir": "outputs/sweeps", "max_configs": 24,
             "calibrated_path": "conf/router/calibrated.yaml", **(benchmarks or {})}
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:  # no telemetry calls; works offline
        gr.Markdown(f"# {TITLE}\nEvery answer shows which tier, route and model handled it, with scores and timings.")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                chat = build_chat(service, flywheel, concurrency)
            with gr.Tab("Compare", id="compare"):
                compare = build_compare(service, flywheel)
            with gr.Tab("Router playground", id="playground"):
                build_playground(service)
            with gr.Tab("Benchmarks", id="benchmarks"):
                build_benchmarks(**bench)
            with gr.Tab("Data", id="data") as data_tab:
                data = build_data(flywheel, list(service.router.routes), list(service.experts), store_problem)
        chat["try_other"].click(
            partial(try_other, service), chat["session"],
            [compare["prompt"], compare["side_a"], compare["side_b"], compare["card"], compare["state"], tabs],
            api_name="try_other", concurrency_limit=concurrency,
        )
        data_tab.select(data["fn"], data["inputs"], data["outputs"], api_visibility="private")
        demo.load(chat["check"], None, chat["status"], api_visibility="private")
    return demo
