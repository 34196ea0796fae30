"""HybridRouter: the L1 keyword tier, then the L2 semantic tier, then the default route."""

from __future__ import annotations

import dataclasses
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

    @staticmethod
    def _timed(decision: RouteDecision, start: int, l1_us: float | None, l2_us: float | None) -> RouteDecision:
        total = (perf_counter_ns() - start) / 1000
        return dataclasses.replace(decision, timings=TierTimings(l1_us=l1_us, l2_us=l2_us, total_us=total))
