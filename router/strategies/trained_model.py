"""The model behind TrainedRoutingStrategy: fitted once on the corpus, immutable, scored per query."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from router.strategies.linear_head import _window, shape_features

log = logging.getLogger(__name__)

# Rows of these datasets were picked one by one, so each counts as a dataset of its own among the neighbours.
HAND_PICKED = ("utterances", "exemplars", "corrections")


def softmax(scores: np.ndarray) -> np.ndarray:
    """Probabilities from scores.

    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    z = np.exp(scores - scores.max())
    return z / z.sum()


def dataset_weights(groups: Sequence[str], balance: float, scale: Mapping[str, float] | None = None) -> np.ndarray:
    """Per-row training weight n ** -balance (n: rows of the row's dataset), times `scale[group]`, mean 1.

    >>> dataset_weights(["a", "a", "a", "a", "b"], 1.0).round(2).tolist()
    [0.62, 0.62, 0.62, 0.62, 2.5]
    """
    sizes, scale = Counter(groups), scale or {}
    w = np.array([sizes[g] ** -balance * scale.get(g, 1.0) for g in groups], dtype=np.float64)
    return w * len(w) / w.sum()


def embed_cached(encoder, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
    """Embed texts, reusing an on-disk copy keyed by the model and the texts."""
    if cache_dir is None:
        return np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    key = hashlib.sha256("\x1f".join([encoder.model_id, *texts]).encode("utf-8", "replace")).hexdigest()
    path = cache_dir / f"corpus-{key[:24]}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    vectors = _embed_with_progress(encoder, texts)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.npy")
        np.save(partial, vectors)
        partial.replace(path)
    except OSError as e:  # a read-only cache only costs start-up time
        log.warning("Could not cache corpus embeddings in %s: %s", cache_dir, e)
    return vectors


def _embed_with_progress(encoder, texts: Sequence[str], chunk: int = 256) -> np.ndarray:
    """Embed many texts in chunks, logging how far it got (the first start embeds the whole corpus)."""
    log.info("Embedding %d training examples (once; the vectors are cached)", len(texts))
    parts = []
    for at in range(0, len(texts), chunk):
        parts.append(np.asarray(encoder.encode(list(texts[at:at + chunk])), dtype=np.float32))
        log.info("Embedded %d/%d training examples", min(at + chunk, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, 384), dtype=np.float32)


@dataclass(frozen=True)
class CorpusModel:
    """A linear SVM over word and character TF-IDF, embedding and shape cues, plus two neighbour scores."""

    names: tuple[str, ...]  # routes, in route-table order; score() returns one value per name
    words: TfidfVectorizer
    chars: TfidfVectorizer
    svm: LinearSVC
    matrix: np.ndarray  # unit embeddings of the training rows, sorted by (route, neighbour group)
    by_route: tuple[np.ndarray, ...]  # row indices per route
    group_starts: np.ndarray  # first row of each (route, group) run, for np.maximum.reduceat
    groups_of_route: tuple[np.ndarray, ...]  # indices into the runs, per route
    knn_weight: float
    top_k: int
    diverse_weight: float
    diverse_k: int

    @property
    def size(self) -> int:
        return len(self.matrix)

    @classmethod
    def fit(cls, texts: Sequence[str], routes: Sequence[str], groups: Sequence[str], vectors: np.ndarray,
            names: Sequence[str], c: float, balance: float, knn_weight: float, top_k: int,
            diverse_weight: float, diverse_k: int, group_weights: Mapping[str, float] | None = None,
            seed: int = 0) -> CorpusModel:
        """Train on (text, route, dataset) rows with their embeddings; deterministic.

        `group_weights` scales the training weight of some datasets' rows (e.g. run-time corrections).
        """
        names = tuple(n for n in names if n in set(routes))
        code = {n: i for i, n in enumerate(names)}
        labels = np.array([code[r] for r in routes])
        windows = [_window(t, 300, 300) for t in texts]
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                                max_features=50000)
        features = sparse.hstack([words.fit_transform(windows), chars.fit_transform(windows),
                                  sparse.csr_matrix(np.asarray(vectors, dtype=np.float64)),
                                  sparse.csr_matrix(np.array([shape_features(t) for t in windows]))], format="csr")
        svm = LinearSVC(C=c, random_state=seed).fit(features, labels,
                                                    sample_weight=dataset_weights(groups, balance, group_weights))
        # Neighbour groups: a dataset, or one row for hand-picked examples; rows sorted so each run is contiguous.
        neighbour = [f"{g}\x1f{i}" if g in HAND_PICKED else g for i, g in enumerate(groups)]
        order = sorted(range(len(texts)), key=lambda i: (labels[i], neighbour[i]))
        runs = [0] + [j for j in range(1, len(order))
                      if (labels[order[j]], neighbour[order[j]]) != (labels[order[j - 1]], neighbour[order[j - 1]])]
        run_route = np.array([labels[order[s]] for s in runs])
        sorted_labels = labels[order]
        return cls(names, words, chars, svm, np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[order]),
                   tuple(np.flatnonzero(sorted_labels == i) for i in range(len(names))), np.array(runs),
                   tuple(np.flatnonzero(run_route == i) for i in range(len(names))),
                   knn_weight, top_k, diverse_weight, diverse_k)

    def __post_init__(self) -> None:
        # Routing skips scikit-learn's transform (about 1 ms of input checks per call): the SVM's
        # weights are split per feature kind and each TF-IDF row is computed directly.
        coef, bias = self.svm.coef_, self.svm.intercept_
        if len(self.names) == 2:  # one weight vector: positive means the second route
            coef, bias = np.vstack([-coef, coef]) / 2, np.concatenate([-bias, bias]) / 2
        n_words, n_chars = len(self.words.vocabulary_), len(self.chars.vocabulary_)
        weights = np.ascontiguousarray(coef.T)
        parts = {"bias": bias, "words": weights[:n_words], "chars": weights[n_words:n_words + n_chars],
                 "embedding": weights[n_words + n_chars:-6], "shape": weights[-6:],
                 "word_terms": (self.words.build_analyzer(), self.words.vocabulary_, self.words.idf_),
                 "char_columns": _word_columns(self.chars)}
        object.__setattr__(self, "_parts", parts)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_parts"}  # rebuilt on load: holds analyzers

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.__post_init__()

    def score(self, text: str, vector: np.ndarray) -> np.ndarray:
        """Every route's score for one query: SVM value plus the weighted neighbour similarities."""
        window, p = _window(text, 300, 300), self._parts
        vector = np.asarray(vector, dtype=np.float32)
        svm = p["bias"] + vector @ p["embedding"] + np.asarray(shape_features(window)) @ p["shape"]
        svm = svm + _tfidf_dot(window, *p["word_terms"], p["words"])
        svm = svm + _char_dot(window, p["char_columns"], self.chars.idf_, p["chars"])
        # einsum, not BLAS: a threaded gemv stalls for milliseconds when the cores are busy
        sims = np.einsum("ij,j->i", self.matrix, np.asarray(vector, dtype=np.float32))
        best_per_group = np.maximum.reduceat(sims, self.group_starts)
        out = np.array(svm, dtype=np.float64)
        for i in range(len(self.names)):
            out[i] += self.knn_weight * _top_mean(sims[self.by_route[i]], self.top_k)
            out[i] += self.diverse_weight * _top_mean(best_per_group[self.groups_of_route[i]], self.diverse_k)
        return out


def _tfidf_dot(text: str, analyze, vocabulary: dict, idf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What TfidfVectorizer(sublinear_tf=True).transform([text]) @ weights computes, without its checks."""
    counts = Counter(term for term in analyze(text) if term in vocabulary)
    if not counts:
        return np.zeros(weights.shape[1])
    columns = np.fromiter((vocabulary[t] for t in counts), dtype=np.intp, count=len(counts))
    values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[columns]
    return (values / np.linalg.norm(values)) @ weights[columns]


def _word_columns(chars: TfidfVectorizer):
    """word -> the vocabulary columns of its character n-grams, memoized: words recur, and counting
    a word's n-grams in Python is most of what the character features cost."""
    analyze, vocabulary = chars.build_analyzer(), chars.vocabulary_

    @functools.lru_cache(maxsize=1 << 16)
    def columns(word: str) -> tuple[int, ...]:
        return tuple(vocabulary[g] for g in analyze(word) if g in vocabulary)

    return columns


def _char_dot(text: str, columns, idf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What the char_wb TfidfVectorizer(sublinear_tf=True).transform([text]) @ weights computes: its
    n-grams never cross a space, so the text's counts are the sum of its words' (lowercased first)."""
    found = [c for word in text.lower().split() for c in columns(word)]
    if not found:
        return np.zeros(weights.shape[1])
    cols, counts = np.unique(np.fromiter(found, dtype=np.intp, count=len(found)), return_counts=True)
    values = (1.0 + np.log(counts)) * idf[cols]
    return (values / np.linalg.norm(values)) @ weights[cols]


def _top_mean(values: np.ndarray, k: int) -> float:
    if len(values) <= k:
        return float(values.mean())
    return float(np.partition(values, len(values) - k)[-k:].mean())
