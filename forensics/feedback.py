"""The flywheel's write side: chat turns, preferences and routing corrections, stored and applied.

The UI and the `feedback` benchmark both go through `Flywheel`, so what is measured is what users get.
Every record names the user who made it. A visitor's correction is stored with scope 'session': the UI
applies it to that visitor's session only, and the router sees it once an admin promotes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from forensics.preference_records import SCOPES, VERDICTS, Correction, Preference, RoutingEvent
from forensics.preference_store import PreferenceStore
from router.errors import ConfigError
from router.hybrid import HybridRouter
from router.schema import Learned, Message, RouteDecision
from router.service import Finished

__all__ = ["Corrected", "Flywheel", "SameRouteError", "Saved", "outcome_of", "overruled_rule"]

log = logging.getLogger(__name__)


class SameRouteError(ConfigError):
    """A correction named the route the query already went to, so it would teach the router nothing."""


@dataclass(frozen=True, slots=True)
class Corrected:
    """A stored correction: its id, and what the router learned from it (None: stored only, a visitor's)."""

    id: int
    learned: Learned | None = None


@dataclass(frozen=True, slots=True)
class Saved:
    """A stored vote: its id, and whether it replaced this user's earlier vote on the same pair."""

    id: int
    replaced: bool


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
        # correction id -> (the correction, what the router learned from it): what this process has applied,
        # so a correction that both this process and `sync` see is applied once and taken back once.
        self._applied: dict[int, tuple[Correction, Learned]] = {}
        self._lock = threading.RLock()

    def restore(self) -> int:
        """Put the stored, active, global corrections back into the router (at start-up); returns how many."""
        return len(self._apply(self.store.corrections(scope="global")))

    def sync(self) -> int:
        """Make the router hold exactly the store's active global corrections; returns how many changed.

        Other replicas sharing the store add, undo and promote corrections; this applies theirs the way
        a local correction is applied (`HybridRouter.learn` / `unlearn`). The store is read under the
        lock, so a local correction or undo running at the same time is never applied or taken back twice.
        """
        with self._lock:
            active = {c.id: c for c in self.store.corrections(scope="global")}
            gone = [c for i, (c, _) in self._applied.items() if i not in active]
            for correction in gone:
                self._unapply(correction)
            new = [c for i, c in active.items() if i not in self._applied]
            self._apply(new[::-1])  # oldest first, as they were made
        return len(gone) + len(new)

    def record_turn(self, query: str, decision: RouteDecision, done: Finished, *, user: str = "") -> int:
        """One routed chat turn: decision, tier, scores, timings, expert, model and outcome."""
        stats = done.stats
        return self.store.add_routing_event(RoutingEvent(
            id=None, query=query, route=decision.route, expert=done.expert or decision.expert,
            model=done.model, tier=decision.tier, score=decision.score, margin=decision.margin,
            router_us=decision.timings.total_us, ttft_ms=stats.ttft_ms if stats else None,
            total_ms=done.total_ms, outcome=outcome_of(done), error=done.error, created_at=None,
            app_version=self.app_version, user=user,
        ))

    def record_route(self, query: str, decision: RouteDecision, *, user: str = "") -> int:
        """One routing decision with no answer behind it (POST /v1/route): outcome 'routed'."""
        return self.store.add_routing_event(RoutingEvent(
            id=None, query=query, route=decision.route, expert=decision.expert, model=None, tier=decision.tier,
            score=decision.score, margin=decision.margin, router_us=decision.timings.total_us, outcome="routed",
            created_at=None, app_version=self.app_version, user=user,
        ))

    def record_preference(
        self, prompt: str, history: Sequence[Message], a: Finished, b: Finished, verdict: str,
        decision: RouteDecision | None = None, *, user: str = "", pair_id: str | None = None,
    ) -> Saved:
        """Which of two answers to the same prompt was better (a, b, tie or both_bad).

        With a `pair_id`, a user's second vote on the same pair replaces the first.
        """
        if verdict not in VERDICTS:
            raise ConfigError(f"Unknown verdict '{verdict}'. Available: {', '.join(VERDICTS)}")
        # Read before the write: two simultaneous votes of one user on one pair may both report
        # replaced=False, but the store still keeps exactly one of them.
        earlier = None if pair_id is None else self.store.preference_for_pair(pair_id, user)
        record_id = self.store.add_preference(Preference(
            id=None, prompt=prompt, history=tuple({"role": m.role, "content": m.content} for m in history),
            answer_a=a.answer, answer_b=b.answer, expert_a=a.expert or "", model_a=a.model or "",
            expert_b=b.expert or "", model_b=b.model or "", verdict=verdict,
            route=decision.route if decision else None, decision=decision.to_dict() if decision else None,
            timings={"a": _timing(a), "b": _timing(b)}, created_at=None, app_version=self.app_version,
            user=user, pair_id=pair_id,
        ))
        return Saved(record_id, replaced=earlier is not None)

    def correct(self, query: str, decision: RouteDecision | None, right_route: str, *, user: str = "",
                scope: str = "global") -> Corrected:
        """"This should have gone to `right_route`": stored, and for a global correction applied at once.

        A 'session' correction (a visitor's) is stored but left out of the router: the UI applies it
        to the visitor's session, and `promote` makes it global.
        """
        if right_route not in self.router.routes:
            raise ConfigError(f"Unknown route '{right_route}'. Available: {', '.join(self.router.routes)}")
        if scope not in SCOPES:
            raise ConfigError(f"Unknown scope '{scope}'. Available: {', '.join(SCOPES)}")
        if decision is not None and decision.route == right_route:
            raise SameRouteError(f"The query already went to '{right_route}'; a correction must name another route.")
        correction_id = self.store.add_correction(Correction(
            id=None, query=query, wrong_route=decision.route if decision else None, right_route=right_route,
            decision=decision.to_dict() if decision else None, created_at=None, undone_at=None,
            app_version=self.app_version, user=user, scope=scope,  # type: ignore[arg-type]
        ))
        if scope != "global":
            return Corrected(correction_id)
        # The stored text (cleaned, clipped) is what restore and undo see, so the router gets that too.
        [learned] = self._apply([self.store.correction(correction_id)])  # type: ignore[list-item]
        return Corrected(correction_id, learned)

    def promote(self, correction_id: int) -> bool:
        """Make a visitor's session correction global (an admin's call) and apply it to the router at once."""
        if not self.store.promote_correction(correction_id):
            return False
        self._apply([self.store.correction(correction_id)])  # type: ignore[list-item]
        return True

    def undo(self, correction_id: int, *, user: str | None = None) -> bool:
        """Take a correction back: marked undone in the store and, if it was global, taken out of the router.

        With `user`, only a correction that user made; False when there is no such active correction.
        """
        if not self.store.undo_correction(correction_id, user=user):
            return False
        # Read after the undo: an undone correction can no longer be promoted, so its scope is final.
        undone = self.store.correction(correction_id)
        if undone is not None and undone.scope == "global":  # a session correction never reached the router
            self._unapply(undone)
        return True

    def _apply(self, corrections: Sequence[Correction]) -> list[Learned]:
        """Teach the router the corrections; those to routes it does not have (the config changed) are skipped.

        A correction already applied (by `sync`, or before) is not taught again; its earlier Learned is returned.
        """
        usable = [c for c in corrections if c.right_route in self.router.routes]
        with self._lock:
            new = [c for c in usable if c.id not in self._applied]
            for c, learned in zip(new, self.router.learn([(c.query, c.right_route) for c in new])):
                self._applied[c.id] = (c, learned)  # type: ignore[index]
            return [self._applied[c.id][1] for c in usable]  # type: ignore[index]

    def _unapply(self, correction: Correction) -> None:
        """Take one applied correction back out of the router (nothing if it is not applied)."""
        with self._lock:
            if self._applied.pop(correction.id, None) is not None:  # type: ignore[arg-type]
                self.router.unlearn(correction.query, correction.right_route)


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
