"""Gradio workbench: one module per tab; handlers call router/ and hold no routing logic."""

from __future__ import annotations

import gradio as gr

from router.service import ChatService
from ui.chat import build_chat
from ui.playground import build_playground

TITLE = "LLM router workbench"


def build_demo(service: ChatService, concurrency: int = 16) -> gr.Blocks:
    """The workbench: Chat and Router playground tabs over one chat service.

    `concurrency`: how many chat turns may stream at once, across all sessions.
    """
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nEvery answer shows which tier, route and model handled it, with scores and timings.")
        with gr.Tab("Chat"):
            status, check = build_chat(service, concurrency)
        with gr.Tab("Router playground"):
            build_playground(service)
        demo.load(check, None, status, api_visibility="private")
    return demo
