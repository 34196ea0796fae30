"""Dynamic micro-batching: concurrent encode calls share one model run.

Under concurrent traffic each request embeds one query; on an accelerator one model call on 16
queries costs far less than 16 calls on one. `BatchingEncoder` queues the texts of concurrent `encode` calls, waits at most
`max_wait_ms` for more to arrive, and encodes up to `max_batch` texts in one inner call.

Batching must not change a query's vector, or a decision would depend on what else was routed at the
same moment. So only an encoder that is batch-invariant is batched: the float32 ONNX encoder is (a text
gets the same vector to 1e-7 alone or among others); the int8 one is not (it quantizes activations with
one scale per model run; cosine down to 0.95), and is refused with the fix named.

On CPU, batching pays little: all-MiniLM-L6-v2 is compute-bound already at one short query. Encoding
dev queries in batches of 16-32 instead of one at a time gives 1.0x the texts per second with int8
ONNX, 1.4x with float32 ONNX and 1.7x with sentence-transformers (2 cores, 2026-12-02), and the rest
of a request (HTTP, L1, scoring) is not batched. `/v1/route` at 16 clients for 20 s on the dev file,
same run: float32 274 req/s unbatched (p99 161 ms), 302 batched (p99 182 ms), 1.10x; int8 unbatched
358 req/s (p99 122 ms), the fastest, and the default. It is opt-in (`encoder_batching`), for an
encoder on an accelerator, where one run of 32 texts costs about what a run of one does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from router.errors import ConfigError
from router.protocols import Encoder


class BatchingEncoder:
    """An Encoder that batches the texts of concurrent calls to `inner` (one worker thread runs the model)."""

    def __init__(self, inner: Encoder, max_wait_ms: float = 2.0, max_batch: int = 32) -> None:
        if max_wait_ms < 0 or max_batch < 1:
            raise ConfigError("encoder_batching needs max_wait_ms >= 0 and max_batch >= 1.")
        if not getattr(inner, "batch_invariant", True):
            raise ConfigError(
                f"encoder_batching would change the vectors of {inner.model_id}: it embeds a text differently "
                "inside a batch (int8 quantizes activations per run). Use encoder.quantize=null with "
                "encoder_batching, or drop encoder_batching."
            )
        self.inner, self.max_wait, self.max_batch = inner, max_wait_ms / 1000, max_batch
        self.model_id, self.batch_invariant = inner.model_id, True
        self._requests: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        threading.Thread(target=self._work, name="encoder-batching", daemon=True).start()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts`, together with whatever other threads ask for meanwhile."""
        if len(texts) >= self.max_batch:  # already a batch (index building): no need to wait
            return self.inner.encode(texts)
        done: Future = Future()
        self._requests.put((list(texts), done))
        return done.result()

    def _work(self) -> None:
        while True:
            batch = [self._requests.get()]
            size, deadline = len(batch[0][0]), time.monotonic() + self.max_wait
            while size < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    item = self._requests.get(timeout=left) if left > 0 else self._requests.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[0])
            try:
                vectors = self.inner.encode([t for texts, _ in batch for t in texts])
            except Exception as e:  # every waiting caller gets the error, and the worker lives on
                for _, done in batch:
                    done.set_exception(e)
                continue
            at = 0
            for texts, done in batch:
                done.set_result(vectors[at:at + len(texts)])
                at += len(texts)
