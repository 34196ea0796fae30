import json

import pytest

from router.data import load_labelled
from router.errors import DataError


def _write(tmp_path, lines):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_rows_with_line_numbers_and_source(tmp_path):
    path = _write(tmp_path, [json.dumps({"query": "hi", "route": "chitchat", "source": "me"}), "", json.dumps({"query": "2+2", "route": "math"})])
    rows = load_labelled(path, routes=["chitchat", "math"])
    assert [(r.query, r.route, r.line, r.source) for r in rows] == [("hi", "chitchat", 1, "me"), ("2+2", "math", 3, "")]


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ('["query", "route"]', "expected a JSON object"),
    ('{"query": "", "route": "math"}', "'query' must be a non-empty string"),
    ('{"query": "x"}', "'route' must be a string"),
    ('{"query": "x", "route": "cooking"}', "unknown route 'cooking'. Available: chitchat, math"),
])
def test_bad_line_is_named(tmp_path, bad, message):
    path = _write(tmp_path, [json.dumps({"query": "hi", "route": "chitchat"}), bad])
    with pytest.raises(DataError, match=message) as info:
        load_labelled(path, routes=["chitchat", "math"])
    assert f"{path}:2" in str(info.value)


def test_empty_or_missing_file(tmp_path):
    with pytest.raises(DataError, match="no labelled rows"):
        load_labelled(_write(tmp_path, [""]))
    with pytest.raises(DataError, match="Cannot read"):
        load_labelled(tmp_path / "missing.jsonl")
