"""Encoders shared across many router configurations: each distinct text is embedded once per model.

Sweeps, calibration and cross-validation build many routers over the same queries; the memo makes
every configuration after the first cost no model time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from router.config import build_encoder, config_key


class MemoEncoder:
    """An encoder that embeds each distinct text once; the memo is shared by encoders with one model_id."""

    def __init__(self, encoder: Any, memo: dict[str, np.ndarray] | None = None) -> None:
        self.encoder = encoder
        self.model_id = encoder.model_id
        self._memo = {} if memo is None else memo

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts, running the model only on texts not seen before."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, self.encoder.encode(missing)))
        if not texts:
            return self.encoder.encode([])
        return np.stack([self._memo[t] for t in texts])


class EncoderPool:
    """One MemoEncoder per distinct encoder config, built on first use and reused by every configuration.

    `max_encoders` bounds how many stay loaded, for a pool that lives as long as the app: the least
    recently used goes first, and its memo with it once no kept encoder shares its model_id.
    """

    def __init__(self, factory: Callable[[Any], Any] | None = None, max_encoders: int | None = None) -> None:
        self._factory = factory or build_encoder
        self.max_encoders = max_encoders
        self._encoders: dict[str, MemoEncoder] = {}  # least recently used first
        self._memos: dict[str, dict[str, np.ndarray]] = {}

    def get(self, encoder_cfg: Any) -> MemoEncoder:
        key = config_key(encoder_cfg)
        if key in self._encoders:
            self._encoders[key] = self._encoders.pop(key)
            return self._encoders[key]
        inner = self._factory(encoder_cfg)
        encoder = self._encoders[key] = MemoEncoder(inner, self._memos.setdefault(inner.model_id, {}))
        while self.max_encoders and len(self._encoders) > self.max_encoders:
            gone = self._encoders.pop(next(iter(self._encoders)))
            if all(e.model_id != gone.model_id for e in self._encoders.values()):
                self._memos.pop(gone.model_id, None)
        return encoder
