"""The sweep grid the Benchmarks tab accepts: allowlisted keys and plain values, never raw Hydra overrides.

The command line (`python -m forensics.benchmark_suite sweep ...`) serves a trusted local user and
keeps full Hydra overrides. Text typed into the tab is parsed here instead, and only override strings
rebuilt from the validated pieces reach Hydra, so no `_target_`, `${...}` interpolation, `hydra.*`
key, path or function call can. The size of the grid is capped here too, on the server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from router.errors import ConfigError

MAX_CHARS = 4000  # longer grid text is refused before it is parsed
MAX_ENCODERS = 4  # distinct encoder settings per grid: each is a model loaded in memory


@dataclass(frozen=True, slots=True)
class Bounds:
    """The numbers a key takes: low..high, whole numbers only when `integer`, low excluded when `open_low`."""

    low: float
    high: float
    integer: bool = False
    open_low: bool = False

    def __str__(self) -> str:
        low, high = (f"{int(v)}" if float(v).is_integer() else f"{v}" for v in (self.low, self.high))
        return f"{'(' if self.open_low else '['}{low}, {high}]" + (" (whole numbers)" if self.integer else "")


GROUPS: Mapping[str, tuple[str, ...]] = {
    "router": ("hybrid", "keyword", "semantic"),
    "encoder": ("onnx", "sentence_transformer"),
}
NUMBERS: Mapping[str, Bounds] = {
    "router.semantic.threshold": Bounds(-1, 1),
    "router.semantic.margin": Bounds(0, 10),
    "router.semantic.top_k": Bounds(1, 50, integer=True),
    "router.semantic.head.c": Bounds(0, 100, open_low=True),
    "router.semantic.head.knn_weight": Bounds(0, 10),
    "router.semantic.head.added_weight": Bounds(0, 100),
    "encoder.max_tokens": Bounds(8, 256, integer=True),
    "encoder.tail_tokens": Bounds(0, 256, integer=True),
    "router.keyword.head_chars": Bounds(0, 5000, integer=True),
    "router.keyword.tail_chars": Bounds(0, 5000, integer=True),
}
NAMES: Mapping[str, tuple[str, ...]] = {
    "router.keyword.engine": ("hyperscan", "re2"),
    "router.semantic.head": ("null",),  # the head can be switched off, not replaced
}
ROUTE_KEY = "router.default_route"  # takes a route name
KEYS = (*GROUPS, *NUMBERS, *NAMES, ROUTE_KEY)

_NUMBER = re.compile(r"-?\d{1,6}(\.\d{1,6})?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_PLAIN = re.compile(r"[A-Za-z0-9_.,=-]+")
_REFUSED = (  # (test on the whole item, why), checked in order so the message names the real problem
    (lambda t: "${" in t, "interpolation (${...}) is not allowed"),
    (lambda t: "_target_" in t, "_target_ is not allowed: the tab does not instantiate objects"),
    (lambda t: t[:1] in "+~", "adding (+, ++) or deleting (~) keys is not allowed; set an existing key: key=v1,v2"),
    (lambda t: t.partition("=")[0].strip().lower().startswith("hydra"), "hydra settings are not allowed"),
    (lambda t: "/" in t or "\\" in t or ".." in t, "paths are not allowed"),
    (lambda t: any(c in t for c in "'\"`"), "quotes are not allowed"),
    (lambda t: "(" in t or ")" in t, "sweep functions such as range() or choice() are not allowed; list the values: key=v1,v2"),
    (lambda t: any(c in t for c in "[]{}"), "lists and dicts are not allowed"),
    (lambda t: any(c in t for c in "*?"), "globs are not allowed"),
    (lambda t: "=" not in t, "is not key=v1,v2,... (e.g. router.semantic.threshold=0.1,0.2)"),
)


class GridError(ConfigError):
    """A grid item the tab does not run; the message names the item and what is allowed."""


class NeedsConfirmation(GridError):
    """The grid is larger than the soft limit: it runs only when the caller confirms."""

    def __init__(self, size: int, max_configs: int) -> None:
        super().__init__(f"This grid has {size} configurations, more than {max_configs}; confirm to run it.")
        self.size, self.max_configs = size, max_configs


@dataclass(frozen=True, slots=True)
class Grid:
    """A validated grid: one `key=v1,v2` override per axis, rebuilt from checked values."""

    overrides: tuple[str, ...]
    size: int  # configurations in the cartesian product


def _shown(item: str) -> str:
    return repr(item if len(item) <= 80 else item[:77] + "...")


def number(text: str, bounds: Bounds) -> str:
    """A plain number within bounds, written the one canonical way (raises ValueError why not).

    >>> number("0.10", Bounds(-1, 1)), number("5", Bounds(0, 10)), number("-0", Bounds(-1, 1))
    ('0.1', '5', '0')
    """
    if not _NUMBER.fullmatch(text) or (bounds.integer and "." in text):
        raise ValueError("a whole number" if bounds.integer else "a plain number such as 0.15, -0.1 or 5")
    value = float(text) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not (bounds.low < value if bounds.open_low else bounds.low <= value) or value > bounds.high:
        raise ValueError(f"a number in {bounds}")
    shown = repr(value)
    return shown[:-2] if shown.endswith(".0") else shown


def check_value(key: str, value: str, routes: Collection[str]) -> str:
    """One value of an allowlisted key, canonical; raises ValueError saying what the key takes.

    >>> check_value("router", "keyword", []), check_value("router.default_route", "code", ["code"])
    ('keyword', 'code')
    """
    if key in NUMBERS:
        return number(value, NUMBERS[key])
    allowed = GROUPS.get(key) or NAMES.get(key) or tuple(routes)
    if value not in allowed or not _NAME.fullmatch(value):
        raise ValueError(f"one of {', '.join(allowed) or '(no routes)'}")
    return value


def parse_grid(text: str, routes: Collection[str], *, max_configs: int = 24, hard_max_configs: int = 200,
               confirmed: bool = False, max_encoders: int = MAX_ENCODERS) -> Grid:
    """Parse tab grid text (`key=v1,v2 ...`) against the allowlist; raises GridError naming the bad item.

    Items are separated by whitespace (quotes and backslashes are refused, so this is what shlex.split
    would give). Above `max_configs` configurations the grid needs `confirmed`; above
    `hard_max_configs` it is refused whatever the caller says, as is a grid of more than
    `max_encoders` encoder settings.

    >>> parse_grid("router=keyword,hybrid router.semantic.threshold=0.1,0.20", ["code"]).overrides
    ('router=keyword,hybrid', 'router.semantic.threshold=0.1,0.2')
    """
    text = text or ""
    if len(text) > MAX_CHARS:
        raise GridError(f"The grid text is {len(text)} characters long; at most {MAX_CHARS} are accepted.")
    axes: dict[str, list[str]] = {}
    for item in text.split():
        for test, why in _REFUSED:
            if test(item):
                raise GridError(f"Grid item {_shown(item)}: {why}.")
        bad = next((c for c in item if not _PLAIN.fullmatch(c)), None)
        if bad is not None:
            raise GridError(f"Grid item {_shown(item)}: the character {bad!r} is not allowed.")
        key, _, values = item.partition("=")
        if key not in KEYS:
            raise GridError(f"Grid item {_shown(item)}: unknown key {key!r}. Allowed keys: {', '.join(KEYS)}.")
        if key in axes:
            raise GridError(f"Grid item {_shown(item)}: {key} is given twice; put all its values in one item: "
                            f"{key}=v1,v2.")
        checked = []
        for value in values.split(","):
            if not value:
                raise GridError(f"Grid item {_shown(item)}: empty value; write {key}=v1,v2 with no empty entries.")
            try:
                canonical = check_value(key, value, routes)
            except ValueError as e:
                raise GridError(f"Grid item {_shown(item)}: {key} takes {e}, not {value!r}.") from None
            if canonical in checked:
                raise GridError(f"Grid item {_shown(item)}: the value {value!r} is given twice.")
            checked.append(canonical)
        axes[key] = checked
    size = math.prod(len(v) for v in axes.values())
    encoders = math.prod(len(v) for k, v in axes.items() if k.partition(".")[0] == "encoder")
    if encoders > max_encoders:
        raise GridError(f"This grid loads {encoders} encoders (the encoder values multiplied); a sweep from the "
                        f"tab loads at most {max_encoders}.")
    if size > hard_max_configs:
        raise GridError(f"This grid has {size} configurations; the tab runs at most {hard_max_configs} "
                        "(benchmarks.hard_max_configs). Use fewer values, or the command line.")
    if size > max_configs and not confirmed:
        raise NeedsConfirmation(size, max_configs)
    return Grid(tuple(f"{k}={','.join(v)}" for k, v in axes.items()), size)


def redact(text: str, environ: Mapping[str, str], min_len: int = 5) -> str:
    """Replace every environment value of `min_len` characters or more by its variable's name.

    Error messages shown to a browser pass through this, so a resolved `${oc.env:...}`, the home
    folder in a path or a Space's secrets never reach the page.

    >>> redact("cannot read /home/ann/x.yaml", {"HOME": "/home/ann", "SHLVL": "1"})
    'cannot read $HOME/x.yaml'
    """
    for name, value in sorted(environ.items(), key=lambda kv: -len(kv[1])):
        if len(value) >= min_len and value in text:
            text = text.replace(value, f"${name}")
    return text
