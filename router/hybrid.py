"""HybridRouter: the L1 keyword tier, then the L2 semantic tier, then the default route."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from time import perf_counter_ns
from typing import Any

from router.conversation import ConversationPolicy, Thread, user_turns
from router.errors import ConfigError
from router.protocols import LearnsExamples, RankingStrategy, RoutingStrategy
from router.schema import Learned, Route, RouteDecision, TierTimings
from router.text import clean_query


UNSURE = ("default", "expert")  # where a query goes when L2 is unsure: default_route, or the likeliest expert


def likeliest_expert(scores: Iterable[tuple[str, float]], expert_of: Mapping[str, str]) -> tuple[str, float, str]:
    """The expert holding the most of the routes' probability, that share, and its best route.

    >>> likeliest_expert([("chitchat", 0.35), ("code", 0.3), ("math", 0.25), ("knowledge", 0.1)],
    ...                  {"chitchat": "zoomer", "knowledge": "zoomer", "code": "professor", "math": "professor"})
    ('professor', 0.55, 'code')
    """
    scores = list(scores)
    mass: Counter = Counter()
    for route, p in scores:
        mass[expert_of[route]] += p
    expert, share = mass.most_common(1)[0]
    return expert, share, max((r for r, _ in scores if expert_of[r] == expert), key=dict(scores).__getitem__)


class HybridRouter:
    """Compose the tiers: the first tier with a confident answer decides; else the default route.

    Either tier may be None (keyword-only or semantic-only routers). Every decision carries the
    time each tier took.
    A keyword rule that users have corrected (`contest`) no longer decides alone: when it fires, L2
    ranks the query too, and if L2 confidently picks a route the corrections named, L2 decides.
    Uncorrected rules keep the microsecond path. Corrections come in through `learn` and go out
    through `unlearn`, the one place that updates both the L2 examples and the contested rules.
    Where L2 is unsure (under its threshold), `unsure` says where the query goes: "default", the
    default route; or "expert", the expert that holds the most of L2's probability, on its best
    route (only for an L2 whose scores are probabilities; `crossval` shows the trade-off). Without
    an L2 tier nothing is unsure: what L1 leaves goes to the default route.
    With a `conversation` policy, `route(query, history)` lets a follow-up keep its conversation's
    route (router.conversation); without history every query routes alone.
    """

    _THREADS_KEPT = 1024  # conversations whose route is remembered, so a chat turn routes its history once

    def __init__(
        self,
        routes: Sequence[Route],
        default_route: str,
        keyword: RoutingStrategy | None = None,
        semantic: RankingStrategy | None = None,
        conversation: ConversationPolicy | None = None,
        unsure: str = "default",
    ) -> None:
        self.routes = {r.name: r for r in routes}
        self._expert_of = {r.name: r.expert for r in routes}
        if default_route not in self.routes:
            raise ConfigError(
                f"router.default_route '{default_route}' is not a route. Available: {', '.join(self.routes)}"
            )
        self.default_route = default_route
        if unsure not in UNSURE:
            raise ConfigError(f"router.unsure must be one of {', '.join(UNSURE)}, not {unsure!r}.")
        if unsure == "expert" and semantic is not None and not getattr(semantic, "scores_are_probabilities", False):
            raise ConfigError("router.unsure=expert needs an L2 whose scores are probabilities (router=trained); "
                              "use router.unsure=default with this router.")
        self.unsure = unsure
        self.keyword, self.semantic = keyword, semantic
        # L1 pattern -> routes users said its decisions should have gone to (with counts); replaced
        # whole on every change, so routing threads never see it half-updated.
        self._contested: dict[str, Counter] = {}
        self.conversation = conversation
        self._threads: dict[bytes, Thread] = {}  # digest of earlier user turns -> where they left the conversation
        self._threads_lock = threading.Lock()

    def learn(self, pairs: Sequence[tuple[str, str]]) -> list[Learned]:
        """Corrections ("this query belongs on that route"), in effect from the next query on.

        Each query becomes an L2 example of its route (one encoder call for all of them), and the L1
        rule that decides it for another route, if any, is contested.
        """
        for _, route in pairs:
            if route not in self.routes:
                raise ConfigError(f"Unknown route '{route}'. Available: {', '.join(self.routes)}")
        examples = isinstance(self.semantic, LearnsExamples)
        if examples and pairs:
            self.semantic.add_utterances(list(pairs))  # type: ignore[union-attr]
        self._forget_threads()
        learned = []
        for query, route in pairs:
            rule = self._rule_against(query, route)
            if rule is not None:
                self.contest(rule, route)
            learned.append(Learned(query, route, examples, rule))
        return learned

    def unlearn(self, query: str, route: str) -> Learned | None:
        """Take one `learn` back; None when the router holds no such correction."""
        removed = isinstance(self.semantic, LearnsExamples) and self.semantic.remove_utterance(query, route)
        rule = self._rule_against(query, route)
        uncontested = rule is not None and self.uncontest(rule, route)
        self._forget_threads()
        if not removed and not uncontested:
            return None
        return Learned(query, route, bool(removed), rule if uncontested else None)

    def _rule_against(self, query: str, route: str) -> str | None:
        """The L1 pattern that sends `query` to a route other than `route`, if one fires."""
        if self.keyword is None or not query.strip():
            return None
        decision = self.keyword.route(clean_query(query))
        if decision is None or decision.rule is None or decision.route == route:
            return None
        return decision.rule.pattern

    def contest(self, pattern: str, right_route: str) -> None:
        """Record that a decision of the L1 rule `pattern` should have gone to `right_route`."""
        if right_route not in self.routes:
            raise ConfigError(f"Unknown route '{right_route}'. Available: {', '.join(self.routes)}")
        contested = {p: Counter(c) for p, c in self._contested.items()}
        contested.setdefault(pattern, Counter())[right_route] += 1
        self._contested = contested
        self._forget_threads()

    def uncontest(self, pattern: str, right_route: str) -> bool:
        """Take one `contest` back (a correction undone); False if there was none to take back."""
        if self._contested.get(pattern, Counter())[right_route] <= 0:
            return False
        contested = {p: Counter(c) for p, c in self._contested.items()}
        contested[pattern][right_route] -= 1
        contested[pattern] = +contested[pattern]  # drop routes at zero
        self._contested = {p: c for p, c in contested.items() if c}
        self._forget_threads()
        return True

    @property
    def contested_rules(self) -> dict[str, dict[str, int]]:
        """Corrected L1 patterns and the routes the corrections named, with counts."""
        return {p: dict(c) for p, c in self._contested.items()}

    def route(self, query: str, history: Sequence[Any] = ()) -> RouteDecision:
        """Route one query, as a turn of the conversation `history` (Message objects or {role, content} dicts).

        Raises InvalidQueryError for an empty query. Without history, or with router.conversation
        disabled, the query routes alone.
        """
        policy = self.conversation
        turns = user_turns(history, policy.max_turns) if history and policy is not None and policy.enabled else []
        if not turns:
            return self._route_one(query)
        start = perf_counter_ns()
        query = clean_query(query)
        thread = self._thread(tuple(turns))
        decision = self._follow(query, thread, turns)
        total = (perf_counter_ns() - start) / 1000
        return dataclasses.replace(decision, timings=dataclasses.replace(decision.timings, total_us=total))

    def _follow(self, query: str, thread: Thread, turns: Sequence[str]) -> RouteDecision:
        """A turn of a conversation. The conversation policy judges from where each message would go on its
        own if L2 always decided; an unsure message that starts a new topic then goes where `unsure` says,
        as it would alone (one that the conversation backs stays on the conversation's route)."""
        policy = self.conversation
        assert policy is not None
        if self.unsure == "default":  # the default route tells the policy "unsure" by itself
            return policy.follow(query, self._route_one(query), thread, turns, self._route_one)
        view, settled = self._route_views(query)
        decision = policy.follow(query, view, thread, turns, lambda text: self._route_views(text)[0])
        alone = decision.conversation is None or decision.conversation.kind == "new topic"
        if alone and settled is not view and (decision.route, decision.tier) == (view.route, view.tier):
            decision = dataclasses.replace(settled, context=decision.context, conversation=decision.conversation)
        return decision

    def _thread(self, turns: tuple[str, ...]) -> Thread:
        """Where the user turns `turns` left the conversation: each turn routed after the ones before it."""
        key = hashlib.blake2b("\x1e".join(turns).encode("utf-8", "replace"), digest_size=16).digest()
        with self._threads_lock:
            known = self._threads.get(key)
        if known is not None:
            return known
        policy = self.conversation
        assert policy is not None
        if len(turns) == 1:
            thread = policy.next_thread(None, turns[0], self._route_one(turns[0]), 1)
        else:
            before = self._thread(turns[:-1])
            decision = self._follow(clean_query(turns[-1]), before, turns[:-1])
            thread = policy.next_thread(before, turns[-1], decision, len(turns))
        with self._threads_lock:
            if len(self._threads) >= self._THREADS_KEPT:
                self._threads.clear()
            self._threads[key] = thread
        return thread

    def _forget_threads(self) -> None:
        """Corrections change routing, so the remembered conversations are routed again."""
        with self._threads_lock:
            self._threads = {}

    def _route_one(self, query: str) -> RouteDecision:
        """Route one query alone."""
        return self._route_views(query)[1]

    def _route_views(self, query: str) -> tuple[RouteDecision, RouteDecision]:
        """Where one query would go alone if L2 always decided, and where it goes: the same decision
        unless L2 is unsure."""
        start = perf_counter_ns()
        query = clean_query(query)
        l1_us = l2_us = None
        if self.keyword is not None:
            t = perf_counter_ns()
            decision = self.keyword.route(query)
            l1_us = (perf_counter_ns() - t) / 1000
            if decision is not None:
                if self._contested and decision.rule is not None and decision.rule.pattern in self._contested:
                    decision = self._recheck(query, decision, start, l1_us)
                else:
                    decision = self._timed(decision, start, l1_us, None)
                return decision, decision
        ranking = None
        if self.semantic is not None:
            t = perf_counter_ns()
            ranking = self.semantic.rank(query)
            l2_us = (perf_counter_ns() - t) / 1000
            if self.semantic.accepts(ranking):
                decision = self._timed(self.semantic.decide(ranking), start, l1_us, l2_us)
                return decision, decision
        decision = RouteDecision(
            route=self.default_route,
            expert=self.routes[self.default_route].expert,
            tier="default",
            score=0.0,
            margin=0.0,
            reason="no keyword rule fired" + (" and no route was similar enough" if self.semantic else ""),
        )
        if ranking is None:
            decision = self._timed(decision, start, l1_us, l2_us)
            return decision, decision
        l2 = self.semantic.decide(ranking)
        decision = dataclasses.replace(decision, score=l2.score, margin=l2.margin, top_routes=l2.top_routes,
                                       scale=l2.scale, reason=self._unsure_reason(l2))
        if self.unsure == "expert":  # an unsure query goes to the expert with the most probability
            expert, share, route = likeliest_expert(((s.route, s.score) for s in ranking.scores), self._expert_of)
            decision = dataclasses.replace(decision, route=route, expert=expert, reason=(
                f"{decision.reason}; so it goes to the expert holding the most probability, '{expert}' "
                f"({share:.2f}), on its best route '{route}'"))
        return self._timed(l2, start, l1_us, l2_us), self._timed(decision, start, l1_us, l2_us)

    def _unsure_reason(self, l2: RouteDecision) -> str:
        """Why L2 did not decide, naming the route that scored highest (a head may rank another first)."""
        top = max(l2.top_routes, key=lambda s: s.score) if l2.top_routes else None
        reason = "no keyword rule fired; "
        if top is not None and top.route != l2.route:
            reason += f"the highest score was '{top.route}' at {top.score:.3f}, and L2's pick '{l2.route}' scored "
        else:
            reason += f"the highest score was '{l2.route}' at "
        return reason + f"{l2.score:.3f} with margin {l2.margin:.3f}" + self._needs(l2.route)

    def _needs(self, route: str) -> str:
        """What L2 needed to decide, where the strategy says (similarity strategies have thresholds)."""
        threshold_for, margin = getattr(self.semantic, "threshold_for", None), getattr(self.semantic, "margin", None)
        if threshold_for is None or margin is None:
            return ", under what L2 needs to decide"
        return f" (needs >= {threshold_for(route)} and >= {margin})"

    def _recheck(self, query: str, l1: RouteDecision, start: int, l1_us: float) -> RouteDecision:
        """A corrected rule fired: L2 decides if it confidently picks a route the corrections named."""
        if self.semantic is None:
            return self._timed(l1, start, l1_us, None)
        t = perf_counter_ns()
        ranking = self.semantic.rank(query)
        l2_us = (perf_counter_ns() - t) / 1000
        named = self._contested.get(l1.rule.pattern, Counter())
        best = ranking.best.route
        if best != l1.route and named[best] > 0 and self.semantic.accepts(ranking):
            l2 = self.semantic.decide(ranking)
            reason = (f"keyword rule of route '{l1.route}' fired, but users corrected it to '{best}' "
                      f"{named[best]} time(s) and L2 agrees: {l2.reason}")
            return self._timed(dataclasses.replace(l2, rule=l1.rule, reason=reason), start, l1_us, l2_us)
        return self._timed(dataclasses.replace(l1, reason=l1.reason + f"; L2 re-checked (corrected rule) "
                                                                   f"and did not pick {', '.join(named)}"),
                           start, l1_us, l2_us)

    @staticmethod
    def _timed(decision: RouteDecision, start: int, l1_us: float | None, l2_us: float | None) -> RouteDecision:
        total = (perf_counter_ns() - start) / 1000
        return dataclasses.replace(decision, timings=TierTimings(l1_us=l1_us, l2_us=l2_us, total_us=total))
