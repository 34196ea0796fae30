"""Benchmarks over labelled queries: routing accuracy and per-tier latency.

    python -m forensics.benchmark_suite accuracy --data FILE [--exemplars FILE] [--json] [key=value ...]
    python -m forensics.benchmark_suite latency  --data FILE [--json] [key=value ...]
    python -m forensics.benchmark_suite feedback --data FILE [--fraction 0.1] [--json] [key=value ...]
    python -m forensics.benchmark_suite sweep    --data FILE [--out DIR] [--json] [key=v1,v2 ...]
    python -m forensics.benchmark_suite sweep --e2e --data FILE [--per-route 3] [--out DIR] [key=value ...]
    python -m forensics.benchmark_suite calibrate --data FILE [--out FILE.yaml] [--plots DIR] [--json] [key=value ...]

With --json the last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from router.config import build_router, load_config
from router.data import load_labelled
from router.errors import RouterError
from router.hybrid import HybridRouter
from router.schema import LabelledQuery
from router.text import clean_query


def percentile_us(samples_ns: Sequence[int], q: float) -> float:
    """The q-th percentile of nanosecond samples, in microseconds.

    >>> percentile_us([1000, 2000, 3000], 50)
    2.0
    """
    return round(float(np.percentile(np.asarray(samples_ns, dtype=np.float64), q)) / 1000, 2)


def _progress(items: Sequence[Any], desc: str) -> Any:
    return tqdm(items, desc=desc, file=sys.stderr, disable=None, leave=False)


def evaluate(router: HybridRouter, rows: Sequence[LabelledQuery]) -> dict[str, Any]:
    """Route every row and report accuracy overall, per route, per source and per tier."""
    expert_of = {name: r.expert for name, r in router.routes.items()}
    confusion: dict[str, Counter] = defaultdict(Counter)
    tiers: Counter = Counter()
    l1_right = expert_right = right = 0
    by_source: dict[str, list[bool]] = defaultdict(list)
    for row in _progress(rows, "routing"):
        decision = router.route(row.query)
        ok = decision.route == row.route
        confusion[row.route][decision.route] += 1
        tiers[decision.tier] += 1
        right += ok
        expert_right += decision.expert == expert_of[row.route]
        l1_right += ok and decision.tier == "L1"
        if row.source:
            by_source[row.source].append(ok)
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
    return {
        "n": n,
        "accuracy": round(right / n, 4),
        "expert_accuracy": round(expert_right / n, 4),
        "per_route": per_route,
        "l1_coverage": round(tiers["L1"] / n, 4),
        "l1_precision": round(l1_right / tiers["L1"], 4) if tiers["L1"] else None,
        "tier_share": {t: round(tiers[t] / n, 4) for t in ("L1", "L2", "default")},
        "confusion": {t: dict(confusion[t]) for t in router.routes if confusion[t]},
        "per_source": {s: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for s, v in sorted(by_source.items())},
    }


def _time_each(calls: dict[str, Callable[[str], Any]], queries: Sequence[str], desc: str) -> dict[str, list[int]]:
    """Nanoseconds per call, calling every function on one query before moving to the next."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    for query in _progress(queries, desc):
        for name, fn in calls.items():
            start = time.perf_counter_ns()
            fn(query)
            samples[name].append(time.perf_counter_ns() - start)
    return samples


def measure_latency(
    router: HybridRouter, queries: Sequence[str], baseline: Callable[[str], Any] | None = None, warmup: int = 10
) -> dict[str, Any]:
    """Time L1, L2, the whole decision and the baseline on every query, one query at a time.

    L1 and the whole decision are timed in passes of their own: interleaved with model runs they
    would measure cache misses left by the model rather than their own cost. L2 and the baseline
    are interleaved per query, so that drift in machine load hits both alike.
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
    if models:
        passes.append(("L2 and baseline", models))
    samples: dict[str, list[int]] = {}
    for desc, calls in passes:
        _time_each(calls, queries[:warmup], f"warm-up {desc}")
        samples.update(_time_each(calls, queries, f"timing {desc}"))
    report: dict[str, Any] = {"n": len(queries)}
    for name in ("l1", "l2", "decision", "st_encode"):
        if name in samples:
            report[f"{name}_p50_us"] = percentile_us(samples[name], 50)
            report[f"{name}_p99_us"] = percentile_us(samples[name], 99)
    if "l2" in samples and "st_encode" in samples:
        report["l2_vs_st_encode"] = round(report["l2_p50_us"] / report["st_encode_p50_us"], 3)
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
        for row in _progress(fed, "feeding corrections"):
            try:
                flywheel.correct(row.query, router.route(row.query), row.route)
            except SameRouteError:
                already_right += 1
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


def _print_accuracy(report: dict[str, Any]) -> None:
    print(f"n={report['n']}  accuracy={report['accuracy']:.3f}  expert_accuracy={report['expert_accuracy']:.3f}")
    l1p = report["l1_precision"]
    print(f"L1 coverage={report['l1_coverage']:.3f}  L1 precision={'n/a' if l1p is None else f'{l1p:.3f}'}")
    print("tier share: " + "  ".join(f"{t}={s:.3f}" for t, s in report["tier_share"].items()))
    print(f"{'route':<12}{'n':>5}{'accuracy':>10}{'precision':>11}")
    for name, r in report["per_route"].items():
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        prec = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        print(f"{name:<12}{r['n']:>5}{acc:>10}{prec:>11}")


def _print_latency(report: dict[str, Any]) -> None:
    print(f"n={report['n']} (microseconds)")
    for name in ("l1", "l2", "decision", "st_encode"):
        if f"{name}_p50_us" in report:
            print(f"{name:<10} p50={report[f'{name}_p50_us']:>10.1f}  p99={report[f'{name}_p99_us']:>10.1f}")
    if "l2_vs_st_encode" in report:
        print(f"L2 p50 / sentence-transformers encode p50 = {report['l2_vs_st_encode']:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forensics.benchmark_suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("accuracy", "routing accuracy on a labelled file"), ("latency", "per-tier latency"),
                       ("feedback", "accuracy before and after feeding a fraction as corrections")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data", required=True, help='labelled JSONL: {"query": ..., "route": ...} per line')
        p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
        p.add_argument("overrides", nargs="*", help="Hydra-style overrides, e.g. router.semantic.threshold=0.4")
        if name == "accuracy":
            p.add_argument("--exemplars", help="labelled JSONL whose rows are added as L2 utterances")
        elif name == "latency":
            p.add_argument("--no-baseline", action="store_true", help="skip the sentence-transformers baseline")
        else:
            p.add_argument("--fraction", type=float, default=0.1, help="share of rows fed as corrections")
            p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p = sub.add_parser("sweep", help="evaluate a grid of configurations (key=v1,v2 overrides)")
    p.add_argument("--data", required=True, help='labelled JSONL: {"query": ..., "route": ...} per line')
    p.add_argument("--out", help="results folder (default outputs/sweeps/<timestamp>/)")
    p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
    p.add_argument("--e2e", action="store_true",
                   help="end-to-end: real answers from every expert model on a sample of each route")
    p.add_argument("--per-route", type=int, default=3, help="with --e2e: queries sampled per route")
    p.add_argument("overrides", nargs="*", help="Hydra-style sweeps, e.g. router=keyword,hybrid router.semantic.threshold=0.1,0.2")
    p = sub.add_parser("calibrate", help="fit the L2 threshold(s) and write them as a router config")
    p.add_argument("--data", required=True, help='labelled JSONL: {"query": ..., "route": ...} per line')
    p.add_argument("--out", default=None, help="config file to write (default conf/router/calibrated.yaml)")
    p.add_argument("--plots", help="folder for the threshold curve (default: next to the config)")
    p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
    p.add_argument("overrides", nargs="*", help="Hydra-style overrides of the config to calibrate")
    args = parser.parse_args(argv)
    if args.command in ("sweep", "calibrate"):
        return _grid_command(args)
    overrides = list(args.overrides)
    if getattr(args, "exemplars", None):
        overrides.append(f"exemplars={json.dumps(args.exemplars)}")
    try:
        router = build_router(load_config(overrides))
        rows = load_labelled(args.data, routes=list(router.routes))
        if args.command == "accuracy":
            report = evaluate(router, rows)
            _print_accuracy(report)
        elif args.command == "feedback":
            report = measure_feedback(router, rows, args.fraction, args.seed)
            print(f"fed {report['n_fed']} corrections ({report['n_already_right']} rows already routed right, "
                  f"skipped); accuracy on the other {report['n_eval']}: "
                  f"{report['before']:.3f} -> {report['after']:.3f} (lift {report['lift']:+.3f})")
        else:
            baseline = None if args.no_baseline else sentence_transformers_baseline()
            report = measure_latency(router, [r.query for r in rows], baseline)
            _print_latency(report)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def _grid_command(args: argparse.Namespace) -> int:
    """The sweep and calibrate subcommands (forensics.sweep, forensics.calibrate)."""
    from forensics import calibrate, e2e, sweep

    try:
        if args.command == "sweep" and args.e2e:
            report = e2e.run_e2e(args.data, args.overrides, args.out, args.per_route)
            e2e.print_e2e(report)
        elif args.command == "sweep":
            report = sweep.run_sweep(args.data, args.overrides, args.out)
            sweep.print_sweep(report)
            report = {k: v for k, v in report.items() if k not in ("configs", "confusion")}  # in configs.json
        else:
            out = args.out or calibrate.CONFIG_DIR / "router" / "calibrated.yaml"
            report = calibrate.run_calibrate(args.data, args.overrides, out, args.plots)
            calibrate.print_calibration(report)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
    return 130 if report.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
