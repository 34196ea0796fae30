"""L1 rule audit: how often each keyword rule decides, how often it is right, and where it is wrong.

    python -m forensics rules --data FILE [--data FILE2 ...] [--min-precision 0.98] [--json] [key=value ...]

A rule *decides* a query when it is the winning L1 rule (HybridRouter's decision.rule); a rule that
matches but always loses on priority is *shadowed*; one that matches no query *never fired*.
Precision counts decisions whose labelled route is the rule's route. The per-rule counts and wrong
examples name each row's `dataset` (else its `source`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from router.config import build_router, load_config
from router.data import load_labelled
from router.errors import ConfigError, RouterError
from router.hybrid import HybridRouter
from router.patterns import PatternSet
from router.schema import LabelledQuery
from router.text import clean_query, head_tail

MIN_PRECISION = 0.98
MAX_EXAMPLES = 50  # wrong rows kept per rule
QUERY_CHARS = 100  # how much of a query a wrong example shows


def ratio(hits: int, n: int) -> float | None:
    """hits / n rounded to 4 places, None for n == 0.

    >>> ratio(49, 50), ratio(0, 0)
    (0.98, None)
    """
    return round(hits / n, 4) if n else None


def dataset_of(row: LabelledQuery) -> str:
    """The dataset a row names (`dataset`, else `source`, else '-').

    >>> dataset_of(LabelledQuery("hi", "chitchat", 1, source="clinc150"))
    'clinc150'
    """
    return row.dataset or row.source or "-"


def keyword_router(overrides: Sequence[str] = ()) -> HybridRouter:
    """The configured router with its L1 tier alone: the audit needs no encoder."""
    cfg = load_config(overrides)
    if not cfg.router.get("keyword"):
        raise ConfigError("The rule audit needs an L1 tier; this router has none. Use router=hybrid or router=keyword.")
    cfg.router.semantic = None
    return build_router(cfg)


def audit_rules(router: HybridRouter, files: dict[str, Sequence[LabelledQuery]],
                min_precision: float = MIN_PRECISION, max_examples: int = MAX_EXAMPLES) -> dict[str, Any]:
    """Route every row with the router's L1 tier and tally each rule's decisions per file and dataset.

    `files` maps a file name to its labelled rows.
    """
    keyword = router.keyword
    if keyword is None:
        raise ConfigError("The rule audit needs an L1 tier; this router has none. Use router=hybrid or router=keyword.")
    rules = list(dict.fromkeys(keyword.rules))  # a pattern listed twice under one route is one rule
    matcher = PatternSet([p for _, p in rules], engine="re2")  # every rule that matches, not just the winner
    index = {rule: i for i, rule in enumerate(rules)}
    fired = [Counter() for _ in rules]  # per file
    correct = [Counter() for _ in rules]
    by_dataset = [defaultdict(lambda: [0, 0]) for _ in rules]  # dataset -> [fired, correct]
    wrong: list[list[dict[str, str]]] = [[] for _ in rules]
    matched = [0] * len(rules)
    per_file = {}
    for name, rows in files.items():
        decided = right = 0
        for row in rows:
            dataset, query = dataset_of(row), clean_query(row.query)
            window = head_tail(query, keyword.head_chars, keyword.tail_chars)
            for i, _ in matcher.match(window.encode("utf-8")):
                matched[i] += 1
            d = router.route(query)
            if d.tier != "L1" or d.rule is None:
                continue
            i = index[(d.rule.route, d.rule.pattern)]
            ok = d.route == row.route
            decided, right = decided + 1, right + ok
            fired[i][name] += 1
            correct[i][name] += ok
            by_dataset[i][dataset][0] += 1
            by_dataset[i][dataset][1] += ok
            if not ok and len(wrong[i]) < max_examples:
                wrong[i].append({"query": " ".join(row.query.split())[:QUERY_CHARS], "route": row.route,
                                 "dataset": dataset, "file": name})
        per_file[name] = {"n": len(rows), "l1_decisions": decided, "l1_coverage": ratio(decided, len(rows)),
                          "l1_precision": ratio(right, decided)}
    table = []
    for i, (route, pattern) in enumerate(rules):
        n, hits = sum(fired[i].values()), sum(correct[i].values())
        table.append({
            "route": route, "pattern": pattern, "fired": n, "correct": hits, "precision": ratio(hits, n),
            "matched": matched[i],
            "per_file": {f: {"fired": fired[i][f], "correct": correct[i][f]} for f in files if fired[i][f]},
            "per_dataset": {ds: {"fired": c[0], "correct": c[1]} for ds, c in sorted(by_dataset[i].items())},
            "wrong": wrong[i],
        })
    decided = sum(f["l1_decisions"] for f in per_file.values())
    right = sum(r["correct"] for r in table)
    n_rows = sum(f["n"] for f in per_file.values())
    brief = ("route", "pattern", "fired", "correct", "precision")
    return {
        "files": per_file,
        "all": {"n": n_rows, "l1_decisions": decided, "l1_coverage": ratio(decided, n_rows),
                "l1_precision": ratio(right, decided)},
        "min_precision": min_precision,
        "rules": table,
        "never_fired": [{"route": r["route"], "pattern": r["pattern"]} for r in table if not r["matched"]],
        "shadowed": [{"route": r["route"], "pattern": r["pattern"], "matched": r["matched"]}
                     for r in table if r["matched"] and not r["fired"]],
        "below": [{k: r[k] for k in brief} for r in table if r["fired"] and r["precision"] < min_precision],
    }


def print_audit(report: dict[str, Any], examples: int = 3) -> None:
    """The audit as text: per-file figures, rules below the bar with wrong examples, silent rules."""
    for name, f in [*report["files"].items(), ("all files", report["all"])]:
        p = f["l1_precision"]
        print(f"{name}: n={f['n']}  L1 coverage={f['l1_coverage']:.3f}  "
              f"L1 precision={'n/a' if p is None else f'{p:.3f}'}")
    print(f"\n{'fired':>6}{'right':>6}{'prec':>7}  route: pattern")
    for r in sorted(report["rules"], key=lambda r: (-r["fired"], r["route"])):
        if not r["fired"]:
            continue
        flag = "  <" if r["precision"] < report["min_precision"] else ""
        print(f"{r['fired']:>6}{r['correct']:>6}{r['precision']:>7.3f}  {r['route']}: {r['pattern']}{flag}")
        if flag:
            for w in r["wrong"][:examples]:
                print(f"{'':>21}x {w['route']} [{w['dataset']}] {w['query'][:70]!r}")
    print(f"\n{len(report['below'])} rule(s) below precision {report['min_precision']}; "
          f"{len(report['shadowed'])} shadowed (match, never decide); {len(report['never_fired'])} never fired:")
    for r in report["never_fired"]:
        print(f"  {r['route']}: {r['pattern']}")


def add_parser(sub: Any) -> None:
    """The `rules` subcommand of python -m forensics."""
    p = sub.add_parser("rules", help="audit every L1 keyword rule: decisions, precision, wrong rows")
    p.add_argument("--data", required=True, action="append", help="labelled JSONL; repeat for several files")
    p.add_argument("--min-precision", type=float, default=MIN_PRECISION, help="rules below it are listed as `below`")
    p.add_argument("--examples", type=int, default=3, help="wrong rows printed per rule below the bar")
    p.add_argument("--json", action="store_true", help="end with one line of JSON holding the figures")
    p.add_argument("overrides", nargs="*", help="Hydra-style overrides, e.g. router.keyword.head_chars=200")


def run(args: argparse.Namespace) -> int:
    """Run the `rules` subcommand; 2 on a configuration or data error."""
    try:
        router = keyword_router(args.overrides)
        files = {path: load_labelled(path, routes=list(router.routes)) for path in args.data}
        report = audit_rules(router, files, args.min_precision)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_audit(report, args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0
