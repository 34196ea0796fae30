"""The forensics command line: benchmarks over labelled queries.

    python -m forensics.benchmark_suite accuracy --data FILE [--exemplars FILE] [--store STORE] [--json] [key=value ...]
    python -m forensics.benchmark_suite latency  --data FILE [--peer semantic-router] [--json] [key=value ...]
    python -m forensics.benchmark_suite feedback --data FILE [--fraction 0.1] [--json] [key=value ...]
    python -m forensics.benchmark_suite sweep    --data FILE [--out DIR] [--json] [key=v1,v2 ...]
    python -m forensics.benchmark_suite sweep --e2e --data FILE [--per-route 3] [--out DIR] [key=value ...]
    python -m forensics.benchmark_suite calibrate --data FILE [--out FILE.yaml] [--plots DIR] [--json] [key=value ...]
    python -m forensics crossval --data FILE [--data FILE2] [--folds 5] [--seed 0] [--json] [key=value ...]
    python -m forensics.benchmark_suite rules    --data FILE [--data FILE2 ...] [--min-precision 0.98] [--json] [key=value ...]
    python -m forensics.benchmark_suite load     --url URL --data FILE [--concurrency 16] [--duration 30] [--json]

With --json the last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forensics import rules
from forensics.benchmark_suite import measure_feedback, measure_latency, sentence_transformers_baseline
from forensics.metrics import evaluate
from forensics.peers import PEERS, build_peer
from router.config import build_router, load_config
from router.data import load_labelled
from router.errors import RouterError


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
    for kind, r in report.get("per_kind", {}).items():
        print(f"kind {kind}: n={r['n']}  accuracy={r['accuracy']:.3f}")
    if "macro_accuracy" in report:
        print(f"{len(report['per_dataset'])} datasets: macro accuracy={report['macro_accuracy']:.3f}  "
              f"macro expert accuracy={report['macro_expert_accuracy']:.3f}")
    if "conversation" in report:
        print("conversation: " + "  ".join(f"{k}={s:.3f}" for k, s in report["conversation"].items()))


def _print_latency(report: dict[str, Any]) -> None:
    print(f"n={report['n']} (microseconds)")
    for name in ("l1", "l2", "decision", "st_encode", "peer_decision"):
        if f"{name}_p50_us" in report:
            print(f"{name:<14} p50={report[f'{name}_p50_us']:>10.1f}  p99={report[f'{name}_p99_us']:>10.1f}")
    if "l2_vs_st_encode" in report:
        print(f"L2 p50 / sentence-transformers encode p50 = {report['l2_vs_st_encode']:.3f}")
    if "peer" in report:
        print(f"{report['peer']} decision p50 / ours = {report['decision_speedup_vs_peer']:.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forensics", description=__doc__,
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
            p.add_argument("--store", help="preference store (SQLite file or URL): its active global corrections "
                                           "are taught to the router first, as the app does at start-up")
        elif name == "latency":
            p.add_argument("--no-baseline", action="store_true", help="skip the sentence-transformers baseline")
            p.add_argument("--peer", choices=PEERS, help="also time this router's decisions (the peers extra)")
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
    rules.add_parser(sub)
    p = sub.add_parser("load", help="drive POST /v1/route of a running server with concurrent clients")
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:7860")
    p.add_argument("--data", required=True, help='labelled JSONL: {"query": ..., "route": ...} per line')
    p.add_argument("--concurrency", type=int, default=16, help="clients sending at once")
    p.add_argument("--duration", type=float, default=30.0, help="seconds")
    p.add_argument("--api-key", default=None, help="Bearer key (default: $WORKBENCH_API_KEY)")
    p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
    p = sub.add_parser("crossval", help="grouped k-fold over datasets: the new design beside today's, same folds")
    p.add_argument("--data", required=True, action="append", help="labelled JSONL with a 'dataset' per row; repeatable")
    p.add_argument("--folds", type=int, default=5, help="grouped folds; 0: leave one dataset out")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
    p.add_argument("overrides", nargs="*", help="Hydra-style overrides of the new design (encoder.* applies to both)")
    args = parser.parse_args(argv)
    if args.command == "crossval":
        return _crossval_command(args)
    if args.command == "rules":
        return rules.run(args)
    if args.command == "load":
        return _load_command(args)
    if args.command in ("sweep", "calibrate"):
        return _grid_command(args)
    overrides = list(args.overrides)
    if getattr(args, "exemplars", None):
        overrides.append(f"exemplars={json.dumps(args.exemplars)}")
    try:
        router = build_router(load_config(overrides))
        rows = load_labelled(args.data, routes=list(router.routes))
        if args.command == "accuracy":
            restored = _restore(router, args.store) if args.store else None
            report = evaluate(router, rows)
            _print_accuracy(report)
            if restored is not None:
                report["corrections_restored"] = restored
                print(f"with {restored} stored correction(s) from {args.store}")
        elif args.command == "feedback":
            report = measure_feedback(router, rows, args.fraction, args.seed)
            print(f"fed {report['n_fed']} corrections ({report['n_already_right']} rows already routed right, "
                  f"skipped); accuracy on the other {report['n_eval']}: "
                  f"{report['before']:.3f} -> {report['after']:.3f} (lift {report['lift']:+.3f})")
        else:
            peer = build_peer(args.peer, list(router.routes.values())) if args.peer else None
            baseline = None if args.no_baseline else sentence_transformers_baseline()
            report = measure_latency(router, [r.query for r in rows], baseline, peer=peer)
            _print_latency(report)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def _restore(router: Any, location: str) -> int:
    """Teach the router a store's active global corrections, through the app's code path (Flywheel.restore)."""
    from forensics.feedback import Flywheel
    from forensics.preference_store import PreferenceStore, StoreError

    file = location.removeprefix("sqlite:///") if "://" not in location or location.startswith("sqlite:///") else None
    if file is not None and not Path(file).is_file():  # opening would create an empty store: a typo, most likely
        raise StoreError(f"No preference store at {file}. Pass the app's store file (store.path) or URL (store.url).")
    with PreferenceStore(location) as store:
        restored = Flywheel(store, router).restore()
    settle = getattr(router.semantic, "settle", None)
    if settle is not None:  # a strategy that refits with corrections in the background
        settle()
    return restored


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


def _load_command(args: argparse.Namespace) -> int:
    """The load subcommand (forensics.load)."""
    import os

    from forensics import load

    try:
        rows = load_labelled(args.data)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = load.run_load(args.url, rows, args.concurrency, args.duration,
                           args.api_key or os.environ.get("WORKBENCH_API_KEY"))
    load.print_load(report)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0 if report["requests"] else 1


def _crossval_command(args: argparse.Namespace) -> int:
    """The crossval subcommand (forensics.crossval)."""
    from forensics import crossval

    try:
        report = crossval.run_crossval(args.data, folds=args.folds, seed=args.seed, overrides=args.overrides)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    crossval.print_crossval(report)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
