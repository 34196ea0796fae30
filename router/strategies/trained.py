"""L2 trained on a labelled corpus: a linear SVM over words, characters and the embedding, plus nearest examples."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.data import load_labelled
from router.errors import ConfigError
from router.protocols import Encoder
from router.schema import Ranking, Route, RouteDecision, RouteScore
from router.text import head_tail
from router.strategies.trained_model import CorpusModel, embed_cached, softmax
from router.strategies.thresholds import Thresholded

PROJECT_ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
CUE_OFF = 10.0  # what a route loses when the query shows none of its cues: probability ~1e-12 at temperature 2.75
MODEL_FORMAT = 1  # bump when CorpusModel's fields change: cached fits of another format are refitted


def corpus_file(path: str | Path) -> Path:
    """A corpus path as given, or from the project root when it is relative and not found as given."""
    path = Path(path).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


def load_corpus(path: str | Path, routes: Sequence[str]) -> list[tuple[str, str, str]]:
    """(query, route, dataset) rows of a labelled JSONL file; relative paths are tried from the project root too."""
    path = corpus_file(path)
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    return [(row.query, row.route, str(json.loads(lines[row.line - 1]).get("dataset") or path.stem))
            for row in load_labelled(path, routes=routes)]


def corpus_paths(corpus: str | Path | Sequence[str | Path] | None) -> list[str | Path]:
    """The corpus setting as a list of files: one path, a list of paths, or none.

    >>> corpus_paths("a.jsonl"), corpus_paths(["a.jsonl", "b.jsonl"]), corpus_paths(None)
    (['a.jsonl'], ['a.jsonl', 'b.jsonl'], [])
    """
    if not corpus:
        return []
    return [corpus] if isinstance(corpus, (str, Path)) else list(corpus)


@dataclass(frozen=True)
class _Corrections:
    """Examples added at run time; replaced whole on every change, so readers need no lock."""

    texts: tuple[str, ...]
    routes: tuple[str, ...]
    matrix: np.ndarray  # one unit embedding per correction

    def rows_of(self, route: str) -> np.ndarray:
        """Indices of the corrections for `route` (computed once per snapshot, not per query)."""
        by_route = self.__dict__.get("_by_route")
        if by_route is None:
            by_route = {}
            for j, r in enumerate(self.routes):
                by_route.setdefault(r, []).append(j)
            by_route = {r: np.array(js) for r, js in by_route.items()}
            object.__setattr__(self, "_by_route", by_route)
        return by_route.get(route, _NONE)


_NONE = np.zeros(0, dtype=np.intp)


class _Refit:
    """State of the background refit: when it is due, and whether one is running or pending."""

    def __init__(self) -> None:
        from time import monotonic

        self.clock = monotonic
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.due = float("inf")
        self.thread: threading.Thread | None = None


def fit_cached(rows: Sequence[tuple[str, str, str]], vectors: np.ndarray, params: Mapping, model_id: str,
               cache_dir: Path | None) -> tuple[CorpusModel, Path | None]:
    """CorpusModel.fit, or the copy fitted earlier on the same rows, vectors and settings; and its file."""
    import sklearn

    fit = lambda: CorpusModel.fit([t for t, _, _ in rows], [r for _, r, _ in rows],  # noqa: E731
                                  [g for _, _, g in rows], vectors, **params)
    if cache_dir is None:
        return fit(), None
    digest = hashlib.sha256(json.dumps([MODEL_FORMAT, sklearn.__version__, model_id, sorted(params.items()),
                                        rows], ensure_ascii=False).encode("utf-8", "surrogateescape"))
    digest.update(np.ascontiguousarray(vectors).tobytes())
    path = cache_dir / f"trained-{digest.hexdigest()[:24]}.pkl"
    if path.exists():
        try:
            with path.open("rb") as f:  # our own file, named by the hash of what it was fitted on
                model = pickle.load(f)
            if isinstance(model, CorpusModel):
                return model, path
        except Exception as e:  # a damaged or foreign file: refit and overwrite it
            log.warning("Ignoring the cached trained router %s: %s", path, e)
    log.info("Fitting the trained router on %d examples (once; kept in %s)", len(rows), cache_dir)
    model = fit()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        with partial.open("wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)
    except OSError as e:  # a read-only cache only costs start-up time
        log.warning("Could not cache the trained router in %s: %s", cache_dir, e)
        return model, None
    return model, path


class TrainedRoutingStrategy(Thresholded):
    """Route by a model trained on a labelled corpus (many datasets) and the routes' own utterances.

    A route's score is a linear SVM's value over TF-IDF words and character n-grams, the embedding
    and six shape cues (`CorpusModel`), plus `knn_weight` times the mean similarity of its `top_k`
    nearest examples, plus `diverse_weight` times the mean of its best match in each of its
    `diverse_k` closest datasets (so one big templated dataset cannot fill a route's neighbours).
    A route given `route_cues` (a regular expression) is ranked only for queries that show a cue in
    their first or last 300 characters: a persona route needs a message that sets up a persona, not
    one that merely shares its topic ("Which methods did Socrates use?" is not "act as Socrates").
    Each dataset's rows weigh n ** -balance in training, so small datasets count. The scores become
    probabilities by a softmax with `temperature` (fitted on held-out datasets by
    `python -m forensics crossval`); a route is accepted when its probability reaches `threshold`.
    Corrections added at run time count at once: a route gains `added_weight` times how far its
    nearest correction's similarity exceeds `added_floor`, and a query at least `added_exact` similar
    to a correction (the corrected query itself, give or take a word) goes where the closest such
    correction says (the latest, among equals), `added_weight` ahead of every other route. They also
    count through the words: once
    corrections stop arriving for `refit_after` seconds, a background thread refits the model with
    them as one more dataset (each weighing `correction_weight` times a corpus row) and swaps it in,
    so a corrected phrasing also moves queries that share its wording but not its topic.
    """

    scores_are_probabilities = True  # rank() gives calibrated probabilities (router.unsure=expert sums them)

    def __init__(
        self,
        routes: Sequence[Route],
        encoder: Encoder,
        corpus: str | Path | Sequence[str | Path] | None = None,
        exemplars: Sequence[tuple[str, str]] = (),
        threshold: float = 0.0,
        margin: float = 0.0,
        route_thresholds: Mapping[str, float] | None = None,
        route_cues: Mapping[str, str] | None = None,
        temperature: float = 2.75,
        c: float = 0.3,
        balance: float = 0.5,
        knn_weight: float = 2.0,
        top_k: int = 5,
        diverse_weight: float = 2.0,
        diverse_k: int = 3,
        added_weight: float = 4.0,
        added_floor: float = 0.5,
        added_exact: float = 0.95,
        refit_after: float | None = 2.0,
        correction_weight: float = 1.0,
        utterance_weight: float = 1.0,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        for key, value in (("threshold", threshold), ("margin", margin), ("temperature", temperature), ("c", c),
                           ("balance", balance), ("knn_weight", knn_weight), ("diverse_weight", diverse_weight),
                           ("added_weight", added_weight), ("added_floor", added_floor), ("added_exact", added_exact),
                           ("correction_weight", correction_weight), ("utterance_weight", utterance_weight),
                           ("refit_after", refit_after or 0)):
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
        self.route_cues: dict[str, re.Pattern] = {}
        for route, pattern in (route_cues or {}).items():
            if route not in self._experts:
                raise ConfigError(f"router.semantic.route_cues names unknown route '{route}'. "
                                  f"Available: {', '.join(self._experts)}")
            try:
                self.route_cues[str(route)] = re.compile(str(pattern), re.IGNORECASE)
            except re.error as e:
                raise ConfigError(f"router.semantic.route_cues.{route} is not a valid regular expression: {e}") from e
        self.encoder = encoder
        self.threshold, self.margin, self.temperature = float(threshold), float(margin), float(temperature)
        self.added_weight, self.added_floor, self.added_exact = float(added_weight), float(added_floor), float(added_exact)
        rows: list[tuple[str, str, str]] = []
        for r in routes:
            rows += [(u, r.name, "utterances") for u in r.utterances]
        for text, route in exemplars:
            rows.append((text, route, "exemplars"))
        for path in corpus_paths(corpus):
            rows += load_corpus(path, list(self._experts))
        for _, route, _ in rows:
            if route not in self._experts:
                raise ConfigError(f"Example route '{route}' is unknown. Available: {', '.join(self._experts)}")
        if len({route for _, route, _ in rows}) < 2:
            raise ConfigError("The trained tier needs examples of at least two routes (utterances or a corpus).")
        cache = Path(cache_dir).expanduser() if cache_dir else None
        self._rows = rows
        self._vectors = embed_cached(encoder, [t for t, _, _ in rows], cache)
        self._params = dict(names=list(self._experts), c=c, balance=balance, knn_weight=knn_weight, top_k=top_k,
                            diverse_weight=diverse_weight, diverse_k=diverse_k, seed=seed,
                            group_weights={"utterances": float(utterance_weight)})
        self.refit_after, self.correction_weight = refit_after, float(correction_weight)
        self.model, self.artifact = fit_cached(rows, self._vectors, self._params, encoder.model_id, cache)
        self.datasets = len({g for _, _, g in rows})
        self._write_lock = threading.Lock()
        self._corrections = _Corrections((), (), np.zeros((0, self._vectors.shape[1]), dtype=np.float32))
        self._refit = _Refit()
        self.fitted_corrections = 0  # corrections the current model was fitted with

    @property
    def size(self) -> int:
        """Number of examples: the trained ones and the corrections."""
        return self.model.size + len(self._corrections.texts)

    def add_utterances(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Add (text, route) corrections: they count by similarity from the next query on, and refit the model
        in the background once they stop arriving (see `refit_after`)."""
        self.check_routes(pairs)
        if not pairs:
            return
        vectors = self.encoder.encode([t for t, _ in pairs])
        with self._write_lock:
            old = self._corrections
            self._corrections = _Corrections(old.texts + tuple(t for t, _ in pairs), old.routes + tuple(r for _, r in pairs),
                                             np.vstack([old.matrix, vectors]).astype(np.float32))
        self._schedule_refit()

    def remove_utterance(self, text: str, route: str) -> bool:
        """Remove the most recent correction with this text and route; False if there is none."""
        with self._write_lock:
            old = self._corrections
            for i in range(len(old.texts) - 1, -1, -1):
                if old.texts[i] == text and old.routes[i] == route:
                    keep = [j for j in range(len(old.texts)) if j != i]
                    self._corrections = _Corrections(tuple(old.texts[j] for j in keep),
                                                     tuple(old.routes[j] for j in keep), old.matrix[keep])
                    break
            else:
                return False
        self._schedule_refit()
        return True

    def _schedule_refit(self) -> None:
        """Refit with the corrections once they stop arriving for `refit_after` seconds (in a thread)."""
        if self.refit_after is None:
            return
        with self._refit.lock:
            self._refit.due = self._refit.clock() + self.refit_after
            self._refit.idle.clear()
            if self._refit.thread is None:
                self._refit.thread = threading.Thread(target=self._refit_loop, name="trained-refit", daemon=True)
                self._refit.thread.start()

    def _refit_loop(self) -> None:
        while True:
            with self._refit.lock:
                wait = self._refit.due - self._refit.clock()
                if wait <= 0:
                    self._refit.due = float("inf")
            if wait > 0:
                self._refit.wake.wait(min(wait, 1.0))
                self._refit.wake.clear()
                continue
            corrections = self._corrections
            try:
                model = self._fit_with(corrections)
            except Exception:  # a failed refit keeps the current model; the corrections still count by similarity
                log.exception("Refitting the trained router with %d corrections failed", len(corrections.texts))
                model = None
            with self._refit.lock:
                if model is not None and corrections is self._corrections:  # else a newer refit is due
                    self.model, self.fitted_corrections = model, len(corrections.texts)
                if self._refit.due == float("inf"):
                    self._refit.thread = None
                    self._refit.idle.set()
                    return

    def _fit_with(self, corrections: _Corrections) -> CorpusModel:
        rows = self._rows + [(t, r, "corrections") for t, r in zip(corrections.texts, corrections.routes)]
        vectors = np.vstack([self._vectors, corrections.matrix]) if corrections.texts else self._vectors
        params = dict(self._params)
        if corrections.texts:
            params["group_weights"] = {**params["group_weights"], "corrections": self.correction_weight}
        return CorpusModel.fit([t for t, _, _ in rows], [r for _, r, _ in rows], [g for _, _, g in rows], vectors,
                               **params)

    def __copy__(self) -> TrainedRoutingStrategy:
        """A twin that shares the fitted model and corrections but learns on its own (the Inbox's preview)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._write_lock, twin._refit = threading.Lock(), _Refit()
        return twin

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for a pending refit (tests and benchmarks); False if it did not finish within `timeout`."""
        with self._refit.lock:
            if self._refit.thread is not None:
                self._refit.due = min(self._refit.due, self._refit.clock())  # no need to wait for quiet
                self._refit.wake.set()
        return self._refit.idle.wait(timeout)

    def scores(self, query: str) -> np.ndarray:
        """Every route's raw score (model order: `self.model.names`), corrections included."""
        corrections = self._corrections  # one snapshot, even if a correction arrives meanwhile
        vector = self.encoder.encode([query])[0]
        key = self.model.score(query, vector)
        if self.route_cues:
            window = head_tail(query, 300, 300)
            for i, name in enumerate(self.model.names):
                cue = self.route_cues.get(name)
                if cue is not None and not cue.search(window):
                    key[i] -= CUE_OFF
        if corrections.texts:
            sims = np.einsum("ij,j->i", corrections.matrix, vector)
            for i, name in enumerate(self.model.names):
                mine = corrections.rows_of(name)
                if len(mine):
                    key[i] += self.added_weight * max(0.0, float(sims[mine].max()) - self.added_floor)
            close = np.flatnonzero(sims >= self.added_exact)
            if len(close):  # the corrected query itself: its latest, closest correction decides
                route = corrections.routes[max(close, key=lambda k: (sims[k], k))]
                if route in self.model.names:  # a route the model knows (every route with an utterance)
                    i = self.model.names.index(route)
                    key[i] = max(key[i], float(np.delete(key, i).max()) + self.added_weight)
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
            scale="probability",
        )
