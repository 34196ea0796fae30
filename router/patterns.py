"""Regex helpers for the L1 tier: pattern validation and one multi-pattern matcher over many rules.

The matcher is Hyperscan where it is installed and an RE2 set elsewhere; both scan in time linear
in the text and give the same answers. Like them, Python's `re` is used with re.ASCII here: \\b and
\\w are ASCII word boundaries and characters.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import re2

from router.errors import ConfigError

try:  # Python >= 3.11
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse  # type: ignore[no-redef]

try:
    import hyperscan
except ImportError:  # pragma: no cover - platforms without Hyperscan wheels
    hyperscan = None

_UNBOUNDED = sre_parse.MAXREPEAT
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)}
# Counted repeats are unrolled into automaton states; past this the matcher grows slow and large.
MAX_COUNTED_REPEAT = 100

ENGINES = ("hyperscan", "re2")
RE2_OPTIONS = re2.Options()
RE2_OPTIONS.case_sensitive = False
RE2_OPTIONS.max_mem = 64 << 20


def add_word_boundaries(pattern: str) -> str:
    r"""Anchor a pattern at word boundaries where it begins or ends with an ASCII letter or digit.

    >>> add_word_boundaries("summari[sz]e")
    '\\b(?:summari[sz]e)\\b'
    >>> add_word_boundaries("c\\+\\+")
    '\\b(?:c\\+\\+)'
    >>> add_word_boundaries("tl;dr")
    '\\b(?:tl;dr)\\b'
    """
    starts = pattern[:1].isascii() and pattern[:1].isalnum()
    ends = pattern[-1:].isascii() and pattern[-1:].isalnum() and pattern[-2:-1] != "\\"
    return ("\\b" if starts else "") + f"(?:{pattern})" + ("\\b" if ends else "")


def star_height(pattern: str) -> int:
    """Depth of nested unbounded repeats; above 1 a backtracking engine can take exponential time.

    >>> star_height("(a+)+b"), star_height("ab*c")
    (2, 1)
    """

    def walk(items) -> int:
        deepest = 0
        for op, arg in items:
            if op in _REPEATS:
                low, high, sub = arg
                inner = walk(sub)
                deepest = max(deepest, inner + 1 if high == _UNBOUNDED else inner)
            elif op == sre_parse.SUBPATTERN:
                deepest = max(deepest, walk(arg[-1]))
            elif op == sre_parse.BRANCH:
                deepest = max(deepest, *(walk(b) for b in arg[1]))
            elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
                deepest = max(deepest, walk(arg[1]))
        return deepest

    return walk(sre_parse.parse(pattern))


def largest_counted_repeat(pattern: str) -> int:
    """The largest finite upper bound of a {m,n} repeat in the pattern (0 if none).

    >>> largest_counted_repeat("a.{0,300}b"), largest_counted_repeat("a+b{2}")
    (300, 2)
    """

    def walk(items) -> int:
        largest = 0
        for op, arg in items:
            if op in _REPEATS:
                low, high, sub = arg
                largest = max(largest, 0 if high == _UNBOUNDED else high, walk(sub))
            elif op == sre_parse.SUBPATTERN:
                largest = max(largest, walk(arg[-1]))
            elif op == sre_parse.BRANCH:
                largest = max(largest, *(walk(b) for b in arg[1]))
        return largest

    return walk(sre_parse.parse(pattern))


def validate_pattern(route: str, pattern: str) -> None:
    """Raise ConfigError naming the route and pattern if it is invalid, too permissive or too costly."""
    where = f"Keyword pattern {pattern!r} of route '{route}'"
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigError(f"{where} is empty. Remove it or write a phrase to match.")
    try:
        parsed = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise ConfigError(f"{where} is not a valid regular expression: {e}.") from e
    if parsed.fullmatch("") is not None:
        raise ConfigError(f"{where} matches the empty string, so it would fire on every query.")
    if star_height(pattern) > 1:
        raise ConfigError(
            f"{where} nests unbounded repeats (like '(a+)+'), which can backtrack catastrophically. "
            "Rewrite it without a repeat inside a repeat."
        )
    if largest_counted_repeat(pattern) > MAX_COUNTED_REPEAT:
        raise ConfigError(
            f"{where} has a counted repeat above {{,{MAX_COUNTED_REPEAT}}}, which bloats the matcher. "
            "Use an unbounded class such as [^\\n]* instead."
        )
    try:
        re2.compile(add_word_boundaries(pattern), RE2_OPTIONS)
    except re2.error as e:
        raise ConfigError(
            f"{where} is not supported by RE2 ({e}); lookarounds and backreferences are not allowed."
        ) from e


class PatternSet:
    """Many patterns compiled into one matcher.

    `match(text)` returns (index, end) for each pattern that occurs: `end` is the UTF-8 byte offset
    where its first occurrence ends, or -1 where the engine does not tell (RE2).
    """

    def __init__(self, patterns: Sequence[str], engine: str | None = None) -> None:
        self.patterns = [add_word_boundaries(p) for p in patterns]
        if engine is None:
            engine = "hyperscan" if hyperscan is not None and self.patterns else "re2"
        if engine not in ENGINES:
            raise ConfigError(f"Unknown pattern engine {engine!r}. Available: {', '.join(ENGINES)}")
        if engine == "hyperscan" and hyperscan is None:
            raise ConfigError("The pattern engine 'hyperscan' is not installed. Run: pip install hyperscan, or use re2.")
        if engine == "hyperscan" and not self.patterns:
            engine = "re2"  # Hyperscan cannot compile an empty database
        self.engine = engine
        self._local = threading.local()  # Hyperscan scratch space is per thread
        if self.engine == "hyperscan":
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH
            try:
                self._db.compile(
                    expressions=[p.encode("utf-8") for p in self.patterns],
                    ids=list(range(len(self.patterns))),
                    flags=[flags] * len(self.patterns),
                )
            except hyperscan.error as e:
                raise ConfigError(f"Hyperscan cannot compile the keyword patterns: {e}.") from e
        else:
            self._set = re2.Set.SearchSet(RE2_OPTIONS)
            for p in self.patterns:
                self._set.Add(p)
            self._set.Compile()

    def match(self, data: bytes) -> list[tuple[int, int]]:
        """(index, end) of the patterns that occur in UTF-8 `data`."""
        if self.engine == "re2":
            return [(i, -1) for i in self._set.Match(data) or ()]  # None when nothing matched
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        hits: list[tuple[int, int]] = []
        self._db.scan(data, _collect, 0, hits, scratch)  # positional: a cheaper call
        return hits


def _collect(index: int, start: int, end: int, flags: int, hits: list[tuple[int, int]]) -> None:
    hits.append((index, end))
