"""L2: nearest example utterances in all-MiniLM-L6-v2 embedding space."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.errors import ConfigError
from router.protocols import Encoder
from router.schema import Ranking, Route, RouteDecision, RouteScore
from router.strategies.linear_head import FittedHead, LinearHead
from router.strategies.thresholds import Thresholded

log = logging.getLogger(__name__)


def top_k_mean(scores: np.ndarray, k: int) -> float:
    """Mean of the k largest values (all of them when there are fewer).

    >>> top_k_mean(np.array([0.1, 0.9, 0.5, 0.7]), 2)
    0.8
    """
    if len(scores) <= k:
        return float(scores.mean())
    return float(np.partition(scores, len(scores) - k)[-k:].mean())


@dataclass(frozen=True)
class _Index:
    """The examples L2 compares with; replaced whole, never changed, so readers need no lock."""

    names: tuple[str, ...]  # routes with at least one example; labels index into it
    texts: tuple[str, ...]
    labels: np.ndarray  # route index per example
    added: np.ndarray  # True for examples added at run time (corrections)
    matrix: np.ndarray  # one unit-length embedding per example
    groups: tuple[np.ndarray, ...]  # example rows per route index
    head: FittedHead | None


class SemanticRoutingStrategy(Thresholded):
    """Route to the route whose example utterances are most similar to the query.

    A route's score is the mean cosine similarity of its `top_k` nearest utterances. One nearest
    neighbour (k=1) lets a single stray example capture queries; a centroid (all utterances) blurs
    routes that cover several kinds of request (code: write / fix / explain). A small k keeps the
    locality of nearest neighbours with less noise. The strategy declines (returns None) when the
    best score is under `threshold` or leads the runner-up by less than `margin`.
    `route_thresholds` gives some routes a threshold of their own, which applies instead of
    `threshold` when that route is the best one (forensics.calibrate fits them).
    With a `head` (LinearHead), a linear model trained on the same examples orders the routes and
    the similarity of the route it puts first is what the thresholds check.
    Examples added at run time (user corrections) swap in a new index, head refit, at once.
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
        head: LinearHead | None = None,
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
        self.head = head
        self._experts = {r.name: r.expert for r in routes}
        texts, labels = [], []
        for r in routes:
            texts += r.utterances
            labels += [r.name] * len(r.utterances)
        for text, route in exemplars:
            if route not in self._experts:
                raise ConfigError(f"Exemplar route '{route}' is unknown. Available: {', '.join(self._experts)}")
            texts.append(text)
            labels.append(route)
        if not texts:
            raise ConfigError("No route has utterances, so the semantic tier has nothing to compare with.")
        self._cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._write_lock = threading.Lock()  # corrections may arrive from several sessions at once
        self._index = self._build_index(texts, labels, np.zeros(len(texts), dtype=bool), self._embed_cached(texts))

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

    def _build_index(self, texts: Sequence[str], labels: Sequence[str], added: np.ndarray,
                     vectors: np.ndarray) -> _Index:
        # Routes keep route-table order; one with no examples is left out and never wins.
        names = tuple(n for n in self._experts if n in set(labels))
        position = {n: i for i, n in enumerate(names)}
        codes = np.array([position[name] for name in labels], dtype=np.int32)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        head = self.head.fit(texts, codes, matrix, added, len(names)) if self.head is not None else None
        return _Index(names, tuple(texts), codes, np.asarray(added, dtype=bool), matrix,
                      tuple(np.flatnonzero(codes == i) for i in range(len(names))), head)

    def add_utterances(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Add (text, route) examples (user corrections) to the index at once, with no restart."""
        self.check_routes(pairs)
        if not pairs:
            return
        vectors = self.encoder.encode([t for t, _ in pairs])
        with self._write_lock:
            old = self._index
            self._index = self._build_index(
                old.texts + tuple(t for t, _ in pairs),
                [old.names[i] for i in old.labels] + [r for _, r in pairs],
                np.concatenate([old.added, np.ones(len(pairs), dtype=bool)]),
                np.vstack([old.matrix, vectors]),
            )

    def remove_utterance(self, text: str, route: str) -> bool:
        """Remove the most recently added example with this text and route; False if there is none."""
        with self._write_lock:
            old = self._index
            for i in range(len(old.texts) - 1, -1, -1):
                if old.texts[i] == text and old.names[old.labels[i]] == route:
                    keep = np.ones(len(old.texts), dtype=bool)
                    keep[i] = False
                    if not keep.any():
                        raise ConfigError("Cannot remove the last example: the semantic tier would have none.")
                    self._index = self._build_index(
                        [t for t, k in zip(old.texts, keep) if k], [old.names[j] for j in old.labels[keep]],
                        old.added[keep], old.matrix[keep],
                    )
                    return True
        return False

    @property
    def size(self) -> int:
        """Number of utterances in the index."""
        return len(self._index.texts)

    def rank(self, query: str) -> Ranking:
        """Score every route against the query, best first (by the linear head when there is one)."""
        index = self._index  # one snapshot, even if a correction swaps the index meanwhile
        vector = self.encoder.encode([query])[0]
        sims = index.matrix @ vector
        similarity = np.array([top_k_mean(sims[g], self.top_k) for g in index.groups])
        key, by = similarity, "similarity"
        if index.head is not None and index.head.model is not None:
            key, by = index.head.decision(query, vector) + self.head.knn_weight * similarity, "linear head"
        order = np.argsort(-key, kind="stable")
        margin = float(key[order[0]] - key[order[1]]) if len(order) > 1 else float(key[order[0]])
        return Ranking(tuple(RouteScore(index.names[i], float(similarity[i])) for i in order), margin, by)

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
            reason=(f"nearest utterances belong to '{best.route}'" if ranking.by == "similarity" else
                    f"the linear head over words and embeddings ranks '{best.route}' first"),
        )
