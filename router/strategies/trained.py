"""L2 trained on a labelled corpus: a linear SVM over words, characters and the embedding, plus nearest examples."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.data import load_labelled
from router.errors import ConfigError
from router.protocols import Encoder
from router.schema import Ranking, Route, RouteDecision, RouteScore
from router.strategies.trained_model import CorpusModel, embed_cached, softmax
from router.strategies.thresholds import Thresholded

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_corpus(path: str | Path, routes: Sequence[str]) -> list[tuple[str, str, str]]:
    """(query, route, dataset) rows of a labelled JSONL file; relative paths are tried from the project root too."""
    path = Path(path).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        path = PROJECT_ROOT / path
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    return [(row.query, row.route, str(json.loads(lines[row.line - 1]).get("dataset") or path.stem))
            for row in load_labelled(path, routes=routes)]


@dataclass(frozen=True)
class _Corrections:
    """Examples added at run time; replaced whole on every change, so readers need no lock."""

    texts: tuple[str, ...]
    routes: tuple[str, ...]
    matrix: np.ndarray  # one unit embedding per correction


class TrainedRoutingStrategy(Thresholded):
    """Route by a model trained on a labelled corpus (many datasets) and the routes' own utterances.

    A route's score is a linear SVM's value over TF-IDF words and character n-grams, the embedding
    and six shape cues (`CorpusModel`), plus `knn_weight` times the mean similarity of its `top_k`
    nearest examples, plus `diverse_weight` times the mean of its best match in each of its
    `diverse_k` closest datasets (so one big templated dataset cannot fill a route's neighbours).
    Each dataset's rows weigh n ** -balance in training, so small datasets count. The scores become
    probabilities by a softmax with `temperature` (fitted on held-out datasets by
    `python -m forensics crossval`); a route is accepted when its probability reaches `threshold`.
    Corrections added at run time count at once, without refitting: a route gains
    `added_weight` times how far its nearest correction's similarity exceeds `added_floor`.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        encoder: Encoder,
        corpus: str | Path | None = None,
        exemplars: Sequence[tuple[str, str]] = (),
        threshold: float = 0.0,
        margin: float = 0.0,
        route_thresholds: Mapping[str, float] | None = None,
        temperature: float = 2.0,
        c: float = 0.3,
        balance: float = 0.5,
        knn_weight: float = 2.0,
        top_k: int = 5,
        diverse_weight: float = 2.0,
        diverse_k: int = 3,
        added_weight: float = 4.0,
        added_floor: float = 0.5,
        cache_dir: str | Path | None = None,
    ) -> None:
        for key, value in (("threshold", threshold), ("margin", margin), ("temperature", temperature), ("c", c),
                           ("balance", balance), ("knn_weight", knn_weight), ("diverse_weight", diverse_weight),
                           ("added_weight", added_weight), ("added_floor", added_floor)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"router.semantic.{key} must be a number >= 0, got {value!r}.")
        if threshold > 1 or margin > 1:
            raise ConfigError("router.semantic.threshold and margin are probabilities: give them in [0, 1].")
        if c == 0 or temperature == 0:
            raise ConfigError("router.semantic.c and temperature must be > 0.")
        if top_k < 1 or diverse_k < 1:
            raise ConfigError("router.semantic.top_k and diverse_k must be >= 1.")
        self._experts = {r.name: r.expert for r in routes}
        self.route_thresholds = {}
        for route, value in (route_thresholds or {}).items():
            if route not in self._experts:
                raise ConfigError(f"router.semantic.route_thresholds names unknown route '{route}'. "
                                  f"Available: {', '.join(self._experts)}")
            self.route_thresholds[str(route)] = float(value)
        self.encoder = encoder
        self.threshold, self.margin, self.temperature = float(threshold), float(margin), float(temperature)
        self.added_weight, self.added_floor = float(added_weight), float(added_floor)
        rows: list[tuple[str, str, str]] = []
        for r in routes:
            rows += [(u, r.name, "utterances") for u in r.utterances]
        for text, route in exemplars:
            rows.append((text, route, "exemplars"))
        if corpus:
            rows += load_corpus(corpus, list(self._experts))
        for _, route, _ in rows:
            if route not in self._experts:
                raise ConfigError(f"Example route '{route}' is unknown. Available: {', '.join(self._experts)}")
        if len({route for _, route, _ in rows}) < 2:
            raise ConfigError("The trained tier needs examples of at least two routes (utterances or a corpus).")
        texts = [t for t, _, _ in rows]
        vectors = embed_cached(encoder, texts, Path(cache_dir).expanduser() if cache_dir else None)
        self.model = CorpusModel.fit(
            texts, [r for _, r, _ in rows], [g for _, _, g in rows], vectors, names=list(self._experts), c=c,
            balance=balance, knn_weight=knn_weight, top_k=top_k, diverse_weight=diverse_weight, diverse_k=diverse_k,
        )
        self._write_lock = threading.Lock()
        self._corrections = _Corrections((), (), np.zeros((0, vectors.shape[1]), dtype=np.float32))

    @property
    def size(self) -> int:
        """Number of examples: the trained ones and the corrections."""
        return self.model.size + len(self._corrections.texts)

    def add_utterances(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Add (text, route) corrections; they count from the next query on, with no refit."""
        for _, route in pairs:
            if route not in self._experts:
                raise ConfigError(f"Route '{route}' is unknown. Available: {', '.join(self._experts)}")
        if not pairs:
            return
        vectors = self.encoder.encode([t for t, _ in pairs])
        with self._write_lock:
            old = self._corrections
            self._corrections = _Corrections(old.texts + tuple(t for t, _ in pairs), old.routes + tuple(r for _, r in pairs),
                                             np.vstack([old.matrix, vectors]).astype(np.float32))

    def remove_utterance(self, text: str, route: str) -> bool:
        """Remove the most recent correction with this text and route; False if there is none."""
        with self._write_lock:
            old = self._corrections
            for i in range(len(old.texts) - 1, -1, -1):
                if old.texts[i] == text and old.routes[i] == route:
                    keep = [j for j in range(len(old.texts)) if j != i]
                    self._corrections = _Corrections(tuple(old.texts[j] for j in keep),
                                                     tuple(old.routes[j] for j in keep), old.matrix[keep])
                    return True
        return False

    def scores(self, query: str) -> np.ndarray:
        """Every route's raw score (model order: `self.model.names`), corrections included."""
        corrections = self._corrections  # one snapshot, even if a correction arrives meanwhile
        vector = self.encoder.encode([query])[0]
        key = self.model.score(query, vector)
        if corrections.texts:
            sims = np.einsum("ij,j->i", corrections.matrix, vector)
            for i, name in enumerate(self.model.names):
                mine = [j for j, r in enumerate(corrections.routes) if r == name]
                if mine:
                    key[i] += self.added_weight * max(0.0, float(sims[mine].max()) - self.added_floor)
        return key

    def rank(self, query: str) -> Ranking:
        """Every route's probability, best first; the margin is the lead in probability."""
        probs = softmax(self.temperature * self.scores(query))
        order = np.argsort(-probs, kind="stable")
        margin = float(probs[order[0]] - probs[order[1]]) if len(order) > 1 else float(probs[order[0]])
        return Ranking(tuple(RouteScore(self.model.names[i], float(probs[i])) for i in order), margin, "trained model")

    def decide(self, ranking: Ranking) -> RouteDecision:
        """The L2 decision a ranking implies (whether or not it is accepted)."""
        best = ranking.best
        return RouteDecision(
            route=best.route, expert=self._experts[best.route], tier="L2", score=round(best.score, 4),
            margin=round(ranking.margin, 4),
            top_routes=tuple(RouteScore(s.route, round(s.score, 4)) for s in ranking.scores[:3]),
            reason=f"the model trained on the corpus gives '{best.route}' probability {best.score:.2f}",
        )
