"""One real workbench in public-demo mode with accounts, attacked over HTTP by the tests in this folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.app_process import AppProcess, launch_app
from tests.support.backends import FakeLLMServer

PASSWORDS = {"alice": "alice-pass-7f3k", "bob": "bob-pass-9q2m", "carol": "carol-pass-4x8z"}
ROLES = {"alice": "admin", "bob": "labeler", "carol": "labeler"}
ADMIN_KEY = "admin-key-0123456789abcdef"
LABELER_KEY = "labeler-key-0123456789abcdef"
RATE_KEY = "rate-key-0123456789abcdefgh"
REPLY = "Here is a careful answer."
LABELLED = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("who wrote the novel frankenstein", "knowledge"),
    ("A shop sells pens at $2 each. How much do 7 pens cost?", "math"),
]


@dataclass
class Workbench:
    """The launched app and the files it was given."""

    app: AppProcess
    backend: FakeLLMServer
    tmp: Path
    store: Path
    bench_dir: Path
    runs: Path
    calibrations: Path
    calibrated: Path
    overrides: tuple[str, ...]
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.app.url


def account_env() -> dict[str, str]:
    return {
        "WORKBENCH_USERS": ",".join(f"{u}:{ROLES[u]}:{p}" for u, p in PASSWORDS.items()),
        "WORKBENCH_API_KEYS": f"{ADMIN_KEY}:admin,{LABELER_KEY},{RATE_KEY}",
    }


@pytest.fixture(scope="session")
def backend():
    with FakeLLMServer(reply=REPLY, chunk_delay=0.005) as server:
        yield server


@pytest.fixture(scope="session")
def workbench(backend, tmp_path_factory) -> Workbench:
    tmp = tmp_path_factory.mktemp("public")
    bench = tmp / "bench"
    bench.mkdir()
    (bench / "labelled.jsonl").write_text(
        "".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in LABELLED), encoding="utf-8")
    store = tmp / "store" / "preferences.sqlite3"
    overrides = (
        "app.public_demo=true", f"ollama.host={backend.url}", f"store.path={store}",
        f"benchmarks.data_dir={bench}", f"benchmarks.data={bench / 'labelled.jsonl'}",
        f"benchmarks.out_dir={tmp / 'runs'}", f"benchmarks.calibrations_dir={tmp / 'calibrations'}",
        f"benchmarks.calibrated_path={tmp / 'conf' / 'calibrated.yaml'}",
        "limits.chat_per_minute=600", "limits.api_per_minute=30",
    )
    env = account_env()
    app = launch_app(*overrides, env=env, log=tmp / "app.log")
    yield Workbench(app, backend, tmp, store, bench, tmp / "runs", tmp / "calibrations",
                    tmp / "conf" / "calibrated.yaml", overrides, env)
    app.stop()
