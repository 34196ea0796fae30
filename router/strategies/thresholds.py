"""What every L2 strategy shares once it can rank and decide: thresholds, acceptance, a one-call route(),
and the check of the routes that corrections name."""

from __future__ import annotations

from collections.abc import Sequence

from router.errors import ConfigError
from router.schema import Ranking, RouteDecision


class Thresholded:
    """`threshold_for`, `accepts` and `route` for an L2 strategy with `rank` and `decide` of its own.

    The strategy sets `threshold` and `margin` (in the units of its scores) and `route_thresholds`
    (a threshold of their own for some routes, used when that route ranks first).
    """

    threshold: float
    margin: float
    route_thresholds: dict[str, float]
    _experts: dict[str, str]  # route -> expert

    def check_routes(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Refuse (text, route) examples that name a route this strategy does not have."""
        for _, route in pairs:
            if route not in self._experts:
                raise ConfigError(f"Route '{route}' is unknown. Available: {', '.join(self._experts)}")

    def rank(self, query: str) -> Ranking:
        raise NotImplementedError

    def decide(self, ranking: Ranking) -> RouteDecision:
        raise NotImplementedError

    def threshold_for(self, route: str) -> float:
        """The score the best route needs: its own threshold if it has one, else the global one."""
        return self.route_thresholds.get(route, self.threshold)

    def accepts(self, ranking: Ranking) -> bool:
        """Whether the ranking is confident enough to route on."""
        best = ranking.best
        return best.score >= self.threshold_for(best.route) and ranking.margin >= self.margin

    def route(self, query: str) -> RouteDecision | None:
        """Return an L2 decision, or None when under the threshold or the margin."""
        ranking = self.rank(query)
        return self.decide(ranking) if self.accepts(ranking) else None
