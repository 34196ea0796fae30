"""Labelled query files: JSONL rows of {"query": ..., "route": ...}."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from router.errors import DataError
from router.schema import LabelledQuery, Message


def load_labelled(path: str | Path, routes: Collection[str] | None = None) -> list[LabelledQuery]:
    """Read a labelled JSONL file; a bad line raises DataError naming the file and line number.

    Blank lines are skipped. Extra keys are allowed; `source`, `dataset`, `kind` and `history` (the
    conversation before the query: a list of {"role", "content"}), when present, are kept.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise DataError(f"Cannot read labelled file {path}: {e.strerror or e}.") from e
    rows: list[LabelledQuery] = []
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg}). Each line must be one JSON object.") from e
            if not isinstance(row, dict):
                raise DataError(f'{where}: expected a JSON object like {{"query": "...", "route": "..."}}.')
            query, route = row.get("query"), row.get("route")
            if not isinstance(query, str) or not query.strip():
                raise DataError(f"{where}: 'query' must be a non-empty string.")
            if not isinstance(route, str):
                raise DataError(f"{where}: 'route' must be a string.")
            if routes is not None and route not in routes:
                raise DataError(f"{where}: unknown route '{route}'. Available: {', '.join(routes)}")
            rows.append(LabelledQuery(query=query, route=route, line=number, source=str(row.get("source", "")),
                                     dataset=str(row.get("dataset", "")), history=_history(row.get("history"), where),
                                     kind=str(row.get("kind", ""))))
    if not rows:
        raise DataError(f"{path} holds no labelled rows.")
    return rows


def _history(value: object, where: str) -> tuple[Message, ...]:
    """A row's `history`: a list of {"role": "user" | "assistant" | "system", "content": "..."}."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DataError(f"{where}: 'history' must be a list of {{\"role\", \"content\"}} messages.")
    messages = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant", "system") \
                or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: each 'history' message needs a role (user, assistant or system) and a "
                            "string content.")
        messages.append(Message(m["role"], m["content"]))
    return tuple(messages)
