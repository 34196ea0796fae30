"""HybridRouter: the L1 keyword tier, then the L2 semantic tier, then the default route."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from time import perf_counter_ns

from router.errors import ConfigError
from router.protocols import RoutingStrategy
from router.schema import Route, RouteDecision, TierTimings
from router.strategies.semantic import SemanticRoutingStrategy
from router.text import clean_query


class HybridRouter:
    """Compose the tiers: the first tier with a confident answer decides; else the default route.

    Either tier may be None (keyword-only or semantic-only routers). Every decision carries the
    time each tier took.
    A keyword rule that users have corrected (`contest`) no longer decides alone: when it fires, L2
    ranks the query too, and if L2 confidently picks a route the corrections named, L2 decides.
    Uncorrected rules keep the microsecond path.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        default_route: str,
        keyword: RoutingStrategy | None = None,
        semantic: SemanticRoutingStrategy | None = None,
    ) -> None:
        self.routes = {r.name: r for r in routes}
        if default_route not in self.routes:
            raise ConfigError(
                f"router.default_route '{default_route}' is not a route. Available: {', '.join(self.routes)}"
            )
        self.default_route = default_route
        self.keyword, self.semantic = keyword, semantic
        # L1 pattern -> routes users said its decisions should have gone to (with counts); replaced
        # whole on every change, so routing threads never see it half-updated.
        self._contested: dict[str, Counter] = {}

    def contest(self, pattern: str, right_route: str) -> None:
        """Record that a decision of the L1 rule `pattern` should have gone to `right_route`."""
        if right_route not in self.routes:
            raise ConfigError(f"Unknown route '{right_route}'. Available: {', '.join(self.routes)}")
        contested = {p: Counter(c) for p, c in self._contested.items()}
        contested.setdefault(pattern, Counter())[right_route] += 1
        self._contested = contested

    def uncontest(self, pattern: str, right_route: str) -> bool:
        """Take one `contest` back (a correction undone); False if there was none to take back."""
        if self._contested.get(pattern, Counter())[right_route] <= 0:
            return False
        contested = {p: Counter(c) for p, c in self._contested.items()}
        contested[pattern][right_route] -= 1
        contested[pattern] = +contested[pattern]  # drop routes at zero
        self._contested = {p: c for p, c in contested.items() if c}
        return True

    @property
    def contested_rules(self) -> dict[str, dict[str, int]]:
        """Corrected L1 patterns and the routes the corrections named, with counts."""
        return {p: dict(c) for p, c in self._contested.items()}

    def route(self, query: str) -> RouteDecision:
        """Route one query; raises InvalidQueryError for an empty one."""
        start = perf_counter_ns()
        query = clean_query(query)
        l1_us = l2_us = None
        if self.keyword is not None:
            t = perf_counter_ns()
            decision = self.keyword.route(query)
            l1_us = (perf_counter_ns() - t) / 1000
            if decision is not None:
                if self._contested and decision.rule is not None and decision.rule.pattern in self._contested:
                    return self._recheck(query, decision, start, l1_us)
                return self._timed(decision, start, l1_us, None)
        ranking = None
        if self.semantic is not None:
            t = perf_counter_ns()
            ranking = self.semantic.rank(query)
            l2_us = (perf_counter_ns() - t) / 1000
            if self.semantic.accepts(ranking):
                return self._timed(self.semantic.decide(ranking), start, l1_us, l2_us)
        decision = RouteDecision(
            route=self.default_route,
            expert=self.routes[self.default_route].expert,
            tier="default",
            score=0.0,
            margin=0.0,
            reason="no keyword rule fired" + (" and no route was similar enough" if self.semantic else ""),
        )
        if ranking is not None:
            l2 = self.semantic.decide(ranking)
            decision = dataclasses.replace(
                decision,
                score=l2.score,
                margin=l2.margin,
                top_routes=l2.top_routes,
                reason=(
                    f"no keyword rule fired; best route '{l2.route}' scored {l2.score:.3f} with margin "
                    f"{l2.margin:.3f} (needs >= {self.semantic.threshold_for(l2.route)} and >= {self.semantic.margin})"
                ),
            )
        return self._timed(decision, start, l1_us, l2_us)

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
