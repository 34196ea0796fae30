"""The Compare tab: two experts answer the same prompt side by side; the user marks the better one."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import gradio as gr

from forensics.feedback import Flywheel
from forensics.preference_store import StoreError
from router.errors import InvalidQueryError
from router.schema import Message, RouteDecision
from router.service import ChatService, Finished, Routed, Token
from ui.card import answer_footer, routing_card

VOTES = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both bad"}


@dataclass
class CompareState:
    """The pair on screen, waiting for a verdict."""

    prompt: str = ""
    history: list[Message] = field(default_factory=list)
    done: dict[int, Finished] = field(default_factory=dict)
    decision: RouteDecision | None = None


def render(done: Finished | None, text: str, label: str) -> str:
    """One side of the comparison as Markdown."""
    if done is None:
        return f"**{label}**\n\n{text or '…'}"
    body = done.answer or ""
    if done.error:
        body += f"\n\n⚠️ {done.error}"
    return f"**{label}** · {done.expert} (`{done.model}`)\n\n{body}\n\n---\n{answer_footer(done)}"


def compare(service: ChatService, prompt: str, a: str, b: str, state: CompareState):
    """Stream both experts' answers; yields (side A, side B, routing card, state)."""
    if not prompt or not prompt.strip():
        yield gr.skip(), gr.skip(), "Type a prompt to compare.", state
        return
    state = CompareState(prompt=prompt)
    texts, card = ["", ""], ""
    try:
        for side, event in service.compare(prompt, (a, b)):
            if isinstance(event, Routed):
                state.decision = event.decision
                card = routing_card(event.decision, event.model)
            elif isinstance(event, Token):
                texts[side] += event.text
            elif isinstance(event, Finished):
                state.done[side] = event
            yield (render(state.done.get(0), texts[0], "A"), render(state.done.get(1), texts[1], "B"),
                   f"The router would send this to:  \n{card}", state)
    except (InvalidQueryError, ValueError) as e:
        yield gr.skip(), gr.skip(), f"⚠️ {e}", state


def vote(flywheel: Flywheel | None, verdict: str, state: CompareState) -> str:
    """Store the verdict on the pair on screen (one handler for all four buttons)."""
    if len(state.done) < 2:
        return "Compare two answers first, then pick."
    if flywheel is None:
        return "⚠️ Preferences cannot be saved: the preference store is not available (see the Data tab)."
    try:
        record = flywheel.record_preference(state.prompt, state.history, state.done[0], state.done[1], verdict,
                                            state.decision)
    except StoreError as e:
        return f"⚠️ Not saved: {e}"
    return f"Saved preference #{record}: {VOTES[verdict]}."


def build_compare(service: ChatService, flywheel: Flywheel | None) -> dict:
    """Lay out the Compare tab; returns the components the Chat tab fills for "try the other expert"."""
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
    run.click(partial(compare, service), [prompt, a, b, state], [side_a, side_b, card, state], api_name="compare",
              concurrency_limit=16)
    for verdict, button in buttons.items():
        button.click(partial(vote, flywheel, verdict), state, saved, api_name=f"vote_{verdict}")
    return {"prompt": prompt, "a": a, "b": b, "side_a": side_a, "side_b": side_b, "card": card, "state": state}
