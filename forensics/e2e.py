"""End-to-end benchmark: real answers from every expert model on a sample of each route's queries.

Records time to first token, tokens/s, total latency, and the router's share of the total, per
expert model and route. Works against any Ollama (or OpenAI-compatible server) the config names.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from forensics import plots
from router.config import build_service, load_config
from router.data import load_labelled
from router.schema import LabelledQuery
from router.service import ChatService, Finished

COLUMNS = ["expert", "model", "route", "n", "answered", "ttft_p50_ms", "tokens_per_s_p50", "total_p50_ms",
           "router_p50_us", "router_share_p50", "errors"]


def sample_per_route(rows: Sequence[LabelledQuery], per_route: int, seed: int = 0) -> list[LabelledQuery]:
    """Up to `per_route` rows of each route, drawn with a fixed seed (file order kept within a route).

    >>> rows = [LabelledQuery(str(i), "a" if i % 2 else "b", i) for i in range(6)]
    >>> sorted(r.route for r in sample_per_route(rows, 2))
    ['a', 'a', 'b', 'b']
    """
    by_route: dict[str, list[LabelledQuery]] = defaultdict(list)
    for row in rows:
        by_route[row.route].append(row)
    rng = random.Random(seed)
    picked = []
    for route in sorted(by_route):
        group = by_route[route]
        keep = sorted(rng.sample(range(len(group)), min(per_route, len(group))))
        picked += [group[i] for i in keep]
    return picked


def _median(values: list[float], digits: int = 2) -> float | None:
    return round(statistics.median(values), digits) if values else None


def measure(service: ChatService, rows: Sequence[LabelledQuery]) -> list[dict[str, Any]]:
    """Ask every expert every sampled query; one result row per (expert, route)."""
    cells: dict[tuple[str, str], list[tuple[float, Finished]]] = defaultdict(list)
    for row in rows:
        router_us = service.route(row.query).timings.total_us
        for name in service.experts:
            done = [e for e in service.ask(name, row.query) if isinstance(e, Finished)][-1]
            cells[(name, row.route)].append((router_us, done))
    out = []
    for (name, route), runs in cells.items():
        answered = [(us, d) for us, d in runs if d.error is None and d.stats is not None]
        stats = [d.stats for _, d in answered]
        out.append({
            "expert": name, "model": service.experts[name].model, "route": route, "n": len(runs),
            "answered": len(answered),
            "ttft_p50_ms": _median([s.ttft_ms for s in stats if s.ttft_ms is not None]),
            "tokens_per_s_p50": _median([s.tokens_per_s for s in stats if s.tokens_per_s is not None]),
            "total_p50_ms": _median([d.total_ms for _, d in answered]),
            "router_p50_us": _median([us for us, _ in runs]),
            # The router's cost as a share of the whole answer: routing time / (routing + answer time).
            "router_share_p50": _median([us / 1000 / (us / 1000 + d.total_ms) for us, d in answered if d.total_ms], 6),
            "errors": sorted({d.error for _, d in runs if d.error})[:3],
        })
    return out


def run_e2e(
    data: str | Path, overrides: Sequence[str] = (), out_dir: str | Path | None = None, per_route: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Sample the labelled file, measure every expert on it, write CSV, JSON and HTML heatmaps."""
    started = time.perf_counter()
    cfg = load_config(overrides)
    service = build_service(cfg)
    rows = sample_per_route(load_labelled(data, routes=list(service.router.routes)), per_route, seed)
    results = measure(service, rows)
    out = Path(out_dir) if out_dir else Path("outputs/e2e") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "e2e.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({**r, "errors": " | ".join(r["errors"])} for r in results)
    report = {"out_dir": str(out), "n_queries": len(rows), "rows": results,
              "wall_s": round(time.perf_counter() - started, 2)}
    (out / "e2e.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    figures = {"e2e_total_latency.html": plots.model_route_heatmap(results, "total_p50_ms", "Total latency p50 (ms)"),
               "e2e_ttft.html": plots.model_route_heatmap(results, "ttft_p50_ms", "Time to first token p50 (ms)"),
               "e2e_router_share.html": plots.model_route_heatmap(results, "router_share_p50",
                                                                  "Router share of the total (p50)", fmt=".2%")}
    report["plots"] = [str(plots.write_html(fig, out / name, plotlyjs="directory")) for name, fig in figures.items()]
    return report


def print_e2e(report: dict[str, Any]) -> None:
    print(f"{'model':<16}{'route':<11}{'n':>3}{'ok':>4}{'ttft ms':>9}{'tok/s':>8}{'total ms':>10}{'router µs':>11}{'share':>8}")
    for r in report["rows"]:
        cells = [r["ttft_p50_ms"], r["tokens_per_s_p50"], r["total_p50_ms"], r["router_p50_us"]]
        text = [f"{c:.1f}" if c is not None else "-" for c in cells]
        share = f"{r['router_share_p50']:.2%}" if r["router_share_p50"] is not None else "-"
        print(f"{r['model']:<16}{r['route']:<11}{r['n']:>3}{r['answered']:>4}{text[0]:>9}{text[1]:>8}{text[2]:>10}"
              f"{text[3]:>11}{share:>8}")
        for error in r["errors"]:
            print(f"    error: {error}")
    print(f"{report['n_queries']} queries x {len({r['expert'] for r in report['rows']})} experts "
          f"in {report['wall_s']} s; results in {report['out_dir']}")
