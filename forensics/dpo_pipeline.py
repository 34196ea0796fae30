"""The DPO flywheel's output: the stored preferences as {prompt, chosen, rejected} JSONL for TRL.

    python -m forensics.dpo_pipeline export --out FILE.jsonl [--since YYYY-MM-DD] [--kind answers|routing]
                                            [--user NAME] [--db data/preferences.sqlite3]

Each line is one object with exactly the keys prompt, chosen and rejected: the "preference" type with
an explicit prompt that TRL's DPOTrainer reads (https://huggingface.co/docs/trl/dataset_formats).
The store itself (PreferenceStore and its records) lives in forensics.preference_store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from forensics.preference_records import utc_iso
from forensics.preference_store import (
    Correction,
    Preference,
    PreferenceStore,
    RoutingEvent,
    StoreError,
)

__all__ = [
    "Correction", "Preference", "PreferenceStore", "RoutingEvent", "StoreError",
    "answer_rows", "export_dpo_dataset", "routing_rows",
]

DEFAULT_DB = "data/preferences.sqlite3"
Row = dict[str, Any]


def answer_rows(preferences: Iterable[Preference]) -> list[Row]:
    """DPO rows from the decisive votes (ties and both-bad say nothing about which answer is better).

    Votes whose prompt the store clipped (`original_chars` set) are left out: the answers were to the
    whole prompt, not to the clipped one stored. With no chat history anywhere the rows are in TRL's standard form (strings). When any vote has
    history, every row is conversational (message lists), because one JSON file must have one
    schema: a prompt without history becomes a one-message list.
    """
    decisive = [p for p in preferences if p.chosen is not None and p.original_chars is None]
    conversational = any(p.history for p in decisive)
    rows = []
    for p in decisive:
        chosen, rejected = p.chosen[0], p.rejected[0]  # type: ignore[index]
        if conversational:
            rows.append({
                "prompt": [*p.history, {"role": "user", "content": p.prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            })
        else:
            rows.append({"prompt": p.prompt, "chosen": chosen, "rejected": rejected})
    return _unique(rows)


def routing_rows(preferences: Iterable[Preference], corrections: Iterable[Correction]) -> list[Row]:
    """Router-training triplets: the prompt, the expert (or route) that should get it, and the one that should not.

    A decisive vote between two experts prefers the winner's expert; an active correction prefers
    its right route over the wrong one. Votes within one expert and corrections without a wrong
    route carry no such preference and are left out, and so are visitors' session corrections: no
    admin has reviewed them (promoting one makes it global).
    """
    rows = []
    for p in preferences:
        if p.chosen is not None and p.expert_a != p.expert_b:
            rows.append({"prompt": p.prompt, "chosen": p.chosen[1], "rejected": p.rejected[1]})  # type: ignore[index]
    for c in corrections:
        if c.undone_at is None and c.scope == "global" and c.wrong_route not in (None, c.right_route):
            rows.append({"prompt": c.query, "chosen": c.right_route, "rejected": c.wrong_route})
    return _unique(rows)


def _unique(rows: Iterable[Row]) -> list[Row]:
    """The rows in order, each distinct row once."""
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(json.dumps(row, sort_keys=True, ensure_ascii=False), row)
    return list(seen.values())


def _jsonl_line(row: Row) -> str:
    # U+2028, U+2029 and NEL are legal raw in JSON strings but end lines for str.splitlines();
    # escaped, a line of the file is always exactly one record.
    text = json.dumps(row, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085") + "\n"


def write_jsonl(rows: Sequence[Row], out: str | Path) -> None:
    """Write rows as UTF-8 JSONL, atomically: readers see the old file or the whole new one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(_jsonl_line(row) for row in rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_dpo_dataset(
    store: PreferenceStore | str | Path,
    out: str | Path,
    kind: Literal["answers", "routing"] = "answers",
    since: str | date | None = None,
    *,
    user: str | None = None,
) -> int:
    """Write the preference data as {prompt, chosen, rejected} JSONL, oldest first; returns the rows written.

    `kind="answers"` pairs the answers users voted on (for DPO on the experts), leaving out votes
    whose prompt was clipped when stored, since their answers no longer match the stored prompt.
    `kind="routing"` pairs expert and route names (for training the router), from votes and global
    corrections only: visitors' session corrections are unreviewed until an admin promotes them.
    `since` keeps records created on or after that date (UTC); `user` keeps only that user's records.
    """
    if kind not in ("answers", "routing"):
        raise ValueError(f"Unknown kind '{kind}'. Available: answers, routing")
    since = None if since is None else utc_iso(since)
    if isinstance(store, PreferenceStore):
        return _export(store, out, kind, since, user)
    location: str | Path = store
    if not str(store).startswith(("postgresql://", "postgres://")):  # a server store opens as it is
        location = Path(str(store).removeprefix("sqlite:///")).expanduser()
        if not location.is_file():
            raise StoreError(f"No preference store at {location}. Pass --db with the store.path the workbench "
                             "writes to, or its store.url.")
    with PreferenceStore(location) as opened:
        return _export(opened, out, kind, since, user)


def _export(store: PreferenceStore, out: str | Path, kind: str, since: str | None, user: str | None) -> int:
    preferences = store.preferences(since=since, user=user)[::-1]
    if kind == "answers":
        rows = answer_rows(preferences)
    else:
        corrections = [c for c in store.corrections(user=user, scope="global")[::-1]
                       if since is None or c.created_at >= since]
        rows = routing_rows(preferences, corrections)
    write_jsonl(rows, out)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forensics.dpo_pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write {prompt, chosen, rejected} JSONL for TRL's DPOTrainer")
    export.add_argument("--out", required=True, help="the JSONL file to write (replaced atomically)")
    export.add_argument("--kind", choices=("answers", "routing"), default="answers",
                        help="answers: the voted answers; routing: expert/route names for the router")
    export.add_argument("--since", help="only records created on or after this date, YYYY-MM-DD (UTC)")
    export.add_argument("--user", help="only the records this user made (e.g. alice)")
    export.add_argument("--db", default=DEFAULT_DB, help="the preference store: a SQLite file, sqlite:///PATH or "
                        f"postgresql://USER@HOST/DB, password from PGPASSWORD (default {DEFAULT_DB})")
    args = parser.parse_args(argv)
    try:
        n = export_dpo_dataset(args.db, args.out, kind=args.kind, since=args.since, user=args.user)
    except (StoreError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {n} {args.kind} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
