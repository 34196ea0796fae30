"""The Chat tab: streamed answers with their routing cards, the backend status line, and feedback."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import gradio as gr

from forensics.feedback import Flywheel, SameRouteError
from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService, FallingBack, Finished, Routed, Token
from router.session import SessionCorrection, add_correction
from ui.auth import Accounts, Principal, caller
from ui.card import answer_footer, error_markdown, plain, routing_card, safe_markdown, with_hover
from ui.compare import CompareState, new_pair, render
from ui.limits import RateLimiter, wait_message

log = logging.getLogger(__name__)
MAX_HISTORY = 40  # messages a session keeps and sends to the model: memory per session stays bounded


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
    # A visitor's corrections: they reroute this session's similar queries, nobody else's.
    corrections: tuple[SessionCorrection, ...] = ()


def status_line(service: ChatService) -> str:
    """One line on the backend: reachable or not, and which configured models are there."""
    status = service.status()
    if not status.reachable:
        return (f"🔴 **No model backend**: {status.detail}. Routing still works: every message shows "
                "its routing card, but no model answers.")
    models = " · ".join(f"`{m}` {'✅' if ok else '❌ not pulled'}" for m, ok in status.models.items())
    return f"🟢 **Backend reachable** · {models}"


def respond(service: ChatService, flywheel: Flywheel | None, principal: Principal, message: str, chat: list[dict],
            session: ChatSession, limiter: RateLimiter | None = None):
    """Stream one chat turn: yields (chatbot, textbox, last decision) as the answer grows."""
    if not message or not message.strip():
        yield chat, message, gr.skip()
        return
    if limiter is not None and (wait := limiter.retry_after(principal.client)):
        yield chat, message, gr.skip()
        gr.Warning(plain(wait_message(wait)))
        return
    chat = [*chat, {"role": "user", "content": safe_markdown(message)}, {"role": "assistant", "content": "…"}]
    answer, card, decision, notice = "", "", None, ""
    yield chat, "", gr.skip()
    try:
        for event in service.chat(message, session.history, session.corrections):
            if isinstance(event, Routed):
                decision = event.decision
                card = routing_card(event.decision, event.model)
                chat[-1] = {"role": "assistant", "content": f"…\n\n---\n{card}"}
                yield chat, "", decision.to_dict()
            elif isinstance(event, FallingBack):
                notice = plain(f"↪ {event.failed} failed ({event.reason}); asking {event.expert} ({event.model}).")
            elif isinstance(event, Token):
                answer += event.text
                chat[-1] = {"role": "assistant", "content": f"{safe_markdown(answer)}\n\n---\n{card}"}
                yield chat, "", gr.skip()
            elif isinstance(event, Finished):
                if event.fallback_from and decision is not None:  # the card names who really answered
                    card = routing_card(decision, event.model, event.expert)
                body = safe_markdown(event.answer or "")
                models = {name: e.model for name, e in service.experts.items()}
                if event.error and not event.answer:
                    body = f"⚠️ **No model answered.** {error_markdown(event.error, models)}"
                elif event.error:
                    body += f"\n\n⚠️ {error_markdown(event.error, models)}"
                chat[-1] = {"role": "assistant", "content": f"{body}\n\n---\n{card}\n\n{answer_footer(event)}"}
                session.last = LastTurn(message, list(session.history), event, decision)
                if event.answer:
                    session.history = [*session.history, Message("user", message),
                                       Message("assistant", event.answer)][-MAX_HISTORY:]
                notice = _record(flywheel, message, decision, event, principal) or notice
                yield chat, "", gr.skip()
    except InvalidQueryError as e:
        chat[-1] = {"role": "assistant", "content": f"⚠️ {e}"}
        yield chat, "", gr.skip()
    if notice:
        gr.Info(plain(notice))


def _record(flywheel: Flywheel | None, message: str, decision: RouteDecision, done: Finished,
            principal: Principal) -> str:
    """Log the turn as a routing event; a storage failure is reported, never fatal to the chat."""
    if flywheel is None:
        return ""
    try:
        flywheel.record_turn(message, decision, done, user=principal.name)
    except StoreError as e:
        log.warning("Routing event not stored: %s", e)
        return f"⚠️ This turn was not logged: {e}"
    return ""


def correct_route(service: ChatService, flywheel: Flywheel | None, principal: Principal, session: ChatSession,
                  route: str | None) -> str:
    """ "Should have gone to <route>": for a labeler or admin, stored and used by the router from the
    next message on; for an anonymous visitor, used in their own session only (and kept for review)."""
    if session.last is None:
        return "Ask something first; then say where it should have gone."
    if not route:
        return "Pick the route it should have gone to."
    if route not in service.router.routes:
        return f"Unknown route '{route}'. Available: {', '.join(service.router.routes)}."
    decision = session.last.decision
    if decision.route == route:
        return f"This query already went to **{route}**; pick the route it should have gone to."
    if not principal.can_label:
        session.corrections = add_correction(session.corrections, service.session_correction(session.last.prompt, route))
        kept = ""
        if flywheel is not None:
            try:
                flywheel.correct(session.last.prompt, decision, route, user=principal.name, scope="session")
                kept = " It is kept for review: an admin can make it apply to everyone."
            except (StoreError, SameRouteError) as e:
                log.warning("Session correction not stored: %s", e)
        return (f"Saved for **this session only**: queries like this now go to **{route}** for you; other people's "
                f"routing is unchanged.{kept}")
    if flywheel is None:
        return "⚠️ Not saved: the preference store is not available (see the Data tab)."
    try:
        saved = flywheel.correct(session.last.prompt, decision, route, user=principal.name)
    except SameRouteError as e:
        return str(e)
    except StoreError as e:
        return f"⚠️ Not saved: {e}"
    rule = saved.learned.contested_rule if saved.learned else None
    if rule is not None:
        return (f"Correction #{saved.id} saved: the keyword rule {with_hover(rule, 40)} that sent this to "
                f"**{decision.route}** now lets the semantic tier re-check it and send it to **{route}** "
                "(undo in the Data tab).")
    return f"Correction #{saved.id} saved: queries like this now go to **{route}** (undo in the Data tab)."


def try_other(service: ChatService, session: ChatSession, limiter: RateLimiter | None = None,
              principal: Principal | None = None):
    """Ask the expert that did not answer the last turn; show both in the Compare tab to pick from.

    Yields (prompt, expert A, expert B, side A, side B, card, state, tabs): the dropdowns always name
    the experts whose answers the panels show, so a vote is stored against the right models.
    """
    last = session.last
    skip = [gr.skip()] * 8
    if last is None or last.done.expert is None:
        gr.Warning("Ask something that gets an answer first; then try the other expert.")  # the user is in Chat
        yield tuple(skip)
        return
    if limiter is not None and principal is not None and (wait := limiter.retry_after(principal.client)):
        gr.Warning(plain(wait_message(wait)))
        yield tuple(skip)
        return
    other = next((name for name in service.experts if name != last.done.expert), None)
    state = CompareState(last.prompt, last.history, {0: last.done}, last.decision, pair_id=new_pair(),
                         experts=(last.done.expert, other))
    card = routing_card(last.decision, last.done.model, last.done.expert)
    heading = (f"**From the chat**: {other} answers the same prompt beside {last.done.expert}'s answer; "
               "pick the better one below.  \nThe router sent it to:")
    gr.Info(f"Opened the Compare tab: {other} answers beside {last.done.expert}.")
    text = ""
    for event in service.ask(other, last.prompt, last.history):
        if isinstance(event, Token):
            text += event.text
        else:
            state.done[1] = event
        yield (last.prompt, last.done.expert, other, render(last.done, last.done.answer, "A"),
               render(state.done.get(1), text, "B"), f"{heading}\n\n{card}", state,
               gr.Tabs(selected="compare"))


def build_chat(service: ChatService, flywheel: Flywheel | None, accounts: Accounts, limiter: RateLimiter,
               concurrency: int = 16) -> dict:
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

    # Handlers are closures, not partials: Gradio injects gr.Request only into a plain function's hints.
    def on_message(message: str, history: list[dict], state: ChatSession, request: gr.Request):
        principal = caller(accounts, request, "chat")
        yield from respond(service, flywheel, principal, message, history, state, limiter)

    def on_correct(state: ChatSession, name: str | None, request: gr.Request) -> str:
        principal = caller(accounts, request, "correct routing")
        if wait := limiter.retry_after(principal.client):  # each correction embeds a query and writes a record
            return wait_message(wait)
        return correct_route(service, flywheel, principal, state, name)

    def on_try_other(state: ChatSession, request: gr.Request):
        yield from try_other(service, state, limiter, caller(accounts, request, "ask the other expert"))

    gr.on(
        [box.submit, send.click], on_message, [box, chatbot, session], [chatbot, box, last],
        api_name="chat", show_progress="hidden",
        # A slow or hung backend in one session must not queue the others behind it.
        concurrency_limit=concurrency,
    )
    fix.click(on_correct, [session, route], feedback, api_name="correct")
    gr.on([box.submit, send.click], None, None, feedback, js="() => ''")  # in the browser: the next turn clears it
    check = partial(status_line, service)
    refresh.click(check, None, status, api_visibility="private")
    return {"status": status, "check": check, "session": session, "try_other": other, "on_try_other": on_try_other,
            "feedback": feedback}
