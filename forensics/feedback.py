"""The flywheel's write side: chat turns, preferences and routing corrections, stored and applied.

The UI and the `feedback` benchmark both go through `Flywheel`, so what is measured is what users get.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict

from forensics.preference_records import VERDICTS, Correction, Preference, RoutingEvent
from forensics.preference_store import PreferenceStore
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.schema import Message, RouteDecision
from router.service import Finished

log = logging.getLogger(__name__)

def outcome_of(done: Finished) -> str:
    """answered | incomplete | failed | refused, for a finished turn.

    >>> outcome_of(Finished("hi", "zoomer", "tinyllama"))
    'answered'
    """
    if done.incomplete:
        return "incomplete"
    if done.error and done.expert is None:
        return "failed"
    if done.error and not done.answer:
        return "refused" if "max_prompt_chars" in done.error else "failed"
    return "answered"


class Flywheel:
    """Stores what users say about answers, and feeds routing corrections to the live L2 index."""

    def __init__(self, store: PreferenceStore, router: HybridRouter, app_version: str = "") -> None:
        self.store, self.router, self.app_version = store, router, app_version

    def restore(self) -> int:
        """Put the stored, not undone, corrections back into the L2 index (at start-up)."""
        corrections = self.store.corrections()
        semantic = self.router.semantic
        known = set(self.router.routes)
        kept = [c for c in corrections if c.right_route in known]
        if semantic is not None and kept:
            semantic.add_utterances([(c.query, c.right_route) for c in kept])
        for c in kept:
            if (pattern := overruled_rule(c.decision, c.right_route)) is not None:
                self.router.contest(pattern, c.right_route)
        return len(kept)

    def record_turn(self, query: str, decision: RouteDecision, done: Finished) -> int:
        """One routed chat turn: decision, tier, scores, timings, expert, model and outcome."""
        stats = done.stats
        return self.store.add_routing_event(RoutingEvent(
            id=None, query=query, route=decision.route, expert=done.expert or decision.expert,
            model=done.model, tier=decision.tier, score=decision.score, margin=decision.margin,
            router_us=decision.timings.total_us, ttft_ms=stats.ttft_ms if stats else None,
            total_ms=done.total_ms, outcome=outcome_of(done), error=done.error, created_at=None,
            app_version=self.app_version,
        ))

    def record_preference(
        self, prompt: str, history: Sequence[Message], a: Finished, b: Finished, verdict: str,
        decision: RouteDecision | None = None,
    ) -> int:
        """Which of two answers to the same prompt was better (a, b, tie or both_bad)."""
        if verdict not in VERDICTS:
            raise ConfigError(f"Unknown verdict '{verdict}'. Available: {', '.join(VERDICTS)}")
        return self.store.add_preference(Preference(
            id=None, prompt=prompt, history=tuple({"role": m.role, "content": m.content} for m in history),
            answer_a=a.answer, answer_b=b.answer, expert_a=a.expert or "", model_a=a.model or "",
            expert_b=b.expert or "", model_b=b.model or "", verdict=verdict,
            route=decision.route if decision else None, decision=decision.to_dict() if decision else None,
            timings={"a": _timing(a), "b": _timing(b)}, created_at=None, app_version=self.app_version,
        ))

    def correct(self, query: str, decision: RouteDecision | None, right_route: str) -> int:
        """"This should have gone to `right_route`": stored, and added to the L2 index at once."""
        if right_route not in self.router.routes:
            raise ConfigError(f"Unknown route '{right_route}'. Available: {', '.join(self.router.routes)}")
        recorded = decision.to_dict() if decision else None
        correction_id = self.store.add_correction(Correction(
            id=None, query=query, wrong_route=decision.route if decision else None, right_route=right_route,
            decision=recorded, created_at=None, undone_at=None, app_version=self.app_version,
        ))
        if self.router.semantic is not None:
            self.router.semantic.add_utterances([(query, right_route)])
        if (pattern := overruled_rule(recorded, right_route)) is not None:
            self.router.contest(pattern, right_route)
        return correction_id

    def undo(self, correction_id: int) -> bool:
        """Take a correction back: marked undone in the store and removed from the L2 index."""
        match = [c for c in self.store.corrections() if c.id == correction_id]
        if not match or not self.store.undo_correction(correction_id):
            return False
        if self.router.semantic is not None:
            self.router.semantic.remove_utterance(match[0].query, match[0].right_route)
        if (pattern := overruled_rule(match[0].decision, match[0].right_route)) is not None:
            self.router.uncontest(pattern, match[0].right_route)
        return True


def overruled_rule(decision: dict | None, right_route: str) -> str | None:
    """The L1 pattern a correction overrules: the rule decided (tier L1) and the user named another route.

    >>> overruled_rule({"tier": "L1", "route": "code", "rule": {"pattern": "python"}}, "creative")
    'python'
    >>> overruled_rule({"tier": "L2", "route": "code", "rule": None}, "creative") is None
    True
    """
    if not decision or decision.get("tier") != "L1" or decision.get("route") == right_route:
        return None
    return (decision.get("rule") or {}).get("pattern")


def _timing(done: Finished) -> dict:
    stats = asdict(done.stats) if done.stats else {}
    return {"total_ms": done.total_ms, "router_ms": done.router_ms, **stats}
