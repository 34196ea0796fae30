"""Pure text helpers shared by the tiers."""

from __future__ import annotations

import re

from router.errors import InvalidQueryError

_SPACE = re.compile(r"\s")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


def clean_query(query: str) -> str:
    """Reject an empty query and make any string safe to encode as UTF-8.

    Lone surrogates (from broken JSON or clipboard data) become U+FFFD; all else is kept.
    >>> clean_query("hi \\ud800")
    'hi \\ufffd'
    """
    if not isinstance(query, str):
        raise InvalidQueryError(f"A query must be a string, got {type(query).__name__}.")
    if not query.strip():
        raise InvalidQueryError("The query is empty. Type a question or an instruction to route.")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        query = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in query)
    return query


def head_tail(text: str, head: int, tail: int, sep: str = "\n") -> str:
    """Keep the first `head` and last `tail` characters of a long text.

    Instructions sit at the start or the end of long prompts ("Summarize: ..." / "... TL;DR"),
    so the middle is what can go.
    >>> head_tail("abcdefghij", 3, 2)
    'abc\\nij'
    """
    if len(text) <= head + tail:
        return text
    return text[:head] + sep + (text[-tail:] if tail else "")


def word_cuts(text: str, head: int, tail: int) -> tuple[int, int]:
    """Where a head-and-tail window of a long text ends its head and starts its tail, moved to
    whole words: a word cut in two would show rules a fragment ("...-ba|sed monitoring" reads as the
    command `sed`). A single word longer than the window is still cut.

    >>> text = "one two three four five six"
    >>> head, start = word_cuts(text, 9, 7)
    >>> text[:head], text[start:]
    ('one two ', 'six')
    """
    if len(text) <= head + tail:
        return len(text), len(text)
    end, start = head, len(text) - tail
    if not text[end - 1].isspace() and not text[end].isspace():
        cut = _LAST_SPACE.search(text, 0, end)
        end = cut.end() if cut else end
    if tail and not text[start - 1].isspace() and not text[start].isspace():
        cut = _SPACE.search(text, start)
        start = cut.end() if cut else start
    return end, start
