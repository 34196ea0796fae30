"""Preference-driven route → expert mapping: per route, each expert's win rate from votes with a Wilson
interval, a proposed change where another expert wins a route clearly, and the file that applies it.

A change is only ever proposed here; an admin applies it from the Data tab, which writes
`outputs/mapping/route_experts.yaml`, loaded with one override: `routes_mapping=outputs/mapping/route_experts.yaml`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAPPING_PATH = Path("outputs/mapping/route_experts.yaml")


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) of a win rate of `wins` out of `n`; None when n is 0.

    >>> wilson(8, 10)
    (0.49, 0.943)
    """
    if n <= 0:
        return None
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def with_intervals(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PreferenceStore.win_rates() rows with `decisive` (wins + losses) and `ci` (Wilson interval of the win rate).

    Ties and "both bad" votes say neither expert was better, so the rate is over decisive votes only.
    """
    out = []
    for r in rows:
        decisive = int(r["wins"]) + int(r["losses"])
        out.append({**r, "decisive": decisive, "ci": wilson(int(r["wins"]), decisive)})
    return out


@dataclass(frozen=True, slots=True)
class Proposal:
    """Move `route` from `current` to `better`: its Wilson interval lies above one half over `n` decisive votes."""

    route: str
    current: str
    better: str
    win_rate: float
    ci: tuple[float, float]
    n: int

    def sentence(self) -> str:
        return (f"{self.route}: {self.better} beats {self.current} in {self.win_rate:.0%} of {self.n} decisive votes "
                f"(95% interval {self.ci[0]:.0%}–{self.ci[1]:.0%}): send {self.route} to {self.better}.")


def propose(rows: Sequence[Mapping[str, Any]], mapping: Mapping[str, str], min_votes: int = 5) -> list[Proposal]:
    """Routes where another expert wins clearly: at least `min_votes` decisive votes and the interval above 0.5."""
    proposals = []
    for r in with_intervals(rows):
        route, expert = r["route"], r["expert"]
        if route not in mapping or expert == mapping[route] or r["decisive"] < min_votes or r["ci"] is None:
            continue
        if r["ci"][0] > 0.5:
            proposals.append(Proposal(route, mapping[route], expert, r["wins"] / r["decisive"], r["ci"], r["decisive"]))
    return sorted(proposals, key=lambda p: -p.ci[0])


def write_mapping(path: str | Path, mapping: Mapping[str, str], note: str = "") -> Path:
    """Write route → expert as YAML, with a comment saying where it came from and how to load it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Route -> expert mapping from votes{': ' + note if note else ''}.\n"
              f"# Load it with: python app.py routes_mapping={path.as_posix()}\n")
    path.write_text(header + yaml.safe_dump(dict(sorted(mapping.items())), sort_keys=False), encoding="utf-8")
    return path


def read_mapping(path: str | Path) -> dict[str, str]:
    """A mapping file written by `write_mapping` (empty when there is none)."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}
