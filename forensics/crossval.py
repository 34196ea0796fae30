"""Grouped cross-validation: train on some datasets, test on datasets the router never saw.

A dev-set score flatters whatever was tuned on the dev set. Here every dataset is held out once,
whole, so a figure says how the router does on a source nobody tuned it for. Both designs run in
the same folds and the same run: today's (`router=hybrid`: the utterances and the linear head, with the
training folds added as L2 exemplars) and the new one (`router=trained` by default, trained on the
training folds). Configured corpus files that are not being evaluated (`corpus/chat_examples.jsonl`)
are training data in every fold, for both designs.
Each text is embedded once for the whole run (one MemoEncoder memo shared by every fold).

    python -m forensics crossval --data corpus/routing_train.jsonl --data ../shared/data/routing_dev.jsonl
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensics.encoder_cache import MemoEncoder
from forensics.metrics import evaluate, progress
from router.config import build_encoder, build_router, load_config
from router.data import load_labelled
from router.errors import ConfigError
from router.hybrid import HybridRouter, likeliest_expert
from router.schema import LabelledQuery
from router.strategies.trained import corpus_file, corpus_paths

NEW_DESIGN = ("router=trained",)
TODAYS_DESIGN = ("router=hybrid",)  # the design before the trained L2: utterances, linear head, training rows as exemplars
SHARED_PREFIXES = ("encoder", "routes", "experts")  # overrides that apply to today's design too
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.95, 0.05))
POLICIES = ("default", "professor", "second", "expert_mass", "top")


def load_grouped(paths: Sequence[str | Path], routes: Sequence[str]) -> list[LabelledQuery]:
    """Labelled rows from one or more files, with `source` set to each row's `dataset` (the group).

    A row without `dataset` is grouped by its file's name.
    """
    rows: list[LabelledQuery] = []
    for path in paths:
        lines = Path(path).read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        for row in load_labelled(path, routes=routes):
            group = json.loads(lines[row.line - 1]).get("dataset") or Path(path).stem
            rows.append(LabelledQuery(row.query, row.route, row.line, str(group)))
    return rows


def shipped_training_rows(cfg: Any, evaluated: Sequence[str | Path], routes: Sequence[str]) -> list[LabelledQuery]:
    """Rows of the configured corpus files that are not among the `evaluated` files.

    The product trains on them whatever the fold, so both designs get them in every fold's training
    data (today's design as exemplars); they are never tested on.
    """
    semantic = cfg.router.get("semantic") or {}
    if "corpus" not in semantic:
        return []
    seen = {Path(p).expanduser().resolve() for p in evaluated}
    files = [corpus_file(p) for p in corpus_paths(semantic.get("corpus"))]
    return load_grouped([f for f in files if f.resolve() not in seen], routes)


def assign_folds(sizes: Mapping[str, int], folds: int, seed: int = 0) -> dict[str, int]:
    """Put every group in exactly one fold, balancing rows; `folds=0`: one fold per group.

    Largest groups first (the seed orders groups of equal size), each into the lightest fold
    (the seed breaks ties), so the same seed always gives the same folds.
    >>> assign_folds({"a": 5, "b": 3, "c": 2}, 2)
    {'a': 0, 'b': 1, 'c': 1}
    """
    names = sorted(sizes)
    if folds == 0:
        return {name: i for i, name in enumerate(names)}
    if not 2 <= folds <= len(names):
        raise ConfigError(f"--folds must be 0 (one per dataset) or 2..{len(names)} (the number of datasets), "
                          f"got {folds}.")
    rng = random.Random(seed)
    rng.shuffle(names)
    names.sort(key=lambda n: -sizes[n])  # a stable sort: the shuffle only orders equal sizes
    load, out = [0] * folds, {}
    for name in names:
        lightest = min(load)
        out[name] = rng.choice([i for i, rows in enumerate(load) if rows == lightest])
        load[out[name]] += sizes[name]
    return dict(sorted(out.items()))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[list[dict[str, Any]], float]:
    """Reliability table (equal-width confidence bins) and the expected calibration error.

    >>> reliability(np.array([0.9, 0.9]), np.array([True, False]), bins=2)[1]
    0.4
    """
    table, ece, n = [], 0.0, len(confidence)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        hi = edges[i + 1] if i < bins - 1 else 1.0 + 1e-9
        inside = (confidence >= edges[i]) & (confidence < hi)
        if not inside.any():
            continue
        conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
        table.append({"bin": f"{edges[i]:.1f}-{edges[i + 1]:.1f}", "confidence": round(conf, 4),
                      "accuracy": round(acc, 4), "n": int(inside.sum())})
        ece += inside.sum() / n * abs(conf - acc)
    return table, round(float(ece), 4)


def fit_temperature(scores: np.ndarray, labels: np.ndarray, grid: Sequence[float] | None = None) -> float:
    """The softmax temperature (a multiplier of the scores) with the least log-loss on held-out rows.

    >>> fit_temperature(np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]]), np.array([0, 0, 0, 0]),
    ...                 grid=[0.1, 0.5, 1.0, 2.0])
    0.5
    """
    grid = grid if grid is not None else np.round(np.arange(0.25, 10.01, 0.25), 2)
    rows = np.arange(len(labels))
    best, best_loss = float(grid[0]), np.inf
    for t in grid:
        z = t * scores
        z = z - z.max(axis=1, keepdims=True)
        loss = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, labels]))
        if loss < best_loss - 1e-12:
            best, best_loss = float(t), loss
    return best


def _write_rows(rows: Sequence[LabelledQuery], path: Path) -> str:
    with path.open("w", encoding="utf-8", errors="surrogateescape") as f:
        for row in rows:
            f.write(json.dumps({"query": row.query, "route": row.route, "dataset": row.source}) + "\n")
    return str(path)


def _macro(per_dataset: Mapping[str, Mapping[str, Any]], key: str) -> float:
    return round(float(np.mean([d[key] for d in per_dataset.values()])), 4)


def _score_by_dataset(router: HybridRouter, rows: Sequence[LabelledQuery]) -> dict[str, dict[str, Any]]:
    by_group: dict[str, list[LabelledQuery]] = defaultdict(list)
    for row in rows:
        by_group[row.source].append(row)
    return {g: evaluate(router, group) for g, group in sorted(by_group.items())}


def _unsure_choices(router: HybridRouter, query: str) -> dict[str, Any] | None:
    """What the new design's L2 saw for one query L1 left alone: confidence and each policy's route."""
    if router.keyword is not None and router.keyword.route(query) is not None:
        return None
    ranking = router.semantic.rank(query)
    scores = {s.route: s.score for s in ranking.scores}
    expert_of = {name: r.expert for name, r in router.routes.items()}
    top, second = ranking.scores[0].route, ranking.scores[1].route if len(ranking.scores) > 1 else ranking.scores[0].route
    professor_routes = [r for r, e in expert_of.items() if e == "professor"]
    raw = getattr(router.semantic, "scores", None)
    return {
        "confidence": ranking.best.score,
        # raw scores in the strategy's route order, to fit the temperature on (trained strategy only)
        "raw": None if raw is None else [float(x) for x in raw(query)],
        "names": list(getattr(getattr(router.semantic, "model", None), "names", ())),
        "top": top,
        "default": router.default_route,
        # a default route served by the professor: the learner's best professor route
        "professor": max(professor_routes, key=lambda r: scores.get(r, -1.0)) if professor_routes else top,
        # unsure between the top two: the one served by the professor if either is
        "second": second if expert_of[top] != "professor" and expert_of[second] == "professor" else top,
        # the expert with the most probability, then its best route
        "expert_mass": likeliest_expert(scores.items(), expert_of)[2],
    }


def _unsure_tradeoff(records: Sequence[dict[str, Any]], expert_of: Mapping[str, str]) -> dict[str, Any]:
    """Macro accuracy and expert accuracy per policy and threshold, and the threshold to ship."""
    groups = sorted({r["dataset"] for r in records})
    curves: dict[str, list[dict[str, float]]] = {}
    best: dict[str, Any] = {}
    for policy in POLICIES:
        curve = []
        for t in THRESHOLDS if policy != "top" else (0.0,):
            acc, exp = defaultdict(list), defaultdict(list)
            for r in records:
                route = r["l1"] or (r["choices"]["top"] if r["choices"]["confidence"] >= t else r["choices"][policy])
                acc[r["dataset"]].append(route == r["route"])
                exp[r["dataset"]].append(expert_of[route] == expert_of[r["route"]])
            point = {"threshold": t, "macro_accuracy": round(float(np.mean([np.mean(acc[g]) for g in groups])), 4),
                     "macro_expert_accuracy": round(float(np.mean([np.mean(exp[g]) for g in groups])), 4),
                     "unsure_share": round(float(np.mean([r["l1"] is None and r["choices"]["confidence"] < t
                                                          for r in records])), 4)}
            curve.append(point)
            key = point["macro_accuracy"] + point["macro_expert_accuracy"]
            if not best or key > best["_key"] + 1e-9:
                best = {"_key": key, "policy": policy, **point}
        curves[policy] = curve
    best.pop("_key")
    return {"curves": curves, "chosen": best}


def run_crossval(paths: Sequence[str | Path], folds: int = 5, seed: int = 0, overrides: Sequence[str] = (),
                 encoder: Any = None, new_design: Sequence[str] = NEW_DESIGN) -> dict[str, Any]:
    """Grouped k-fold over the rows' `dataset`: today's design and the new one, same folds, same run.

    `overrides` apply to the new design; those under encoder/routes/experts to both.
    `encoder`: an encoder to use instead of the configured one (tests pass a fake).
    """
    new_overrides = [*new_design, *overrides]
    shared = [o for o in overrides if o.lstrip("+~").startswith(SHARED_PREFIXES)]
    probe = load_config(new_overrides)
    routes = list(probe.routes)
    rows = load_grouped(paths, routes)
    always = shipped_training_rows(probe, paths, routes)
    memo = MemoEncoder(encoder if encoder is not None else build_encoder(probe.encoder))
    sizes = Counter(r.source for r in rows)
    fold_of = assign_folds(sizes, folds, seed)
    n_folds = max(fold_of.values()) + 1
    per_dataset: dict[str, dict[str, Any]] = {}
    baseline: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    corpus_key = "corpus" if "corpus" in (probe.router.get("semantic") or {}) else None
    with tempfile.TemporaryDirectory(prefix="crossval-") as tmp:
        for fold in progress(range(n_folds), "folds"):
            train = [r for r in rows if fold_of[r.source] != fold] + always
            test = [r for r in rows if fold_of[r.source] == fold]
            train_file = _write_rows(train, Path(tmp) / f"train-{fold}.jsonl")
            today = build_router(load_config([*TODAYS_DESIGN, *shared, f"exemplars={json.dumps(train_file)}"]),
                                 encoder=memo)
            for g, report in _score_by_dataset(today, test).items():
                baseline[g] = {"fold": fold, **report}
            # The new design learns from the training folds only: its own corpus is replaced by them.
            extra = [f"router.semantic.{corpus_key}={json.dumps(train_file)}"] if corpus_key else \
                [f"exemplars={json.dumps(train_file)}"]
            new = build_router(load_config([*new_overrides, *extra]), encoder=memo)
            for g, report in _score_by_dataset(new, test).items():
                per_dataset[g] = {"fold": fold, **report}
            if corpus_key:
                for row in test:
                    l1 = new.keyword.route(row.query) if new.keyword is not None else None
                    choices = None if l1 is not None else _unsure_choices(new, row.query)
                    records.append({"dataset": row.source, "route": row.route, "l1": l1.route if l1 else None,
                                    "choices": choices})
    expert_of = {name: spec.expert for name, spec in probe.routes.items()}
    report: dict[str, Any] = {
        "n": len(rows), "datasets": len(sizes), "folds": n_folds, "seed": seed, "overrides": new_overrides,
        "macro_accuracy": _macro(per_dataset, "accuracy"),
        "macro_expert_accuracy": _macro(per_dataset, "expert_accuracy"),
        "baseline_macro_accuracy": _macro(baseline, "accuracy"),
        "baseline_macro_expert_accuracy": _macro(baseline, "expert_accuracy"),
        "micro_accuracy": _micro(per_dataset, "accuracy"), "baseline_micro_accuracy": _micro(baseline, "accuracy"),
        "fold_of": fold_of,
        "always_trained": {"rows": len(always), "datasets": sorted({r.source for r in always})},
        "per_dataset": _table(per_dataset, baseline),
        "per_route": _per_route(per_dataset, baseline),
        "tier_share": _tiers(per_dataset), "baseline_tier_share": _tiers(baseline),
    }
    if records:
        reached = [r for r in records if r["choices"] is not None]
        conf = np.array([r["choices"]["confidence"] for r in reached])
        right = np.array([r["choices"]["top"] == r["route"] for r in reached])
        table, ece = reliability(conf, right)
        report["calibration"] = {"n": len(reached), "ece": ece, "reliability": table,
                                 **_refit_temperature(reached)}
        report["unsure"] = _unsure_tradeoff(records, expert_of)
    return report


def _refit_temperature(reached: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The temperature that would make the held-out probabilities calibrated, and the ECE it gives."""
    usable = [r for r in reached if r["choices"]["raw"] and r["route"] in r["choices"]["names"]]
    if not usable:
        return {}
    scores = np.array([r["choices"]["raw"] for r in usable])
    labels = np.array([r["choices"]["names"].index(r["route"]) for r in usable])
    t = fit_temperature(scores, labels)
    z = t * scores
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    table, ece = reliability(probs.max(axis=1), probs.argmax(axis=1) == labels)
    return {"fitted_temperature": t, "fitted_ece": ece, "fitted_reliability": table}


def _micro(per: Mapping[str, Mapping[str, Any]], key: str) -> float:
    return round(sum(d[key] * d["n"] for d in per.values()) / sum(d["n"] for d in per.values()), 4)


def _table(new: Mapping[str, Mapping[str, Any]], old: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {g: {"fold": new[g]["fold"], "n": new[g]["n"], "accuracy": new[g]["accuracy"],
                "expert_accuracy": new[g]["expert_accuracy"], "baseline_accuracy": old[g]["accuracy"],
                "baseline_expert_accuracy": old[g]["expert_accuracy"]} for g in new}


def _per_route(new: Mapping[str, Mapping[str, Any]], old: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy per labelled route over all held-out rows, both designs."""
    out: dict[str, Any] = {}
    for label, per in (("accuracy", new), ("baseline_accuracy", old)):
        confusion: dict[str, Counter] = defaultdict(Counter)
        for report in per.values():
            for route, row in report["confusion"].items():
                confusion[route].update(row)
        for route, row in confusion.items():
            total = sum(row.values())
            out.setdefault(route, {"n": total})[label] = round(row[route] / total, 4)
    return out


def _tiers(per: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    n = sum(d["n"] for d in per.values())
    return {t: round(sum(d["tier_share"][t] * d["n"] for d in per.values()) / n, 4) for t in ("L1", "L2", "default")}


def print_crossval(report: Mapping[str, Any]) -> None:
    """A human-readable summary: macro figures, per-dataset table, calibration and the unsure trade-off."""
    print(f"{report['n']} rows, {report['datasets']} datasets, {report['folds']} grouped folds (seed {report['seed']})")
    print(f"new design   macro accuracy={report['macro_accuracy']:.4f}  "
          f"macro expert accuracy={report['macro_expert_accuracy']:.4f}")
    print(f"today's      macro accuracy={report['baseline_macro_accuracy']:.4f}  "
          f"macro expert accuracy={report['baseline_macro_expert_accuracy']:.4f}")
    print(f"{'dataset':<28}{'fold':>5}{'n':>5}{'acc':>8}{'exp':>8}{'base acc':>10}{'base exp':>10}")
    for g, d in report["per_dataset"].items():
        print(f"{g:<28}{d['fold']:>5}{d['n']:>5}{d['accuracy']:>8.3f}{d['expert_accuracy']:>8.3f}"
              f"{d['baseline_accuracy']:>10.3f}{d['baseline_expert_accuracy']:>10.3f}")
    print(f"{'route':<12}{'n':>6}{'acc':>8}{'base acc':>10}")
    for route, d in report["per_route"].items():
        print(f"{route:<12}{d['n']:>6}{d.get('accuracy', 0):>8.3f}{d.get('baseline_accuracy', 0):>10.3f}")
    if "calibration" in report:
        cal = report["calibration"]
        print(f"calibration of L2 confidence on {cal['n']} held-out rows L1 left: ECE={cal['ece']:.4f}")
        if "fitted_temperature" in cal:
            print(f"  temperature fitted on these rows: {cal['fitted_temperature']} (ECE {cal['fitted_ece']:.4f}); "
                  "set it with router.semantic.temperature=...")
        for b in cal["reliability"]:
            print(f"  {b['bin']}  confidence={b['confidence']:.3f}  accuracy={b['accuracy']:.3f}  n={b['n']}")
        print("unsure queries (confidence under the threshold) go to ... : macro accuracy / expert accuracy")
        for policy, curve in report["unsure"]["curves"].items():
            best = max(curve, key=lambda p: p["macro_accuracy"] + p["macro_expert_accuracy"])
            print(f"  {policy:<12} best at threshold {best['threshold']:.2f}: {best['macro_accuracy']:.4f} / "
                  f"{best['macro_expert_accuracy']:.4f} (unsure share {best['unsure_share']:.3f})")
        c = report["unsure"]["chosen"]
        print(f"chosen: policy={c['policy']} threshold={c['threshold']:.2f}")
