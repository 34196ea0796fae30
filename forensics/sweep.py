"""Grid sweeps over router configurations: accuracy, tier shares and decision latency per route.

    python -m forensics.benchmark_suite sweep --data FILE [--out DIR] [--json] router=keyword,hybrid router.semantic.threshold=0.1,0.2

Each query is embedded once per encoder setting (MemoEncoder), however many configurations the
grid holds, so decision latencies in a sweep are those of cached encodes (see LATENCY_NOTE).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any


from forensics.encoder_cache import EncoderPool
from forensics.metrics import percentile_us
from router.config import build_router, config_as_dict, config_key, load_config, split_applicable
from router.data import load_labelled
from router.errors import ConfigError, RouterError
from router.hybrid import HybridRouter
from router.patterns import add_word_boundaries
from router.schema import LabelledQuery
from router.strategies.trained import TrainedRoutingStrategy
from router.text import clean_query, head_tail

LATENCY_NOTE = (
    "Decision latencies in a sweep use cached query embeddings (each query is encoded once per encoder "
    "setting), so they measure L1 plus L2 similarity search, not the model; run the latency subcommand "
    "for honest end-to-end figures."
)
COLUMNS = ["config_id", "overrides", "strategy", "route", "n", "accuracy", "expert_accuracy",
           "l1_share", "l2_share", "default_share", "p50_us", "p99_us", "same_as", "error"]
SAMPLE_SIZE = 20
SWEPT = ("router", "encoder", "experts", "exemplars")  # the parts of a config configs.json keeps


def split_values(text: str) -> list[str]:
    """Split a sweep value on commas outside brackets, braces, parentheses and quotes.

    >>> split_values("0.1,[a,b],'x,y'")
    ['0.1', '[a,b]', "'x,y'"]
    """
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def expand_grid(overrides: Sequence[str]) -> list[list[str]]:
    """The cartesian product of Hydra-style sweep overrides, one override list per configuration.

    >>> expand_grid(["router=keyword,hybrid", "router.semantic.margin=0"])
    [['router=keyword', 'router.semantic.margin=0'], ['router=hybrid', 'router.semantic.margin=0']]
    """
    axes = []
    for override in overrides:
        key, eq, value = override.partition("=")
        if not eq or not key:
            raise ConfigError(f"Sweep override {override!r} is not key=value[,value...] (e.g. router.semantic.threshold=0.1,0.2).")
        axes.append([f"{key}={v}" for v in split_values(value)])
    return [list(combo) for combo in itertools.product(*axes)]


def _strategy(router: HybridRouter) -> str:
    if router.keyword and router.semantic:
        return "trained" if isinstance(router.semantic, TrainedRoutingStrategy) else "hybrid"
    return "keyword" if router.keyword else "semantic"


def _effective(combo: list[str], cache: dict[tuple[str, ...], Any]) -> tuple[list[str], list[str]]:
    """Split overrides into those that apply and those aimed under a tier the chosen router leaves out.

    `router=keyword router.semantic.threshold=0.2` ignores the threshold, so a keyword row appears
    once per threshold with the same figures. The config groups are composed once per choice.
    """
    groups = tuple(o for o in combo if "." not in o.partition("=")[0])
    if groups not in cache:
        try:
            cache[groups] = load_config(groups)
        except RouterError:
            cache[groups] = None
    return split_applicable(combo, cache[groups])


def evaluate_config(router: HybridRouter, rows: Sequence[LabelledQuery]) -> dict[str, Any]:
    """Route every row once, timing each decision; per-route and overall figures plus the confusion."""
    expert_of = {name: r.expert for name, r in router.routes.items()}
    groups: dict[str, list[tuple[bool, bool, str, int]]] = defaultdict(list)
    confusion: dict[str, Counter] = defaultdict(Counter)
    decisions = []
    for row in rows:
        start = time.perf_counter_ns()
        d = router.route(row.query)
        elapsed = time.perf_counter_ns() - start
        decisions.append(d)
        confusion[row.route][d.route] += 1
        item = (d.route == row.route, d.expert == expert_of[row.route], d.tier, elapsed)
        groups[row.route].append(item)
        groups["all"].append(item)
    figures = {}
    for route in ["all", *[r for r in router.routes if r in groups]]:
        items = groups[route]
        n, tiers = len(items), Counter(t for _, _, t, _ in items)
        figures[route] = {
            "n": n, "accuracy": round(sum(i[0] for i in items) / n, 4),
            "expert_accuracy": round(sum(i[1] for i in items) / n, 4),
            "l1_share": round(tiers["L1"] / n, 4), "l2_share": round(tiers["L2"] / n, 4),
            "default_share": round(tiers["default"] / n, 4),
            "p50_us": percentile_us([i[3] for i in items], 50), "p99_us": percentile_us([i[3] for i in items], 99),
        }
    return {"figures": figures, "confusion": {t: dict(c) for t, c in confusion.items()}, "decisions": decisions}


def never_fired_rules(router: HybridRouter, rows: Sequence[LabelledQuery]) -> list[dict[str, str]]:
    """L1 rules (route, pattern) that match no query's scanned window."""
    keyword = router.keyword
    windows = [head_tail(clean_query(r.query), keyword.head_chars, keyword.tail_chars) for r in rows]
    silent = []
    for route, pattern in keyword.rules:
        regex = re.compile(add_word_boundaries(pattern), re.IGNORECASE | re.ASCII)
        if not any(regex.search(w) for w in windows):
            silent.append({"route": route, "pattern": pattern})
    return silent


def l1_l2_disagreements(router: HybridRouter, rows: Sequence[LabelledQuery], decisions: Sequence[Any]) -> dict[str, Any]:
    """Queries where L1 fired and L2's best route differs: count, who was right, and a sample."""
    found = []
    for row, d in zip(rows, decisions):
        if d.tier != "L1":
            continue
        l2 = router.semantic.rank(clean_query(row.query)).best.route
        if l2 != d.route:
            found.append({"query": row.query[:200], "l1_route": d.route, "l2_route": l2, "true_route": row.route})
    return {
        "count": len(found),
        "l1_right": sum(f["l1_route"] == f["true_route"] for f in found),
        "l2_right": sum(f["l2_route"] == f["true_route"] for f in found),
        "sample": found[:SAMPLE_SIZE],
    }


class _Writer:
    """Results on disk after every configuration: CSV appended, JSON files rewritten.

    configs.json keeps the routing parts of each configuration (SWEPT) and names its route table,
    which routes.json holds once: the table is most of a config's size and rarely varies in a sweep.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.tables: dict[str, Any] = {}
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "results.csv").open("w", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, COLUMNS).writeheader()

    def add(self, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
        with (self.out_dir / "results.csv").open("a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerows(
                {**r, "overrides": " ".join(r["overrides"])} for r in rows)
        self.dump(report)

    def record(self, cfg: Any) -> dict[str, Any]:
        """What configs.json keeps of a composed config; a route table not seen before goes to routes.json."""
        data = config_as_dict(cfg)
        table = hashlib.sha256(config_key(cfg.routes).encode("utf-8")).hexdigest()[:12]
        if table not in self.tables:
            self.tables[table] = data.get("routes")
            self._write("routes.json", self.tables)
        return {**{k: data.get(k) for k in SWEPT}, "routes": table}

    def dump(self, report: dict[str, Any]) -> None:
        self._write("results.json", {k: report[k] for k in ("latency_note", "rows", "failed", "interrupted")})
        self._write("configs.json", report["configs"])
        self._write("analytics.json", report["analytics"])

    def _write(self, name: str, payload: Any) -> None:
        partial = self.out_dir / f".{name}.tmp"
        partial.write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        partial.replace(self.out_dir / name)


def _rows_of(config_id: str, combo: list[str], strategy: str, figures: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return [{"config_id": config_id, "overrides": combo, "strategy": strategy, "route": route, **f,
             "same_as": None, "error": None, **extra} for route, f in figures.items()]


def run_sweep(
    data: str | Path, overrides: Sequence[str], out_dir: str | Path | None = None,
    pool: EncoderPool | None = None, plotlyjs: str = "directory",
) -> dict[str, Any]:
    """Evaluate every configuration of the grid on a labelled file, writing results as it goes.

    A configuration that fails gets one row with its error; Ctrl-C stops the sweep and keeps the
    rows finished so far (`interrupted` is then True). Returns the report that --json prints.
    `plotlyjs`: where the HTML pages find plotly.js (see write_plots).
    """
    started = time.perf_counter()
    grid = expand_grid(overrides)
    try:
        names = list(load_config(grid[0]).routes)
    except RouterError:
        names = list(load_config().routes)
    rows = load_labelled(data, routes=names)
    out = Path(out_dir) if out_dir else Path("outputs/sweeps") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    writer, pool = _Writer(out), pool or EncoderPool()
    report: dict[str, Any] = {"out_dir": str(out), "latency_note": LATENCY_NOTE, "n_configs": len(grid),
                              "rows": [], "failed": [], "interrupted": False, "configs": {}, "analytics": {},
                              "confusion": {}}
    done: dict[tuple[str, ...], str] = {}
    silent_cache: dict[str, list[dict[str, str]]] = {}
    group_cache: dict[tuple[str, ...], Any] = {}
    queries = [clean_query(r.query) for r in rows]
    width = len(str(len(grid) - 1))
    for i, combo in enumerate(grid):
        config_id = f"c{i:0{width}d}"
        try:
            keep, ignored = _effective(combo, group_cache)
            twin = done.get(tuple(keep))
            if twin is not None:  # same effective configuration as an earlier one: same figures
                new = [{**r, "config_id": config_id, "overrides": combo, "same_as": twin}
                       for r in report["rows"] if r["config_id"] == twin]
                report["configs"][config_id] = {**report["configs"][twin], "overrides": combo, "ignored": ignored}
                report["analytics"][config_id] = {"same_as": twin}
            else:
                cfg = load_config(keep)
                encoder = pool.get(cfg.encoder) if cfg.router.get("semantic") else None
                if encoder is not None:
                    encoder.encode(queries)  # one batched pass; every later encode is a lookup
                router = build_router(cfg, encoder=encoder)
                report["configs"][config_id] = {"overrides": combo, "ignored": ignored, "config": writer.record(cfg)}
                result = evaluate_config(router, rows)
                new = _rows_of(config_id, combo, _strategy(router), result["figures"])
                report["confusion"][config_id] = result["confusion"]
                if router.keyword is not None:
                    key = config_key(cfg.router.keyword) + config_key(cfg.routes)
                    if key not in silent_cache:
                        silent_cache[key] = never_fired_rules(router, rows)
                    report["analytics"][config_id] = {
                        "never_fired": silent_cache[key],
                        "l1_l2_disagreements": l1_l2_disagreements(router, rows, result["decisions"])
                        if router.semantic is not None else None,
                    }
                done[tuple(keep)] = config_id
        except KeyboardInterrupt:
            report["interrupted"] = True
            print(f"interrupted at {config_id}; keeping {len(done)} finished configuration(s)", file=sys.stderr)
            break
        except Exception as e:  # noqa: BLE001 - one broken configuration must not lose the sweep
            message = f"{type(e).__name__}: {e}" if not isinstance(e, RouterError) else str(e)
            new = [{"config_id": config_id, "overrides": combo, "strategy": None, "route": "all",
                    **{c: None for c in COLUMNS[4:-2]}, "same_as": None, "error": message}]
            report["failed"].append({"config_id": config_id, "overrides": combo, "error": message})
        report["rows"] += new
        writer.add(new, report)
    report["wall_s"] = round(time.perf_counter() - started, 2)
    report["best"] = best_config(report["rows"])
    writer.dump(report)
    report["plots"] = write_plots(report, out, plotlyjs)
    return report


def best_config(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The "all" row with the highest accuracy; ties go to the faster decision."""
    scored = [r for r in rows if r["route"] == "all" and r["error"] is None and not r["same_as"]]
    return max(scored, key=lambda r: (r["accuracy"], -r["p50_us"]), default=None)


def write_plots(report: dict[str, Any], out: Path, plotlyjs: str = "directory") -> list[str]:
    """Heatmaps, the latency-accuracy scatter and the best configuration's confusion, as HTML files.

    `plotlyjs`: "directory" writes plotly.js (4.8 MB) into `out`, so the folder stands alone;
    "shared" writes it once into `out`'s parent, for the pages of every run kept there.
    """
    from forensics import plots
    from forensics.workspace import shared_plotlyjs

    if plotlyjs not in ("directory", "shared"):
        raise ValueError(f"plotlyjs is 'directory' or 'shared', not {plotlyjs!r}")

    rows = [r for r in report["rows"] if r["error"] is None]
    if not rows:
        return []
    figures = {"accuracy_heatmap.html": plots.accuracy_heatmap(rows),
               "latency_heatmap.html": plots.latency_heatmap(rows),
               "latency_accuracy.html": plots.latency_accuracy_scatter(rows)}
    best = report.get("best")
    if best and best["config_id"] in report["confusion"]:
        figures["confusion_best.html"] = plots.confusion_chart(
            report["confusion"][best["config_id"]], title=f"Confusion of {best['config_id']}: {' '.join(best['overrides'])}")
    src = shared_plotlyjs(out.parent) if plotlyjs == "shared" else "directory"
    for name, figure in figures.items():
        plots.write_html(figure, out / name, plotlyjs=src)
    return [str(out / name) for name in figures]


def print_sweep(report: dict[str, Any]) -> None:
    print(f"{'config':<7}{'accuracy':>9}{'expert':>8}{'L1':>7}{'L2':>7}{'dflt':>7}{'p50 µs':>10}{'p99 µs':>10}  overrides")
    for r in report["rows"]:
        if r["route"] != "all":
            continue
        if r["error"]:
            print(f"{r['config_id']:<7}  FAILED: {r['error']}  [{' '.join(r['overrides'])}]")
            continue
        print(f"{r['config_id']:<7}{r['accuracy']:>9.3f}{r['expert_accuracy']:>8.3f}{r['l1_share']:>7.3f}"
              f"{r['l2_share']:>7.3f}{r['default_share']:>7.3f}{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}  "
              f"{' '.join(r['overrides'])}" + (f"  (= {r['same_as']})" if r["same_as"] else ""))
    best = report.get("best")
    if best:
        print(f"best: {best['config_id']} accuracy={best['accuracy']:.3f} expert_accuracy={best['expert_accuracy']:.3f} "
              f"p50={best['p50_us']:.1f} µs  [{' '.join(best['overrides'])}]")
    print(f"note: {report['latency_note']}")
    print(f"{report['n_configs']} configurations in {report['wall_s']:.1f} s; results in {report['out_dir']}"
          + ("  (INTERRUPTED)" if report["interrupted"] else ""))
