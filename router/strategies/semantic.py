"""L2: nearest example utterances in all-MiniLM-L6-v2 embedding space."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.errors import ConfigError
from router.protocols import Encoder
from router.schema import Route, RouteDecision, RouteScore

log = logging.getLogger(__name__)


def top_k_mean(scores: np.ndarray, k: int) -> float:
    """Mean of the k largest values (all of them when there are fewer).

    >>> top_k_mean(np.array([0.1, 0.9, 0.5, 0.7]), 2)
    0.8
    """
    if len(scores) <= k:
        return float(scores.mean())
    return float(np.partition(scores, len(scores) - k)[-k:].mean())


@dataclass(frozen=True, slots=True)
class Ranking:
    """Every route's similarity to one query, best first."""

    scores: tuple[RouteScore, ...]

    @property
    def best(self) -> RouteScore:
        return self.scores[0]

    @property
    def margin(self) -> float:
        return self.scores[0].score - self.scores[1].score if len(self.scores) > 1 else self.scores[0].score


class SemanticRoutingStrategy:
    """Route to the route whose example utterances are most similar to the query.

    A route's score is the mean cosine similarity of its `top_k` nearest utterances. One nearest
    neighbour (k=1) lets a single stray example capture queries; a centroid (all utterances) blurs
    routes that cover several kinds of request (code: write / fix / explain). A small k keeps the
    locality of nearest neighbours with less noise. The strategy declines (returns None) when the
    best score is under `threshold` or leads the runner-up by less than `margin`.
    `route_thresholds` gives some routes a threshold of their own, which applies instead of
    `threshold` when that route is the best one (forensics.calibrate fits them).
    """

    def __init__(
        self,
        routes: Sequence[Route],
        encoder: Encoder,
        threshold: float = 0.2,
        margin: float = 0.0,
        top_k: int = 5,
        exemplars: Sequence[tuple[str, str]] = (),
        cache_dir: str | Path | None = None,
        route_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        for key, value in (("threshold", threshold), ("margin", margin), ("top_k", top_k)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"router.semantic.{key} must be a number, got {value!r}.")
        if not -1.0 <= threshold <= 1.0:
            raise ConfigError(f"router.semantic.threshold must be a cosine similarity in [-1, 1], got {threshold}.")
        if not 0.0 <= margin <= 2.0:
            raise ConfigError(f"router.semantic.margin must be in [0, 2], got {margin}.")
        if top_k < 1:
            raise ConfigError(f"router.semantic.top_k must be >= 1, got {top_k}.")
        known = {r.name for r in routes}
        self.route_thresholds: dict[str, float] = {}
        for route, value in (route_thresholds or {}).items():
            if route not in known:
                raise ConfigError(f"router.semantic.route_thresholds names unknown route '{route}'. "
                                  f"Available: {', '.join(r.name for r in routes)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
                raise ConfigError(f"router.semantic.route_thresholds.{route} must be a cosine similarity "
                                  f"in [-1, 1], got {value!r}.")
            self.route_thresholds[str(route)] = float(value)
        self.encoder = encoder
        self.threshold, self.margin, self.top_k = threshold, margin, top_k
        self._experts = {r.name: r.expert for r in routes}
        self._names = [r.name for r in routes]
        texts, labels = [], []
        for r in routes:
            texts += r.utterances
            labels += [r.name] * len(r.utterances)
        for text, route in exemplars:
            if route not in self._experts:
                raise ConfigError(f"Exemplar route '{route}' is unknown. Available: {', '.join(self._names)}")
            texts.append(text)
            labels.append(route)
        self._names = [n for n in self._names if n in labels]  # routes with no utterances never win
        if not self._names:
            raise ConfigError("No route has utterances, so the semantic tier has nothing to compare with.")
        self._texts: list[str] = []
        self._labels = np.zeros(0, dtype=np.int32)
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._set_index(texts, labels, self._embed_cached(texts))

    def _embed_cached(self, texts: list[str]) -> np.ndarray:
        """Embed utterances, reusing an on-disk copy keyed by model and texts."""
        if self._cache_dir is None:
            return self.encoder.encode(texts)
        key = hashlib.sha256("\x1f".join([self.encoder.model_id, *texts]).encode("utf-8", "replace")).hexdigest()
        path = self._cache_dir / f"utterances-{key[:24]}.npy"
        if path.exists():
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached
        vectors = self.encoder.encode(texts)
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp.npy")
            np.save(partial, vectors)
            partial.replace(path)
        except OSError as e:  # a read-only cache only costs start-up time
            log.warning("Could not cache utterance embeddings in %s: %s", self._cache_dir, e)
        return vectors

    def _set_index(self, texts: list[str], labels: list[str], vectors: np.ndarray) -> None:
        index = {n: i for i, n in enumerate(self._names)}
        self._texts = list(texts)
        self._labels = np.array([index[name] for name in labels], dtype=np.int32)
        self._matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        self._groups = [np.flatnonzero(self._labels == i) for i in range(len(self._names))]

    def add_utterances(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Add (text, route) examples to the index at once, with no restart."""
        for _, route in pairs:
            if route not in self._experts:
                raise ConfigError(f"Route '{route}' is unknown. Available: {', '.join(self._experts)}")
        new_names = [r for _, r in pairs if r not in self._names]
        self._names += list(dict.fromkeys(new_names))
        labels = [self._names[i] for i in self._labels] + [r for _, r in pairs]
        vectors = np.vstack([self._matrix, self.encoder.encode([t for t, _ in pairs])])
        self._set_index(self._texts + [t for t, _ in pairs], labels, vectors)

    def remove_utterance(self, text: str, route: str) -> bool:
        """Remove the most recently added example with this text and route; False if there is none."""
        for i in range(len(self._texts) - 1, -1, -1):
            if self._texts[i] == text and self._names[self._labels[i]] == route:
                keep = np.ones(len(self._texts), dtype=bool)
                keep[i] = False
                labels = [self._names[j] for j in self._labels[keep]]
                self._set_index([t for t, k in zip(self._texts, keep) if k], labels, self._matrix[keep])
                return True
        return False

    @property
    def size(self) -> int:
        """Number of utterances in the index."""
        return len(self._texts)

    def rank(self, query: str) -> Ranking:
        """Score every route against the query, best first."""
        sims = self._matrix @ self.encoder.encode([query])[0]
        scores = [RouteScore(n, top_k_mean(sims[g], self.top_k)) for n, g in zip(self._names, self._groups)]
        return Ranking(tuple(sorted(scores, key=lambda s: -s.score)))

    def threshold_for(self, route: str) -> float:
        """The similarity the best route needs: its own threshold if it has one, else the global one."""
        return self.route_thresholds.get(route, self.threshold)

    def accepts(self, ranking: Ranking) -> bool:
        """Whether the ranking is confident enough to route on."""
        best = ranking.best
        return best.score >= self.threshold_for(best.route) and ranking.margin >= self.margin

    def decide(self, ranking: Ranking) -> RouteDecision:
        """The L2 decision a ranking implies (whether or not it is accepted)."""
        best = ranking.best
        return RouteDecision(
            route=best.route,
            expert=self._experts[best.route],
            tier="L2",
            score=round(best.score, 4),
            margin=round(ranking.margin, 4),
            top_routes=tuple(RouteScore(s.route, round(s.score, 4)) for s in ranking.scores[:3]),
            reason=f"nearest utterances belong to '{best.route}'",
        )

    def route(self, query: str) -> RouteDecision | None:
        """Return an L2 decision, or None when under the threshold or the margin."""
        ranking = self.rank(query)
        return self.decide(ranking) if self.accepts(ranking) else None
