"""The tab's files: data confined to data_dir, uploads checked and copied, run folders pruned."""

import json
import os

import pytest

from forensics import workspace
from router.errors import DataError

ROW = json.dumps({"query": "who wrote frankenstein", "route": "knowledge"}) + "\n"


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "dev.jsonl").write_text(ROW)
    (root / "sub" / "more.jsonl").write_text(ROW)
    (tmp_path / "secret.jsonl").write_text(ROW)
    (root / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")
    (root / "outside").symlink_to(tmp_path, target_is_directory=True)
    return root


def test_confine_accepts_names_inside_and_refuses_escapes(data_dir, tmp_path):
    assert workspace.confine(data_dir, "dev.jsonl") == (data_dir / "dev.jsonl").resolve()
    assert workspace.confine(data_dir, "sub/more.jsonl").name == "more.jsonl"
    assert workspace.confine(data_dir, str(data_dir / "dev.jsonl")).name == "dev.jsonl"  # absolute, inside
    for name in ("/etc/passwd", "../secret.jsonl", "sub/../../secret.jsonl", str(tmp_path / "secret.jsonl"),
                 "link.jsonl", "outside/secret.jsonl", "/nonexistent/x.jsonl"):
        with pytest.raises(DataError, match="outside the benchmark data folder"):
            workspace.confine(data_dir, name)
    with pytest.raises(DataError, match="no file"):
        workspace.confine(data_dir, "missing.jsonl")
    with pytest.raises(DataError, match="not a file"):
        workspace.confine(data_dir, "sub")
    with pytest.raises(DataError, match="Choose"):
        workspace.confine(data_dir, "")


def test_data_files_lists_only_files_inside(data_dir):
    assert workspace.data_files(data_dir) == ["dev.jsonl", "sub/more.jsonl"]
    assert workspace.data_files(data_dir / "missing") == []


def test_uploads_are_size_checked_parsed_and_copied(tmp_path, data_dir):
    good = tmp_path / "mine.jsonl"
    good.write_text(ROW * 3)
    stored = workspace.store_upload(good, data_dir, 1000, ["knowledge"])
    assert stored.parent == data_dir / "uploads" and stored.read_text() == ROW * 3 and len(stored.stem) == 16
    assert workspace.store_upload(good, data_dir, 1000, ["knowledge"]) == stored  # same bytes, same copy
    with pytest.raises(DataError, match="at most 0.0 MB"):
        workspace.store_upload(good, data_dir, 10, ["knowledge"], shown="mine.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x", "route": "cooking"}\n')
    with pytest.raises(DataError, match=r"^bad.jsonl:1: unknown route 'cooking'"):
        workspace.store_upload(bad, data_dir, 1000, ["knowledge"], shown="bad.jsonl")
    assert sorted(p.name for p in (data_dir / "uploads").iterdir()) == [stored.name]  # no partial copy left


def test_uploads_are_bounded(tmp_path, data_dir):
    for i in range(4):
        src = tmp_path / f"u{i}.jsonl"
        src.write_text(ROW * (i + 1))
        last = workspace.store_upload(src, data_dir, 10_000, keep=2)
    assert len(list((data_dir / "uploads").glob("*.jsonl"))) == 2 and last.exists()


def test_run_folders_are_pruned_to_the_newest(tmp_path):
    root = tmp_path / "runs"
    made = []
    for i in range(5):
        run = workspace.new_run_dir(root)
        (run / "results.json").write_text("{}")
        os.utime(run, ns=(i * 10**9, i * 10**9))
        made.append(run)
    keep_me = root / "notes"
    keep_me.mkdir()  # not a run: neither timestamp-named nor holding results
    (root / "plotly.min.js").write_text("js")
    newest = workspace.new_run_dir(root)
    deleted = workspace.prune_runs(root, 3, "results.json", protect=newest)
    assert deleted == [made[2], made[1], made[0]]  # 3 kept: the two newest and the one just made
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [made[4].name, made[3].name, newest.name, "notes", "plotly.min.js"])
    assert workspace.list_runs(root, "results.json") == [made[4].name, made[3].name]  # newest has no results yet


def test_run_dir_only_opens_runs_directly_inside(tmp_path):
    root = tmp_path / "runs"
    run = workspace.new_run_dir(root)
    (run / "results.json").write_text("{}")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "results.json").write_text("{}")
    (root / "link").symlink_to(other, target_is_directory=True)
    assert workspace.run_dir(root, run.name, "results.json") == run.resolve()
    for name in ("../elsewhere", str(other), "link", "", None, "missing"):
        with pytest.raises(DataError):
            workspace.run_dir(root, name, "results.json")


def test_plotlyjs_is_written_once(tmp_path):
    assert workspace.shared_plotlyjs(tmp_path) == "../plotly.min.js"
    first = (tmp_path / "plotly.min.js").stat().st_mtime_ns
    workspace.shared_plotlyjs(tmp_path)
    assert (tmp_path / "plotly.min.js").stat().st_mtime_ns == first
