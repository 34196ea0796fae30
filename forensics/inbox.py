"""The labeling inbox: stored routed turns where the router was unsure, ranked by what a label is worth.

A label is worth more where the router is less sure and where more queries like it arrive, so each
candidate's value is uncertainty × arrivals: how many stored turns (chat, gateway, /v1/route) are
similar to it. Near-duplicates are one item. The signals, each in [0, 1], combine as a noisy-or:

- low margin: the L2 ranking's lead, relative to the median lead of the candidates (unit-free, so
  similarity and linear-head margins both work);
- no tier was confident (the default route);
- L1 and L2 disagree: a keyword rule decided, L2 ranks another route first;
- a corrected keyword rule fired (users have said its decisions go elsewhere);
- a follow-up whose route changed (the user's previous turn, minutes before, went elsewhere), or a
  turn that now routes somewhere else than when it was logged.

`preview` says what a pending correction would change on a reference file before it goes live, by
teaching a copy of the router, so its figures are those `benchmark_suite accuracy` reports after it.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from forensics.metrics import evaluate
from router.hybrid import HybridRouter
from router.schema import LabelledQuery, RouteDecision
from router.session import normalized

SIGNALS = {"low margin": 1.0, "no tier confident": 0.7, "L1 and L2 disagree": 0.4, "corrected rule fired": 0.6,
           "follow-up changed route": 0.3, "route changed since logged": 0.5}


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One query to label (the newest of its near-duplicates), with why it is here and what a label is worth."""

    query: str
    route: str  # where the router sends it now
    tier: str
    event_ids: tuple[int, ...]  # the stored turns this item stands for (near-duplicates)
    arrivals: int  # stored turns similar to it, near-duplicates included
    uncertainty: float
    value: float
    reasons: tuple[str, ...]
    ranked: tuple[str, ...]  # routes, most likely first: the choices offered to the labeler
    decision: RouteDecision = field(repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.event_ids)


def noisy_or(strengths: Iterable[float]) -> float:
    """The chance that at least one of independent signals holds.

    >>> noisy_or([0.5, 0.5])
    0.75
    """
    return round(1 - math.prod(1 - s for s in strengths), 4)


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _follow_ups(events: Sequence[Any], window_s: float) -> set[int]:
    """Ids of turns whose route differs from the same user's previous turn, sent within `window_s` seconds."""
    changed, last = set(), {}
    for e in sorted(events, key=lambda e: (e.created_at or "", e.id or 0)):
        before, now = last.get(e.user), _when(e.created_at)
        if before is not None and e.user and now is not None and before[1] is not None \
                and (now - before[1]).total_seconds() <= window_s and before[0] != e.route:
            changed.add(e.id)
        last[e.user] = (e.route, now)
    return changed


def _embed(router: HybridRouter, texts: Sequence[str]) -> np.ndarray | None:
    encoder = getattr(router.semantic, "encoder", None)
    if encoder is None or not texts:
        return None
    return np.asarray(encoder.encode(list(texts)), dtype=np.float32)


def build_inbox(events: Sequence[Any], router: HybridRouter, labelled: Iterable[str] = (), *,
                duplicate: float = 0.92, similar: float = 0.5, follow_up_s: float = 600.0,
                limit: int | None = 50) -> list[InboxItem]:
    """The inbox: unlabelled near-duplicate groups of `events` (RoutingEvent records, newest first), best first.

    `labelled` are queries that already carry a label (active corrections); `duplicate` and `similar`
    are the cosine similarities for "the same query" and "a query like it".
    """
    done = {normalized(q) for q in labelled}
    events = [e for e in events if e.query.strip() and normalized(e.query) not in done]
    if not events:
        return []
    follow_ups = _follow_ups(events, follow_up_s)
    texts: dict[str, list[Any]] = {}
    for e in events:  # newest first: the first of a text is the one shown
        texts.setdefault(normalized(e.query), []).append(e)
    keys = list(texts)
    vectors = _embed(router, [texts[k][0].query for k in keys])
    weights = np.array([len(texts[k]) for k in keys], dtype=np.float64)
    sims = vectors @ vectors.T if vectors is not None else np.eye(len(keys))
    # Near-duplicates: greedy, the most frequent text first, each joining the first group it is close to.
    groups: list[list[int]] = []
    for i in sorted(range(len(keys)), key=lambda i: -weights[i]):
        home = next((g for g in groups if sims[g[0], i] >= duplicate), None)
        (home.append(i) if home is not None else groups.append([i]))
    contested = router.contested_rules
    scored = []
    for group in groups:
        lead = group[0]
        first = texts[keys[lead]][0]
        members = [e for i in group for e in texts[keys[i]]]
        decision = router.route(first.query)
        ranking = router.semantic.rank(first.query) if router.semantic is not None else None
        signals: dict[str, float] = {}
        if decision.tier == "default":
            signals["no tier confident"] = SIGNALS["no tier confident"]
        if decision.tier == "L1" and ranking is not None and ranking.best.route != decision.route:
            signals["L1 and L2 disagree"] = SIGNALS["L1 and L2 disagree"]
        if decision.rule is not None and decision.rule.pattern in contested:
            signals["corrected rule fired"] = SIGNALS["corrected rule fired"]
        if any(e.id in follow_ups or e.tier == "context" for e in members):
            signals["follow-up changed route"] = SIGNALS["follow-up changed route"]
        if any(e.route != decision.route for e in members):
            signals["route changed since logged"] = SIGNALS["route changed since logged"]
        arrivals = int(weights[sims[lead] >= similar].sum())
        ranked = tuple(dict.fromkeys([decision.route, *(s.route for s in ranking.scores)] if ranking else
                                     [decision.route, *router.routes]))
        margin = ranking.margin if ranking is not None and decision.tier != "L1" else None
        scored.append((first, members, decision, signals, arrivals, ranked, margin))
    margins = [m for *_, m in scored if m is not None]
    typical = float(np.median(margins)) if margins else 0.0
    items = []
    for first, members, decision, signals, arrivals, ranked, margin in scored:
        if margin is not None:  # at the median lead one half; a lead of zero, one
            signals["low margin"] = round(0.5 ** (max(margin, 0.0) / typical), 4) if typical > 0 else 1.0
        uncertainty = noisy_or(signals.values())
        reasons = tuple(f"{name} ({strength:.2f})" if name == "low margin" else name
                        for name, strength in sorted(signals.items(), key=lambda kv: -kv[1]))
        items.append(InboxItem(first.query, decision.route, decision.tier, tuple(e.id for e in members), arrivals,
                               uncertainty, round(uncertainty * arrivals, 4), reasons, ranked, decision))
    items.sort(key=lambda it: (-it.value, -it.uncertainty, -it.count))
    return items[:limit] if limit is not None else items


@dataclass(frozen=True, slots=True)
class Preview:
    """What a correction would change on the reference rows: accuracy before and after, and the rows that move."""

    n: int
    accuracy_before: float
    accuracy_after: float
    changed: tuple[tuple[str, str, str, str], ...]  # (query, labelled route, route before, route after)

    @property
    def fixed(self) -> int:
        return sum(after == truth for _, truth, _, after in self.changed)

    @property
    def broken(self) -> int:
        return sum(before == truth for _, truth, before, _ in self.changed)

    def sentence(self) -> str:
        return (f"On the reference file ({self.n} rows) this label moves {len(self.changed)} row(s): "
                f"{self.fixed} become right, {self.broken} become wrong; accuracy "
                f"{self.accuracy_before:.4f} → {self.accuracy_after:.4f}.")


def trial_router(router: HybridRouter) -> HybridRouter:
    """A copy of the router that can learn without changing the original.

    The strategies swap their state whole on every change (the L2 index, the contested rules),
    so a shallow copy of the router and of its semantic tier is enough: learning on the copy
    replaces the copy's references and leaves the live router's alone (the trained tier's copy also
    gets its own background refit).
    """
    trial = copy.copy(router)
    if router.semantic is not None:
        trial.semantic = copy.copy(router.semantic)
        if hasattr(trial.semantic, "_write_lock"):
            trial.semantic._write_lock = threading.Lock()
    return trial


def _routes(router: HybridRouter, rows: Sequence[LabelledQuery]) -> list[str]:
    return [router.route(r.query, r.history).route if getattr(r, "history", ()) else router.route(r.query).route
            for r in rows]


def preview(router: HybridRouter, pairs: Sequence[tuple[str, str]], rows: Sequence[LabelledQuery]) -> Preview:
    """Route `rows` with the router as it is and with a copy taught `pairs` ((query, route) labels)."""
    before = _routes(router, rows)
    trial = trial_router(router)
    trial.learn(list(pairs))
    settle = getattr(trial.semantic, "settle", None)
    if settle is not None:  # a strategy that refits with corrections in the background: preview the refitted one
        settle()
    after = _routes(trial, rows)
    n = len(rows)
    right_before = sum(b == r.route for b, r in zip(before, rows))
    right_after = sum(a == r.route for a, r in zip(after, rows))
    changed = tuple((r.query, r.route, b, a) for r, b, a in zip(rows, before, after) if a != b)
    return Preview(n, round(right_before / n, 4) if n else 0.0, round(right_after / n, 4) if n else 0.0, changed)


def accuracy_of(router: HybridRouter, rows: Sequence[LabelledQuery]) -> float:
    """What `python -m forensics.benchmark_suite accuracy` reports for this router on these rows."""
    return evaluate(router, rows)["accuracy"]


def tally(items: Sequence[InboxItem]) -> Counter:
    """How many items each signal brought into the inbox."""
    return Counter(reason.split(" (")[0] for item in items for reason in item.reasons)
