"""Where the Benchmarks tab reads and writes: labelled files confined to one folder, uploads copied into
it, one folder per run with a bounded number kept, and one copy of plotly.js shared by the runs' pages.

Names arriving from a browser are only inputs: every path is resolved (symlinks included) and must
stay inside its root before anything is read, and only folders that look like runs are ever deleted.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from router.data import load_labelled
from router.errors import DataError

STAMP = "%Y-%m-%d_%H-%M-%S"  # run folders are named by the time they started
PLOTLY_JS = "plotly.min.js"
UPLOADS = "uploads"
_STAMPED = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?")
_RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def relative_name(root: str | Path, path: str | Path) -> str | None:
    """`path` (relative to the working folder) as a name inside `root`, or None when it lies outside.

    >>> relative_name("/srv/data", "/srv/data/dev.jsonl"), relative_name("/srv/data", "/etc/passwd")
    ('dev.jsonl', None)
    """
    base, resolved = Path(root).resolve(), Path(path).resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else None


def confine(root: str | Path, name: str | None) -> Path:
    """The labelled file that `name` names inside `root`; a relative name is taken from `root`.

    Raises DataError for an empty name, `..`, an absolute path or a symlink leading outside `root`,
    and for a name that is not a file.
    """
    if not name or not str(name).strip():
        raise DataError("Choose a labelled JSONL file from the list, or upload one.")
    base, given = Path(root).resolve(), Path(str(name).strip())
    outside = DataError(f"{str(name)[:120]!r} is outside the benchmark data folder (benchmarks.data_dir); "
                        "pick a file from the list or upload one.")
    if ".." in given.parts:
        raise outside
    try:
        resolved = (given if given.is_absolute() else base / given).resolve(strict=True)
    except (OSError, RuntimeError):
        if given.is_absolute() and not given.is_relative_to(base):
            raise outside from None
        raise DataError(f"There is no file {str(name)[:120]!r} in the benchmark data folder; "
                        "pick one from the list or upload one.") from None
    if not resolved.is_relative_to(base):
        raise outside
    if not resolved.is_file():
        raise DataError(f"{str(name)[:120]!r} is not a file; pick a labelled JSONL file from the list.")
    return resolved


def data_files(root: str | Path, limit: int = 500) -> list[str]:
    """The `.jsonl` files inside `root` (links leading outside left out), as names relative to it."""
    base = Path(root).resolve()
    if not base.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(base):  # does not descend into linked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            path = Path(folder) / file
            if file.endswith(".jsonl") and path.resolve().is_relative_to(base) and path.is_file():
                found.append(path.relative_to(base).as_posix())
                if len(found) >= limit:
                    return found
    return found


def store_upload(src: str | Path, root: str | Path, max_bytes: int, routes: Collection[str] | None = None,
                 keep: int = 20, shown: str = "the upload") -> Path:
    """Check an uploaded file (size, then the labelled format) and copy it to `root/uploads/<sha256>.jsonl`.

    The copy is what runs read, so the uploaded temp file can go. At most `keep` uploads are kept,
    the oldest deleted first. `shown` replaces the temp file's path in error messages.
    """
    size = Path(src).stat().st_size
    if size > max_bytes:
        raise DataError(f"{shown} is {_mb(size)}; at most {_mb(max_bytes)} may be uploaded (limits.max_upload_bytes).")
    with open(src, "rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since the check
    if len(data) > max_bytes:
        raise DataError(f"{shown} is over {_mb(max_bytes)}; at most that may be uploaded (limits.max_upload_bytes).")
    folder = Path(root) / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target, partial = folder / f"{digest}.jsonl", folder / f".{digest}.tmp"
    partial.write_bytes(data)
    try:
        load_labelled(partial, routes)
    except DataError as e:
        partial.unlink()
        raise DataError(str(e).replace(str(partial), shown)) from None
    partial.replace(target)
    older = sorted((p for p in folder.glob("*.jsonl") if p != target), key=_age, reverse=True)
    for stale in older[max(0, keep - 1):]:
        stale.unlink(missing_ok=True)
    return target


def _age(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, path.name


def new_run_dir(root: str | Path, now: datetime | None = None) -> Path:
    """A new, empty folder under `root` named by the time (with -2, -3... when that second is taken)."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime(STAMP)
    for n in itertools.count(1):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def is_run(path: Path, marker: str) -> bool:
    """A real folder (not a link) that holds `marker` or is named by the time, as new_run_dir names them.

    >>> is_run(Path("/nonexistent/2024-05-01_12-00-00"), "results.json")
    False
    """
    return path.is_dir() and not path.is_symlink() and ((path / marker).is_file() or bool(_STAMPED.fullmatch(path.name)))


def runs(root: str | Path, marker: str) -> list[Path]:
    """The run folders directly under `root`, newest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if is_run(p, marker)), key=_age, reverse=True)


def list_runs(root: str | Path, marker: str) -> list[str]:
    """Names of the finished runs (those holding `marker`) under `root`, newest first."""
    return [p.name for p in runs(root, marker) if (p / marker).is_file()]


def run_dir(root: str | Path, name: str | None, marker: str) -> Path:
    """The finished run folder `name` directly under `root`; raises DataError for anything else."""
    base = Path(root).resolve()
    if not name or not _RUN_NAME.fullmatch(name):
        raise DataError("Pick a run from the list.")
    path = base / name
    if path.is_symlink() or path.resolve().parent != base or not (path / marker).is_file():
        raise DataError(f"There is no run {name!r}; pick one from the list.")
    return path


def prune_runs(root: str | Path, keep: int, marker: str, protect: Path | None = None) -> list[Path]:
    """Delete the oldest run folders under `root` so that at most `keep` remain; returns those deleted.

    Only folders that look like runs (is_run) count or go; `protect` (the run just made) always stays.
    """
    found = [p for p in runs(root, marker) if protect is None or p.resolve() != protect.resolve()]
    stale = found[max(0, keep - (protect is not None)):]
    for path in stale:
        shutil.rmtree(path)  # does not follow links inside the folder
    return stale


def shared_plotlyjs(root: str | Path) -> str:
    """Write plotly.js into `root` once; returns the src that pages one folder down (root/<run>/) load it by."""
    import plotly.offline

    path = Path(root) / PLOTLY_JS
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{PLOTLY_JS}.{os.getpid()}.tmp")
        partial.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        partial.replace(path)
    return f"../{PLOTLY_JS}"
