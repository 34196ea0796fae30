"""Replicas agree: a background thread that brings other replicas' corrections into this one's router.

Every correction added, undone or promoted bumps the store's corrections version. The thread waits
for a change (PostgreSQL: LISTEN/NOTIFY, at most `interval_s`; SQLite: `interval_s`), reads the
version and, when it moved, calls `Flywheel.sync`. Requests never wait for it: the router swaps
its examples the same way a local correction does.
"""

from __future__ import annotations

import logging
import threading

from forensics.feedback import Flywheel
from forensics.store_base import StoreError

__all__ = ["ReplicaSync"]

log = logging.getLogger(__name__)


class ReplicaSync:
    """Keeps one flywheel's router in step with the shared store, until `stop`."""

    def __init__(self, flywheel: Flywheel, interval_s: float = 2.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"store.sync_seconds must be > 0, got {interval_s!r}.")
        self.flywheel, self.interval_s = flywheel, float(interval_s)
        self._stop = threading.Event()
        self._seen: int | None = None
        self._thread = threading.Thread(target=self._run, name="store-sync", daemon=True)

    def start(self) -> ReplicaSync:
        self._seen = self.flywheel.store.corrections_version()  # restore() has just applied everything up to here
        self._thread.start()
        return self

    def step(self) -> int:
        """Apply what changed since the last step; returns how many corrections changed in the router."""
        # Version first, corrections second: a change made in between bumps the version past what is
        # recorded here, so the next step reads the corrections again.
        version = self.flywheel.store.corrections_version()
        if version == self._seen:
            return 0
        changed = self.flywheel.sync()
        self._seen = version
        if changed:
            log.info("Store version %s: %d correction(s) applied or taken back", version, changed)
        return changed

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self.flywheel.store.wait_for_change(self.interval_s)
            except StoreError as e:  # the store is down for now: keep serving, try again later
                log.warning("Replica sync: %s", e)
                self._stop.wait(self.interval_s)
            except Exception:  # noqa: BLE001  (a bug here must not kill the thread that keeps replicas in step)
                log.exception("Replica sync failed; retrying")
                self._stop.wait(self.interval_s)

    def stop(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout_s if timeout_s is not None else self.interval_s + 5)
