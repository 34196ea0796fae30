"""Replicas sharing one store agree: another flywheel's corrections, undos and promotions reach this router."""

import time

import pytest

from forensics.feedback import Flywheel
from forensics.preference_store import PreferenceStore
from forensics.store_sync import ReplicaSync
from tests.forensics.test_feedback import ODD, build_router
from tests.support.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "shared.sqlite3")
        return
    with fresh_database("replicas") as url:
        yield url


@pytest.fixture
def replicas(location, routes, fake_encoder):
    """Two flywheels, each with its own store connection and router, on one store."""
    with PreferenceStore(location) as a, PreferenceStore(location) as b:
        yield Flywheel(a, build_router(routes, fake_encoder)), Flywheel(b, build_router(routes, fake_encoder))


def routed(flywheel: Flywheel, query: str = ODD) -> str:
    return flywheel.router.route(query).route


def test_corrections_undos_and_promotions_reach_the_other_replica(replicas):
    a, b = replicas
    syncing = ReplicaSync(b)
    syncing._seen = b.store.corrections_version()
    assert routed(a) == routed(b) == "knowledge"
    fixed = a.correct(ODD, a.router.route(ODD), "math")
    assert routed(a) == "math" and routed(b) == "knowledge"
    assert syncing.step() == 1 and routed(b) == "math"
    assert syncing.step() == 0  # nothing new: the version did not move
    assert a.undo(fixed.id)
    assert syncing.step() == 1 and routed(a) == routed(b) == "knowledge"
    visitor = a.correct(ODD, a.router.route(ODD), "code", scope="session")
    assert syncing.step() == 0 and routed(b) == "knowledge"  # a visitor's correction stays out of every router
    assert b.promote(visitor.id)  # an admin on the other replica
    a_sync = ReplicaSync(a)
    assert a_sync.step() == 1 and routed(a) == routed(b) == "code"


def test_a_replica_applies_its_own_correction_once_even_when_sync_sees_it_first(replicas):
    a, b = replicas
    fixed = a.correct(ODD, a.router.route(ODD), "math")
    assert a.sync() == 0 and b.sync() == 1 and b.sync() == 0
    assert a.undo(fixed.id) and b.sync() == 1
    assert routed(a) == routed(b) == "knowledge"
    assert a.sync() == 0  # the undo already took it out here: not taken out twice


def test_the_background_thread_brings_a_correction_in(replicas):
    a, b = replicas
    syncing = ReplicaSync(b, interval_s=0.05).start()
    try:
        a.correct(ODD, a.router.route(ODD), "math")
        deadline = time.monotonic() + 60
        while routed(b) != "math" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert routed(b) == "math"
    finally:
        syncing.stop()
    with pytest.raises(ValueError, match="sync_seconds must be > 0"):
        ReplicaSync(b, interval_s=0)
