"""A linear model over words and embeddings that re-ranks the L2 tier's routes, refit on every new example."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from router.errors import ConfigError
from router.text import head_tail

_WH_WORDS = frozenset("who what when where which why how is are do does did can".split())


def shape_features(text: str) -> list[float]:
    """Six cues of a request's form that neither words nor topic carry: length, case, punctuation, layout.

    >>> shape_features("where is the eiffel tower")
    [0.41, 0.0, 0.0, 0.0, 1.0, 1.0]
    """
    words = text.split()
    letters = sum(c.isalpha() for c in text) or 1
    return [
        round(math.log1p(len(text)) / 8, 2),  # about 1.0 at 3,000 characters
        round(sum(c.isupper() for c in text) / letters, 2),
        float(text.rstrip().endswith("?")),
        float("\n" in text.strip()),
        float(text[:1].islower()),
        float(len(words) < 12 and bool(words) and words[0].lower() in _WH_WORDS),
    ]


def _window(text: str, head: int, tail: int) -> str:
    return head_tail(" ".join(text.split()), head, tail)


@dataclass(frozen=True)
class FittedHead:
    """One trained model; immutable, so a strategy can swap it in while other threads route.

    Routing does not go through scikit-learn: the SVM's weights are regrouped per feature kind,
    so one query costs a tokenization and a few small dot products (sklearn's transform and
    decision_function cost about 1 ms per call, mostly input checks).
    """

    vectorizer: TfidfVectorizer
    model: LinearSVC | None  # None when the examples cover a single route or have no words
    n_routes: int
    head_chars: int
    tail_chars: int
    text_weights: np.ndarray | None = None  # (terms, routes)
    embedding_weights: np.ndarray | None = None  # (embedding dim, routes)
    shape_weights: np.ndarray | None = None  # (6, routes)
    bias: np.ndarray | None = None  # (routes,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_analyze", self.vectorizer.build_analyzer())

    def features(self, texts: Sequence[str], vectors: np.ndarray) -> sparse.csr_matrix:
        """The training matrix: TF-IDF terms, then the embedding, then `shape_features`."""
        texts = [_window(t, self.head_chars, self.tail_chars) for t in texts]
        return sparse.hstack([
            self.vectorizer.transform(texts),
            sparse.csr_matrix(np.asarray(vectors, dtype=np.float64)),
            sparse.csr_matrix(np.array([shape_features(t) for t in texts], dtype=np.float64)),
        ], format="csr")

    def decision(self, text: str, vector: np.ndarray) -> np.ndarray:
        """The model's score for every route index (zeros when there is no model)."""
        if self.model is None:
            return np.zeros(self.n_routes, dtype=np.float64)
        text = _window(text, self.head_chars, self.tail_chars)
        out = self.bias + vector @ self.embedding_weights + np.asarray(shape_features(text)) @ self.shape_weights
        vocabulary = self.vectorizer.vocabulary_
        counts = Counter(term for term in self._analyze(text) if term in vocabulary)
        if counts:  # what TfidfVectorizer(sublinear_tf=True) computes: (1 + log tf) * idf, unit length
            columns = np.fromiter((vocabulary[t] for t in counts), dtype=np.intp, count=len(counts))
            values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))))
            values *= self.vectorizer.idf_[columns]
            out = out + (values / np.linalg.norm(values)) @ self.text_weights[columns]
        return out

    @classmethod
    def trained(cls, vectorizer: TfidfVectorizer, model: LinearSVC, n_routes: int, head_chars: int,
                tail_chars: int) -> FittedHead:
        """Regroup the SVM's one-vs-rest weights as (feature, route) matrices."""
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # one weight vector: positive means the second class
            coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
        weights = np.zeros((coef.shape[1], n_routes))
        weights[:, model.classes_] = coef.T
        bias = np.zeros(n_routes)
        bias[model.classes_] = intercept
        terms = len(vectorizer.vocabulary_)
        return cls(vectorizer, model, n_routes, head_chars, tail_chars, np.ascontiguousarray(weights[:terms]),
                   np.ascontiguousarray(weights[terms:-6]), np.ascontiguousarray(weights[-6:]), bias)


class LinearHead:
    """Re-rank L2's routes with a linear SVM trained on the same examples, corrections weighing more.

    Nearest-utterance similarity says what a query is about; it cannot learn which words and forms
    separate the routes ("Is the following sentence plausible?" is a reasoning task whatever the
    sport). A linear model can: its features are TF-IDF word uni- and bigrams of the head and tail,
    the all-MiniLM-L6-v2 embedding and `shape_features`. It is refit whenever the examples change
    (about 0.1 s for 700 of them), so a correction teaches it at once, and examples added at run
    time (user corrections) count `added_weight` times: they are the traffic this router serves.
    A route's L2 score is the model's decision value plus `knn_weight` times its similarity, so
    the nearest utterances still count; the similarity alone is what the threshold checks.
    """

    def __init__(
        self,
        c: float = 0.3,
        knn_weight: float = 2.0,
        added_weight: float = 3.0,
        head_chars: int = 300,
        tail_chars: int = 300,
    ) -> None:
        for key, value in (("c", c), ("knn_weight", knn_weight), ("added_weight", added_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"router.semantic.head.{key} must be a number >= 0, got {value!r}.")
        if c == 0:
            raise ConfigError("router.semantic.head.c must be > 0 (it is the SVM's inverse regularization).")
        if head_chars < 1 or tail_chars < 0:
            raise ConfigError("router.semantic.head.head_chars must be >= 1 and tail_chars >= 0.")
        self.c, self.knn_weight, self.added_weight = float(c), float(knn_weight), float(added_weight)
        self.head_chars, self.tail_chars = head_chars, tail_chars

    def fit(self, texts: Sequence[str], labels: np.ndarray, vectors: np.ndarray, added: np.ndarray,
            n_routes: int) -> FittedHead:
        """Train on the examples; `labels` are route indices, `added` marks run-time examples."""
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        # Model-less until trained; `features` needs only the vectorizer, so training and routing share it.
        head = FittedHead(vectorizer, None, n_routes, self.head_chars, self.tail_chars)
        if len(set(labels.tolist())) < 2:
            return head
        try:
            vectorizer.fit([_window(t, self.head_chars, self.tail_chars) for t in texts])
        except ValueError:  # no word in any example (only punctuation): similarity alone decides
            return head
        weights = np.where(added, self.added_weight, 1.0)
        model = LinearSVC(C=self.c, random_state=0).fit(head.features(texts, vectors), labels, sample_weight=weights)
        return FittedHead.trained(vectorizer, model, n_routes, self.head_chars, self.tail_chars)
