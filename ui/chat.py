"""The Chat tab: streamed answers, each with its routing card, and the backend status line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import gradio as gr

from router.errors import InvalidQueryError
from router.schema import Message
from router.service import ChatService, FallingBack, Finished, Routed, Token
from ui.card import answer_footer, routing_card


@dataclass
class ChatSession:
    """One browser session's conversation, as sent to the models (without the cards)."""

    history: list[Message] = field(default_factory=list)


def status_line(service: ChatService) -> str:
    """One line on the backend: reachable or not, and which configured models are there."""
    status = service.status()
    if not status.reachable:
        return (f"🔴 **No model backend**: {status.detail}. Routing still works: every message shows "
                "its routing card, but no model answers.")
    models = " · ".join(f"`{m}` {'✅' if ok else '❌ not pulled'}" for m, ok in status.models.items())
    return f"🟢 **Backend reachable** · {models}"


def respond(service: ChatService, message: str, chat: list[dict], session: ChatSession):
    """Stream one chat turn: yields (chatbot, textbox, last decision) as the answer grows."""
    if not message or not message.strip():
        yield chat, message, gr.skip()
        return
    chat = [*chat, {"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
    answer, card, decision, notice = "", "", None, ""
    yield chat, "", gr.skip()
    try:
        for event in service.chat(message, session.history):
            if isinstance(event, Routed):
                decision = event.decision
                card = routing_card(event.decision, event.model)
                chat[-1] = {"role": "assistant", "content": f"…\n\n---\n{card}"}
                yield chat, "", decision.to_dict()
            elif isinstance(event, FallingBack):
                notice = f"↪ {event.failed} failed ({event.reason}); asking {event.expert} (`{event.model}`)."
            elif isinstance(event, Token):
                answer += event.text
                chat[-1] = {"role": "assistant", "content": f"{answer}\n\n---\n{card}"}
                yield chat, "", gr.skip()
            elif isinstance(event, Finished):
                if event.expert and event.model and decision is not None:
                    card = routing_card(decision, event.model) if event.fallback_from else card
                body = event.answer or ""
                if event.error and not event.answer:
                    body = f"⚠️ **No model answered.** {event.error}"
                elif event.error:
                    body += f"\n\n⚠️ {event.error}"
                chat[-1] = {"role": "assistant", "content": f"{body}\n\n---\n{card}  \n{answer_footer(event)}"}
                if event.answer:
                    session.history += [Message("user", message), Message("assistant", event.answer)]
                yield chat, "", gr.skip()
    except InvalidQueryError as e:
        chat[-1] = {"role": "assistant", "content": f"⚠️ {e}"}
        yield chat, "", gr.skip()
    if notice:
        gr.Info(notice)


def build_chat(service: ChatService, concurrency: int = 16) -> tuple[gr.Markdown, Callable[[], str]]:
    """Lay out the Chat tab inside the current Blocks context; returns the status line and its check."""
    status = gr.Markdown("Checking the model backend…", elem_id="backend-status")
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=520, elem_id="chatbot", buttons=["copy"])
            with gr.Row():
                box = gr.Textbox(placeholder="Ask anything; the router picks the expert.", show_label=False,
                                 scale=5, elem_id="chat-input", autofocus=True)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        with gr.Column(scale=2):
            last = gr.JSON(label="Last routing decision", elem_id="last-decision")
            refresh = gr.Button("Check backend", size="sm")
    session = gr.State(ChatSession())
    gr.on(
        [box.submit, send.click], partial(respond, service), [box, chatbot, session], [chatbot, box, last],
        api_name="chat", show_progress="hidden",
        # A slow or hung backend in one session must not queue the others behind it.
        concurrency_limit=concurrency,
    )
    check = partial(status_line, service)
    refresh.click(check, None, status, api_visibility="private")
    return status, check
