"""Launch the real workbench (`python app.py ...`) as a separate process for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.backends import unused_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_VARS = ("WORKBENCH_USERS", "WORKBENCH_API_KEYS")


class AppProcess:
    """A running app.py; its output goes to `log` (a file), so a test can read what it printed."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def launch_app(*overrides: str, env: Mapping[str, str] | None = None, log: Path | None = None,
               timeout_s: float = 180) -> AppProcess:
    """Start app.py on a free port with `overrides` and extra environment; wait until /healthz answers."""
    port = unused_port()
    environ = {k: v for k, v in os.environ.items() if k not in ACCOUNT_VARS}
    environ.update(env or {})
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"app-{port}.log"
    out = open(log, "w", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "app.py", f"app.port={port}", *overrides], cwd=ROOT, env=environ,
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return AppProcess(proc, url, log)
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app.py did not start within {timeout_s:.0f} s:\n{log.read_text()}")
