"""Benchmarks over labelled queries: per-tier latency and the feedback loop (accuracy is forensics.metrics).

The command line is forensics/__main__.py; this module keeps its old entry point:

    python -m forensics.benchmark_suite accuracy --data FILE [--exemplars FILE] [--store STORE] [--json] [key=value ...]
    python -m forensics.benchmark_suite latency  --data FILE [--peer semantic-router] [--json] [key=value ...]
    python -m forensics.benchmark_suite feedback --data FILE [--fraction 0.1] [--json] [key=value ...]
    python -m forensics.benchmark_suite sweep    --data FILE [--out DIR] [--json] [key=v1,v2 ...]
    python -m forensics.benchmark_suite sweep --e2e --data FILE [--per-route 3] [--out DIR] [key=value ...]
    python -m forensics.benchmark_suite calibrate --data FILE [--out FILE.yaml] [--plots DIR] [--json] [key=value ...]

With --json the last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forensics.metrics import evaluate, percentile_us, progress
from forensics.peers import Peer
from router.errors import RouterError
from router.hybrid import HybridRouter
from router.schema import LabelledQuery
from router.text import clean_query

__all__ = ["evaluate", "measure_feedback", "measure_latency", "percentile_us", "sentence_transformers_baseline"]


def _time_each(
    calls: dict[str, Callable[[str], Any]], queries: Sequence[str], desc: str, block: int = 1
) -> dict[str, list[int]]:
    """Nanoseconds per call: every function runs on a block of `block` queries before the next block."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    blocks = [queries[at : at + block] for at in range(0, len(queries), block)]
    for chunk in progress(blocks, desc):
        for name, fn in calls.items():
            for query in chunk:
                start = time.perf_counter_ns()
                fn(query)
                samples[name].append(time.perf_counter_ns() - start)
    return samples


def measure_latency(
    router: HybridRouter,
    queries: Sequence[str],
    baseline: Callable[[str], Any] | None = None,
    warmup: int = 10,
    peer: Peer | None = None,
) -> dict[str, Any]:
    """Time L1, L2, the whole decision, the baseline and a peer's decision on every query, one at a time.

    L1 and the whole decision are timed in passes of their own: interleaved with model runs they
    would measure cache misses left by the model rather than their own cost. L2, the baseline and
    the peer all run a model and take turns in blocks of 16 queries, so that drift in machine load
    hits them alike. Not query by query: PyTorch's OpenMP threads spin on for a while after each
    call and slowed the onnxruntime call right after one (L2 p50 8.6 ms query by query, 6.2 ms in
    blocks, in two runs minutes apart).
    """
    queries = [clean_query(q) for q in queries]
    passes: list[tuple[str, dict[str, Callable[[str], Any]]]] = []
    if router.keyword is not None:
        passes.append(("L1", {"l1": router.keyword.route}))
    passes.append(("decision", {"decision": router.route}))
    models: dict[str, Callable[[str], Any]] = {}
    if router.semantic is not None:
        models["l2"] = router.semantic.route
    if baseline is not None:
        models["st_encode"] = baseline
    if peer is not None:
        models["peer_decision"] = peer.decide
    if models:
        passes.append(("L2 and baseline", models))
    samples: dict[str, list[int]] = {}
    for desc, calls in passes:
        block = 16 if calls is models else 1
        _time_each(calls, queries[:warmup], f"warm-up {desc}", block)
        samples.update(_time_each(calls, queries, f"timing {desc}", block))
    report: dict[str, Any] = {"n": len(queries)}
    for name in ("l1", "l2", "decision", "st_encode", "peer_decision"):
        if name in samples:
            report[f"{name}_p50_us"] = percentile_us(samples[name], 50)
            report[f"{name}_p99_us"] = percentile_us(samples[name], 99)
    if "l2" in samples and "st_encode" in samples:
        report["l2_vs_st_encode"] = round(report["l2_p50_us"] / report["st_encode_p50_us"], 3)
    if peer is not None:
        report["peer"] = f"{peer.name} {peer.version}"
        report["decision_speedup_vs_peer"] = round(report["peer_decision_p50_us"] / report["decision_p50_us"], 1)
        if "l2" in samples:  # model against model: our L2 alone, as if L1 had passed on every query
            report["l2_speedup_vs_peer"] = round(report["peer_decision_p50_us"] / report["l2_p50_us"], 2)
    return report


def measure_feedback(
    router: HybridRouter, rows: Sequence[LabelledQuery], fraction: float, seed: int = 0
) -> dict[str, Any]:
    """Feed a random `fraction` of the rows as routing corrections, then score the rest before and after.

    Corrections go through Flywheel.correct, the code path behind the UI's "should have gone to"
    button, into a throw-away store. Rows the router already sends to their labelled route (at the
    moment they are fed) are skipped, as a user would not correct them: `n_fed` counts the corrections
    stored and `n_already_right` the rows skipped.
    """
    from forensics.feedback import Flywheel, SameRouteError
    from forensics.preference_store import PreferenceStore

    if not 0 < fraction < 1:
        raise RouterError(f"--fraction must be between 0 and 1 (exclusive), got {fraction}.")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(rows) * fraction))
    fed, held = [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]
    before = evaluate(router, held)
    with tempfile.TemporaryDirectory() as tmp, PreferenceStore(Path(tmp) / "feedback.sqlite3") as store:
        flywheel = Flywheel(store, router, app_version="benchmark")
        already_right = 0
        for row in progress(fed, "feeding corrections"):
            try:
                flywheel.correct(row.query, router.route(row.query), row.route)
            except SameRouteError:
                already_right += 1
        settle = getattr(router.semantic, "settle", None)
        if settle is not None:  # a strategy that refits with corrections in the background
            settle()
        after = evaluate(router, held)
    return {
        "n_fed": len(fed) - already_right, "n_already_right": already_right, "n_eval": len(held),
        "before": before["accuracy"], "after": after["accuracy"],
        "lift": round(after["accuracy"] - before["accuracy"], 4),
        "expert_before": before["expert_accuracy"], "expert_after": after["expert_accuracy"],
        "rules_corrected": len(router.contested_rules),
    }


def sentence_transformers_baseline() -> Callable[[str], Any]:
    """A plain sentence-transformers encode() of one query with the same bundled model."""
    from sentence_transformers import SentenceTransformer

    from router.encoders import bundled_model_dir

    model = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    return lambda query: model.encode(query, show_progress_bar=False)


if __name__ == "__main__":  # the historical entry point: python -m forensics.benchmark_suite ...
    from forensics.__main__ import main

    sys.exit(main())
