"""BatchingEncoder: concurrent encode calls get their own rows back, from shared model runs, unchanged."""

import threading

import numpy as np
import pytest

from router.batching import BatchingEncoder
from router.config import build_router, load_config
from router.encoders import OnnxEncoder, _length_buckets
from router.errors import ConfigError

QUERIES = [
    "Write a Python function that reverses a linked list",
    "why?",
    "What is the capital of Australia?",
    "Solve 3x + 7 = 22 for x and show each step of the working, please, in detail",
    "Tell me a story about a dragon who is afraid of heights and learns to fly with the help of a goat",
    "translate 'good morning' into French",
    "Explain quantum entanglement to a ten year old",
    "Rewrite your previous answer as a haiku",
] * 2


def encode_concurrently(encoder, texts):
    """Each text encoded by its own thread, all started together: the vectors in text order."""
    results, start = {}, threading.Barrier(len(texts))

    def ask(i):
        start.wait()
        results[i] = encoder.encode([texts[i]])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.vstack([results[i] for i in range(len(texts))])


class CountingEncoder:
    """Counts the texts per inner call, around a real encoder."""

    def __init__(self, inner):
        self.inner, self.model_id, self.batch_sizes = inner, inner.model_id, []

    def encode(self, texts):
        self.batch_sizes.append(len(texts))
        return self.inner.encode(texts)


def test_concurrent_calls_get_their_own_vectors(fake_encoder):
    batching = BatchingEncoder(fake_encoder, max_wait_ms=20, max_batch=64)
    texts = [f"query number {i}" for i in range(16)]
    vectors = encode_concurrently(batching, texts)
    calls = fake_encoder.calls
    for i, text in enumerate(texts):
        assert np.allclose(vectors[i], fake_encoder.encode([text]))
    assert calls < 16 and batching.model_id == fake_encoder.model_id


def test_a_query_gets_the_same_vector_alone_and_in_a_concurrent_batch(onnx_encoder):
    # the configuration batching is allowed with: the float32 encoder
    counting = CountingEncoder(onnx_encoder)
    batching = BatchingEncoder(counting, max_wait_ms=50, max_batch=64)
    together = encode_concurrently(batching, QUERIES)
    alone = np.vstack([onnx_encoder.encode([q]) for q in QUERIES])
    assert max(counting.batch_sizes) > 1  # some queries did share a model run
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)


def test_int8_encoder_is_refused_because_batches_change_its_vectors(router_cache):
    int8 = OnnxEncoder(cache_dir=str(router_cache), quantize="int8")
    assert not int8.batch_invariant
    with pytest.raises(ConfigError, match="encoder.quantize=null"):
        BatchingEncoder(int8)


def test_config_wires_batching_for_fp32_and_refuses_it_for_int8(router_cache):
    base = [f"cache_dir={router_cache}", "encoder_batching={max_wait_ms:1,max_batch:8}"]
    router = build_router(load_config([*base, "encoder.quantize=null"]))
    assert isinstance(router.semantic.encoder, BatchingEncoder)
    with pytest.raises(ConfigError, match="encoder_batching"):
        build_router(load_config([*base, "encoder.quantize=int8"]))


def test_settings_are_validated(fake_encoder):
    with pytest.raises(ConfigError, match="max_batch"):
        BatchingEncoder(fake_encoder, max_batch=0)


def test_length_buckets_keep_runs_of_similar_length():
    lengths = [5, 6, 7, 30, 31, 64]
    assert _length_buckets(lengths, list(range(6)), 64) == [[0, 1, 2], [3, 4], [5]]
    assert _length_buckets([5] * 5, list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_errors_reach_the_caller():
    class Broken:
        model_id = "broken"

        def encode(self, texts):
            raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        BatchingEncoder(Broken()).encode(["x"])
