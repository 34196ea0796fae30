import numpy as np
import pytest

from router.encoders import OnnxEncoder, SentenceTransformerEncoder, head_tail_ids
from router.errors import ConfigError

pytestmark = pytest.mark.model


def test_head_tail_ids():
    assert head_tail_ids([1, 2, 3, 4, 5], 2, 1) == [1, 2, 5]
    assert head_tail_ids([1, 2], 2, 1) == [1, 2]
    assert head_tail_ids([1, 2, 3, 4], 2, 0) == [1, 2]


def test_onnx_matches_sentence_transformers_on_short_text(onnx_encoder):
    texts = ["Write a haiku about the sea.", "What's the boiling point of water at altitude?"]
    a = onnx_encoder.encode(texts)
    b = SentenceTransformerEncoder().encode(texts)
    assert a.shape == b.shape == (2, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert np.allclose((a * b).sum(axis=1), 1.0, atol=1e-3)


def test_batches_agree_with_single_texts(onnx_encoder):
    texts = ["short", "a much longer sentence with many more words in it than the first", "mid length one"]
    batch = onnx_encoder.encode(texts)
    for i, text in enumerate(texts):
        assert np.allclose(batch[i], onnx_encoder.encode([text])[0], atol=1e-4)


def test_long_input_is_cut_to_head_and_tail(onnx_encoder):
    long = "Summarize this article. " + "word " * 200_000 + "The end, tl;dr?"
    ids = onnx_encoder.token_ids(long)
    assert len(ids) == 64
    assert onnx_encoder._tokenizer.decode(ids[-6:-1]).replace(" ", "").endswith("tl;dr?")
    assert onnx_encoder.encode([long]).shape == (1, 384)
    assert onnx_encoder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("kwargs", [{"max_tokens": 4}, {"max_tokens": 512}, {"tail_tokens": 200}])
def test_window_is_validated(kwargs):
    with pytest.raises(ConfigError, match="encoder"):
        OnnxEncoder(**kwargs)
