"""Routing metrics over labelled queries, shared by every benchmark (accuracy, sweep, calibrate, feedback)."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from router.hybrid import HybridRouter
from router.schema import LabelledQuery


def percentile_us(samples_ns: Sequence[int], q: float) -> float:
    """The q-th percentile of nanosecond samples, in microseconds.

    >>> percentile_us([1000, 2000, 3000], 50)
    2.0
    """
    return round(float(np.percentile(np.asarray(samples_ns, dtype=np.float64), q)) / 1000, 2)


def progress(items: Sequence[Any], desc: str) -> Any:
    """A progress bar on stderr where stderr is a terminal; the items unchanged elsewhere."""
    return tqdm(items, desc=desc, file=sys.stderr, disable=None, leave=False)


def evaluate(router: HybridRouter, rows: Sequence[LabelledQuery]) -> dict[str, Any]:
    """Route every row and report accuracy overall, per route, per source, per kind and per tier, and per
    dataset with macro averages over datasets when the rows name theirs.

    A row with a `history` is routed as the next turn of that conversation.
    """
    expert_of = {name: r.expert for name, r in router.routes.items()}
    confusion: dict[str, Counter] = defaultdict(Counter)
    tiers: Counter = Counter()
    l1_right = expert_right = right = 0
    by_source: dict[str, list[bool]] = defaultdict(list)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    by_dataset: dict[str, list[tuple[bool, bool]]] = defaultdict(list)  # (route right, expert right)
    contexts: Counter = Counter()
    for row in progress(rows, "routing"):
        decision = router.route(row.query, row.history) if row.history else router.route(row.query)
        ok = decision.route == row.route
        confusion[row.route][decision.route] += 1
        tiers[decision.tier] += 1
        right += ok
        expert_right += decision.expert == expert_of[row.route]
        l1_right += ok and decision.tier == "L1"
        if row.source:
            by_source[row.source].append(ok)
        if row.kind:
            by_kind[row.kind].append(ok)
        if row.dataset:
            by_dataset[row.dataset].append((ok, decision.expert == expert_of[row.route]))
        if decision.conversation is not None:
            contexts[decision.conversation.kind] += 1
    n = len(rows)
    predicted = Counter(p for c in confusion.values() for p in c.elements())
    per_route = {}
    for name in router.routes:
        total = sum(confusion[name].values())
        hits = confusion[name][name]
        per_route[name] = {
            "n": total,
            "accuracy": round(hits / total, 4) if total else None,
            "precision": round(hits / predicted[name], 4) if predicted[name] else None,
        }
    report = {
        "n": n,
        "accuracy": round(right / n, 4),
        "expert_accuracy": round(expert_right / n, 4),
        "per_route": per_route,
        "l1_coverage": round(tiers["L1"] / n, 4),
        "l1_precision": round(l1_right / tiers["L1"], 4) if tiers["L1"] else None,
        "tier_share": {t: round(tiers[t] / n, 4) for t in ("L1", "L2", "default", "context") if t != "context" or tiers[t]},
        "confusion": {t: dict(confusion[t]) for t in router.routes if confusion[t]},
        "per_source": {s: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for s, v in sorted(by_source.items())},
    }
    if by_dataset:  # rows that name their dataset: each dataset counts once in the macro averages
        per = {d: {"n": len(v), "accuracy": round(sum(a for a, _ in v) / len(v), 4),
                   "expert_accuracy": round(sum(e for _, e in v) / len(v), 4)} for d, v in sorted(by_dataset.items())}
        report["per_dataset"] = per
        report["macro_accuracy"] = round(sum(d["accuracy"] for d in per.values()) / len(per), 4)
        report["macro_expert_accuracy"] = round(sum(d["expert_accuracy"] for d in per.values()) / len(per), 4)
    if by_kind:
        report["per_kind"] = {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(by_kind.items())}
    if contexts:  # how the conversation counted: follow-up (kept its route), same topic, new topic
        report["conversation"] = {k: round(c / n, 4) for k, c in sorted(contexts.items())}
    return report
