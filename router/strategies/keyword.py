"""L1: regex rules per route, compiled once into a single multi-pattern matcher."""

from __future__ import annotations

import re
from collections.abc import Sequence

from router.errors import ConfigError
from router.patterns import PatternSet, validate_pattern
from router.schema import KeywordMatch, Route, RouteDecision
from router.text import word_cuts


# How far before a match's end to look for its start; longer matches fall back to a full search.
_LOOKBACK = 60


class KeywordRoutingStrategy:
    """Route by the first-priority route whose pattern occurs in the head or tail of the query.

    All patterns are compiled once into one multi-pattern matcher, so a decision costs one linear
    scan (router.patterns.PatternSet).
    Priority: routes in the order of `priority` (default: route-table order), then patterns in
    their listed order. Only the first `head_chars` and last `tail_chars` are scanned, cut at whole
    words: instructions sit there, and a long pasted text should not fire rules with words from its body.
    `engine` picks the matcher (hyperscan or re2; None: hyperscan where installed).
    """

    def __init__(
        self,
        routes: Sequence[Route],
        priority: Sequence[str] | None = None,
        head_chars: int = 300,
        tail_chars: int = 300,
        engine: str | None = None,
    ) -> None:
        by_name = {r.name: r for r in routes}
        order = list(priority) if priority else [r.name for r in routes]
        unknown = [name for name in order if name not in by_name]
        if unknown:
            raise ConfigError(
                f"Keyword priority names unknown route(s) {unknown}. Available: {', '.join(by_name)}"
            )
        order += [name for name in by_name if name not in order]
        if head_chars < 1 or tail_chars < 0:
            raise ConfigError("router.keyword.head_chars must be >= 1 and tail_chars >= 0.")
        self.head_chars, self.tail_chars = head_chars, tail_chars
        self._rank = {name: i for i, name in enumerate(order)}
        self._experts = {r.name: r.expert for r in routes}
        self._rules: list[tuple[str, str]] = []  # (route, pattern), index = priority
        for name in order:
            for pattern in by_name[name].keywords:
                validate_pattern(name, pattern)
                self._rules.append((name, pattern))
        self._set = PatternSet([p for _, p in self._rules], engine=engine)
        # The same patterns one by one, to find where the winner matched. Python's engine is cheaper
        # to call for one pattern, and bounded here: no nested repeats, and at most the scan window.
        self._regexes = [re.compile(p, re.IGNORECASE | re.ASCII) for p in self._set.patterns]
        self._reasons = [f"rule {p!r} of route '{r}' matched" for r, p in self._rules]
        self._set.match(b"warm up")  # allocates this thread's scratch space now, not on the first query

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        """(route, pattern) pairs in priority order."""
        return tuple(self._rules)

    def route(self, query: str) -> RouteDecision | None:
        """Return an L1 decision for the highest-priority rule that fires, or None."""
        if not self._rules:
            return None
        head_end, tail_start = word_cuts(query, self.head_chars, self.tail_chars)
        text = query if head_end == len(query) else query[:head_end] + "\n" + query[tail_start:]
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates; '?' keeps every offset in place
            text = text.encode("utf-8", "replace").decode("utf-8")
            data = text.encode("utf-8")
        hits = self._set.match(data)
        if not hits:
            return None
        best, end = min(hits)
        route, pattern = self._rules[best]
        m = self._locate(best, text, data, end)
        start, end = m.span() if m else (0, 0)  # no span only if the engines disagree
        # Map a span found in the tail window back to the original query's offsets.
        if head_end < len(query) and start > head_end:
            shift = tail_start - head_end - 1
            start, end = start + shift, end + shift
        others = ()
        if len(hits) > 1:  # other routes that fired too, in priority order
            others = tuple(sorted({self._rules[i][0] for i, _ in hits} - {route}, key=self._rank.__getitem__))
        return RouteDecision(
            route,
            self._experts[route],
            "L1",
            1.0,
            0.0 if others else 1.0,
            KeywordMatch(route, pattern, start, end, m.group(0) if m else "", others),
            reason=self._reasons[best],
        )

    def _locate(self, index: int, text: str, data: bytes, end: int) -> re.Match | None:
        """Find the match of one pattern, searching just before where the matcher saw it end."""
        regex = self._regexes[index]
        if end >= 0:
            if len(data) != len(text):  # non-ASCII: turn the byte offset into a character offset
                end = len(data[:end].decode("utf-8", "ignore"))
            m = regex.search(text, max(0, end - _LOOKBACK), end)
            if m is not None and m.end() == end:
                return m
        return regex.search(text)
