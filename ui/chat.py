"""The Chat tab: streamed answers with their routing cards, the backend status line, and feedback."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import gradio as gr

from forensics.feedback import Flywheel, overruled_rule
from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService, FallingBack, Finished, Routed, Token
from ui.card import answer_footer, routing_card
from ui.compare import CompareState, render

log = logging.getLogger(__name__)


@dataclass
class LastTurn:
    """The latest answered turn, for "try the other expert" and routing corrections."""

    prompt: str
    history: list[Message]
    done: Finished
    decision: RouteDecision


@dataclass
class ChatSession:
    """One browser session's conversation, as sent to the models (without the cards)."""

    history: list[Message] = field(default_factory=list)
    last: LastTurn | None = None


def status_line(service: ChatService) -> str:
    """One line on the backend: reachable or not, and which configured models are there."""
    status = service.status()
    if not status.reachable:
        return (f"🔴 **No model backend**: {status.detail}. Routing still works: every message shows "
                "its routing card, but no model answers.")
    models = " · ".join(f"`{m}` {'✅' if ok else '❌ not pulled'}" for m, ok in status.models.items())
    return f"🟢 **Backend reachable** · {models}"


def respond(service: ChatService, flywheel: Flywheel | None, message: str, chat: list[dict], session: ChatSession):
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
                if event.fallback_from and decision is not None:
                    card = routing_card(decision, event.model)
                body = event.answer or ""
                if event.error and not event.answer:
                    body = f"⚠️ **No model answered.** {event.error}"
                elif event.error:
                    body += f"\n\n⚠️ {event.error}"
                chat[-1] = {"role": "assistant", "content": f"{body}\n\n---\n{card}  \n{answer_footer(event)}"}
                session.last = LastTurn(message, list(session.history), event, decision)
                if event.answer:
                    session.history += [Message("user", message), Message("assistant", event.answer)]
                notice = _record(flywheel, message, decision, event) or notice
                yield chat, "", gr.skip()
    except InvalidQueryError as e:
        chat[-1] = {"role": "assistant", "content": f"⚠️ {e}"}
        yield chat, "", gr.skip()
    if notice:
        gr.Info(notice)


def _record(flywheel: Flywheel | None, message: str, decision: RouteDecision, done: Finished) -> str:
    """Log the turn as a routing event; a storage failure is reported, never fatal to the chat."""
    if flywheel is None:
        return ""
    try:
        flywheel.record_turn(message, decision, done)
    except StoreError as e:
        log.warning("Routing event not stored: %s", e)
        return f"⚠️ This turn was not logged: {e}"
    return ""


def correct_route(flywheel: Flywheel | None, session: ChatSession, route: str | None) -> str:
    """ "Should have gone to <route>": stored, and used by the router from the next message on."""
    if session.last is None:
        return "Ask something first; then say where it should have gone."
    if not route:
        return "Pick the route it should have gone to."
    if flywheel is None:
        return "⚠️ Not saved: the preference store is not available (see the Data tab)."
    try:
        correction = flywheel.correct(session.last.prompt, session.last.decision, route)
    except StoreError as e:
        return f"⚠️ Not saved: {e}"
    decision = session.last.decision
    if overruled_rule(decision.to_dict(), route) is not None:
        rule = decision.rule
        return (f"Correction #{correction} saved. This query was decided by the keyword rule `{rule.pattern}` of "
                f"route {rule.route}: from now on, when that rule fires, the semantic tier re-checks the query and "
                f"sends it to **{route}** if it ranks {route} first. To retire the rule, edit conf/routes/ "
                "(undo the correction in the Data tab).")
    return (f"Correction #{correction} saved: queries like this now go to **{route}** "
            "(undo it in the Data tab).")


def try_other(service: ChatService, session: ChatSession):
    """Ask the expert that did not answer the last turn; show both in the Compare tab to pick from."""
    last = session.last
    if last is None or last.done.expert is None:
        yield gr.skip(), gr.skip(), gr.skip(), "Ask something that gets an answer first.", gr.skip(), gr.skip()
        return
    other = next((name for name in service.experts if name != last.done.expert), None)
    state = CompareState(last.prompt, last.history, {0: last.done}, last.decision)
    card = routing_card(last.decision, last.done.model)
    text = ""
    for event in service.ask(other, last.prompt, last.history):
        if isinstance(event, Token):
            text += event.text
        else:
            state.done[1] = event
        yield (last.prompt, render(last.done, last.done.answer, "A"), render(state.done.get(1), text, "B"),
               f"The router sent this to:  \n{card}", state, gr.Tabs(selected="compare"))


def build_chat(service: ChatService, flywheel: Flywheel | None, concurrency: int = 16) -> dict:
    """Lay out the Chat tab inside the current Blocks context; returns components other tabs wire to."""
    status = gr.Markdown("Checking the model backend…", elem_id="backend-status")
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=520, elem_id="chatbot", buttons=["copy"])
            with gr.Row():
                box = gr.Textbox(placeholder="Ask anything; the router picks the expert.", show_label=False,
                                 scale=5, elem_id="chat-input", autofocus=True)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
            with gr.Row():
                route = gr.Dropdown(list(service.router.routes), value=None, label="Should have gone to",
                                    scale=2, elem_id="correct-route")
                fix = gr.Button("Correct routing", scale=1, elem_id="correct-button")
                other = gr.Button("Try the other expert", scale=1, elem_id="try-other")
            feedback = gr.Markdown(elem_id="chat-feedback")
        with gr.Column(scale=2):
            last = gr.JSON(label="Last routing decision", elem_id="last-decision")
            refresh = gr.Button("Check backend", size="sm")
    session = gr.State(ChatSession())
    gr.on(
        [box.submit, send.click], partial(respond, service, flywheel), [box, chatbot, session], [chatbot, box, last],
        api_name="chat", show_progress="hidden",
        # A slow or hung backend in one session must not queue the others behind it.
        concurrency_limit=concurrency,
    )
    fix.click(partial(correct_route, flywheel), [session, route], feedback, api_name="correct")
    check = partial(status_line, service)
    refresh.click(check, None, status, api_visibility="private")
    return {"status": status, "check": check, "session": session, "try_other": other, "feedback": feedback}
