"""Pure text helpers shared by the tiers."""

from __future__ import annotations

from router.errors import InvalidQueryError


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
