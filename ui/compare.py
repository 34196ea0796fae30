"""The Compare tab: two experts answer the same prompt side by side; the user marks the better one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import gradio as gr

from forensics.feedback import Flywheel
from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService, Finished, Routed, Token
from router.session import SessionCorrection
from ui.auth import Accounts, Principal, caller
from ui.card import answer_footer, routing_card, safe_markdown
from ui.limits import RateLimiter, wait_message

VOTES = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both bad"}


@dataclass
class CompareState:
    """The pair on screen, waiting for a verdict."""

    prompt: str = ""
    history: list[Message] = field(default_factory=list)
    done: dict[int, Finished] = field(default_factory=dict)
    decision: RouteDecision | None = None
    pair_id: str = ""  # one vote per pair per user: a second vote on the same pair replaces the first
    experts: tuple[str, str] | None = None  # the experts named in the dropdowns for this pair


def new_pair() -> str:
    """A fresh id for a pair of answers on screen."""
    return uuid.uuid4().hex


def render(done: Finished | None, text: str, label: str) -> str:
    """One side of the comparison as Markdown."""
    if done is None:
        return f"**{label}**\n\n{safe_markdown(text) or '…'}"
    body = safe_markdown(done.answer or "")
    if done.error:
        body += f"\n\n⚠️ {done.error}"
    return f"**{label}** · {done.expert} (`{done.model}`)\n\n{body}\n\n---\n{answer_footer(done)}"


def compare(service: ChatService, prompt: str, a: str, b: str, state: CompareState,
            session: tuple[SessionCorrection, ...] = (), limiter: RateLimiter | None = None,
            principal: Principal | None = None):
    """Stream both experts' answers; yields (side A, side B, routing card, state)."""
    if not prompt or not prompt.strip():
        yield gr.skip(), gr.skip(), "Type a prompt to compare.", state
        return
    if limiter is not None and principal is not None and (wait := limiter.retry_after(principal.client)):
        yield gr.skip(), gr.skip(), wait_message(wait), state
        return
    state = CompareState(prompt=prompt, pair_id=new_pair(), experts=(a, b))
    texts, card = ["", ""], ""
    try:
        for side, event in service.compare(prompt, (a, b), session=session):
            if isinstance(event, Routed):
                state.decision = event.decision
                card = routing_card(event.decision, event.model)
            elif isinstance(event, Token):
                texts[side] += event.text
            elif isinstance(event, Finished):
                state.done[side] = event
            yield (render(state.done.get(0), texts[0], "A"), render(state.done.get(1), texts[1], "B"),
                   f"The router would send this to:\n\n{card}", state)
    except (InvalidQueryError, ValueError) as e:
        yield gr.skip(), gr.skip(), f"⚠️ {e}", state


def vote(flywheel: Flywheel | None, principal: Principal, verdict: str, state: CompareState) -> str:
    """Store the verdict on the pair on screen (one handler for all four buttons); a second vote replaces the first."""
    if verdict not in VOTES:
        return f"Unknown verdict '{verdict}'. Available: {', '.join(VOTES)}."
    if len(state.done) < 2:
        return "Compare two answers first, then pick."
    if flywheel is None:
        return "⚠️ Preferences cannot be saved: the preference store is not available (see the Data tab)."
    try:
        saved = flywheel.record_preference(state.prompt, state.history, state.done[0], state.done[1], verdict,
                                           state.decision, user=principal.name, pair_id=state.pair_id or None)
    except StoreError as e:
        return f"⚠️ Not saved: {e}"
    a, b = state.done[0].expert, state.done[1].expert
    if saved.replaced:
        return f"Changed your vote on this pair (#{saved.id}) to {VOTES[verdict]} (A = {a}, B = {b})."
    return f"Saved preference #{saved.id}: {VOTES[verdict]} (A = {a}, B = {b})."


def cleared(state: CompareState):
    """An expert was changed after a comparison: the answers on screen no longer match the dropdowns."""
    if not state.done:
        return gr.skip(), gr.skip(), state
    return "**A**\n\nPress Compare for this pair.", "**B**\n\nPress Compare for this pair.", CompareState()


def build_compare(service: ChatService, flywheel: Flywheel | None, accounts: Accounts, limiter: RateLimiter,
                  chat_session: gr.State) -> dict:
    """Lay out the Compare tab; returns the components the Chat tab fills for "try the other expert".

    `chat_session` is the Chat tab's state: a visitor's session corrections route here too.
    """
    names = list(service.experts)
    prompt = gr.Textbox(lines=3, label="Prompt", elem_id="compare-prompt")
    with gr.Row():
        a = gr.Dropdown(names, value=names[0], label="Expert A", elem_id="compare-a")
        b = gr.Dropdown(names, value=names[-1], label="Expert B", elem_id="compare-b")
        run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    card = gr.Markdown(elem_id="compare-card")
    with gr.Row():
        side_a = gr.Markdown("**A**", elem_id="compare-side-a", container=True)
        side_b = gr.Markdown("**B**", elem_id="compare-side-b", container=True)
    with gr.Row():
        buttons = {v: gr.Button(label, elem_id=f"vote-{v}") for v, label in VOTES.items()}
    saved = gr.Markdown(elem_id="compare-saved")
    state = gr.State(CompareState())

    def on_compare(text: str, left: str, right: str, pair: CompareState, chat, request: gr.Request):
        principal = caller(accounts, request, "compare experts")
        yield from compare(service, text, left, right, pair, chat.corrections, limiter, principal)

    def vote_for(verdict: str):
        def on_vote(pair: CompareState, request: gr.Request) -> str:
            return vote(flywheel, caller(accounts, request, "vote"), verdict, pair)
        return on_vote

    run.click(on_compare, [prompt, a, b, state, chat_session], [side_a, side_b, card, state], api_name="compare",
              concurrency_limit=16)
    for verdict, button in buttons.items():
        button.click(vote_for(verdict), state, saved, api_name=f"vote_{verdict}")
    for dropdown in (a, b):  # .input: only a user's change, not try_other filling the dropdowns
        dropdown.input(cleared, state, [side_a, side_b, state], api_visibility="private")
    return {"prompt": prompt, "a": a, "b": b, "side_a": side_a, "side_b": side_b, "card": card, "state": state}
