"""The public demo attacked over plain HTTP, as an anonymous client and as each role.

Each handler is called the way an attacker would: POST to Gradio's queue by event id, whether or
not the event is hidden from the API docs. See tests/support/raw_gradio.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from forensics.preference_store import PreferenceStore
from tests.security.conftest import ADMIN_KEY, LABELER_KEY, PASSWORDS, RATE_KEY
from tests.support import raw_gradio as raw
from tests.support.app_process import launch_app

LINUX = "I want you to act as a Linux terminal"


def signed_in(workbench, user: str):
    return raw.login(f"{workbench.url}/team/", user, PASSWORDS[user])


def chat(client, text: str, session: str):
    cfg = raw.config(client)
    return raw.call(client, raw.fn_by_api_name(cfg, "chat"), [text, [], None], session_hash=session)


def route_of(workbench, text: str, key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(f"{workbench.url}/v1/route", json={"query": text}, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()["route"]


def stored(workbench) -> PreferenceStore:
    return PreferenceStore(workbench.store)


@pytest.fixture(scope="module")
def votes(workbench):
    """One vote each by bob and carol (labelers) and by an anonymous visitor, through the real handlers."""
    ids = {}
    for who in ("bob", "carol", None):
        client = signed_in(workbench, who) if who else raw.anonymous(workbench.url + "/")
        cfg = raw.config(client)
        session = uuid.uuid4().hex[:12]
        assert raw.call(client, raw.fn_by_api_name(cfg, "chat"), ["Write a python function to add", [], None],
                        session_hash=session).success
        assert raw.call(client, raw.fn_by_api_name(cfg, "try_other"), [None], session_hash=session).success
        saved = raw.call(client, raw.fn_by_api_name(cfg, "vote_b"), [None], session_hash=session)
        assert saved.success and "Saved preference #" in saved.data[0], saved
        ids[who or "anonymous"] = int(saved.data[0].split("#")[1].split(":")[0])
    return ids


PRIVILEGED = [  # (trigger elem_id, data after the defaults, what the refusal names)
    ("data-delete", {"pref_id": 1}, "delete preferences"),
    ("data-undo", {"corr_id": 1}, "undo corrections"),
    ("data-promote", {"corr_id": 1}, "admin"),
    ("data-export-answers", {}, "export"),
    ("data-export-routing", {}, "export"),
    ("bench-run", {}, "admin"),
    ("bench-calibrate", {}, "admin"),
    ("inbox-refresh", {}, "use the inbox"),
    ("inbox-confirm", {}, "label routed turns"),
    ("inbox-label", {}, "label routed turns"),
    ("inbox-preview", {}, "preview a label"),
    ("data-apply-mapping", {}, "mapping"),
]


@pytest.mark.parametrize("elem_id, values, names", PRIVILEGED, ids=[p[0] for p in PRIVILEGED])
def test_an_anonymous_direct_call_of_a_privileged_handler_is_refused(workbench, votes, elem_id, values, names):
    client = raw.anonymous(workbench.url + "/")
    cfg = raw.config(client)
    fn = raw.fn_index(cfg, elem_id)
    with stored(workbench) as store:
        before = (store.count("preferences"), len(store.corrections()))
    outcome = raw.call(client, fn, raw.inputs_for(cfg, fn, **values))
    assert not outcome.success and names in outcome.error and "Sign in" in outcome.error, outcome
    with stored(workbench) as store:
        assert (store.count("preferences"), len(store.corrections())) == before


def test_an_anonymous_client_reads_no_stored_prompts(workbench, votes):
    client = raw.anonymous(workbench.url + "/")
    cfg = raw.config(client)
    fn = raw.fn_by_api_name(cfg, "data")
    outcome = raw.call(client, fn, raw.inputs_for(cfg, fn))
    assert outcome.success
    prefs, _chart, corrections, message = outcome.data
    assert prefs["data"] in ([], [[]]) or not any(prefs["data"][0]), "no rows for a visitor"
    assert "python" not in str(outcome.data) and "sign in" in message


def test_a_labeler_sees_and_deletes_only_their_own(workbench, votes):
    bob = signed_in(workbench, "bob")
    cfg = raw.config(bob)
    fn = raw.fn_by_api_name(cfg, "data")
    table = raw.call(bob, fn, raw.inputs_for(cfg, fn)).data[0]
    users = {row[table["headers"].index("user")] for row in table["data"]}
    assert users == {"bob"}
    delete = raw.fn_index(cfg, "data-delete")
    refused = raw.call(bob, delete, [votes["carol"]])
    assert refused.success and "no preference" in refused.data[0]
    with stored(workbench) as store:
        assert {p.id for p in store.preferences()} >= {votes["carol"], votes["bob"]}
    export = raw.call(bob, raw.fn_index(cfg, "data-export-routing"), [])
    assert export.success and "Exported 1 rows" in export.data[1]
    assert not raw.call(bob, raw.fn_index(cfg, "bench-run"), raw.inputs_for(cfg, raw.fn_index(cfg, "bench-run"))).success


def test_an_admin_sees_everyone_and_may_delete(workbench, votes):
    alice = signed_in(workbench, "alice")
    cfg = raw.config(alice)
    fn = raw.fn_by_api_name(cfg, "data")
    table = raw.call(alice, fn, raw.inputs_for(cfg, fn)).data[0]
    users = {row[table["headers"].index("user")] for row in table["data"]}
    assert {"bob", "carol"} <= users and any(u.startswith("anonymous:") for u in users)
    deleted = raw.call(alice, raw.fn_index(cfg, "data-delete"), [votes["carol"]])
    assert deleted.success and "Deleted" in deleted.data[0]


def test_poisoning_a_route_stays_in_the_visitors_session(workbench):
    """Anonymous chat + "should have gone to math" must not reroute anyone else, now or after a restart."""
    assert route_of(workbench, LINUX) == "roleplay"
    visitor = raw.anonymous(workbench.url + "/")
    cfg = raw.config(visitor)
    session = uuid.uuid4().hex[:12]
    assert chat(visitor, LINUX, session).success
    corrected = raw.call(visitor, raw.fn_by_api_name(cfg, "correct"), [None, "math"], session_hash=session)
    assert corrected.success and "this session only" in corrected.data[0]
    again = chat(visitor, LINUX, session)
    assert "route **math**" in str(again.data[0][-1]) and "tier **session**" in str(again.data[0][-1])
    other = chat(raw.anonymous(workbench.url + "/"), LINUX, uuid.uuid4().hex[:12])
    assert "route **roleplay**" in str(other.data[0][-1])
    assert route_of(workbench, LINUX) == "roleplay"
    restarted = launch_app(*workbench.overrides, env=workbench.env, log=workbench.tmp / "restart.log")
    try:
        response = httpx.post(f"{restarted.url}/v1/route", json={"query": LINUX}, timeout=30).json()
        assert response["route"] == "roleplay"
    finally:
        restarted.stop()
    with stored(workbench) as store:
        [pending] = [c for c in store.corrections() if c.query == LINUX]
    assert pending.scope == "session" and pending.user.startswith("anonymous:")


def test_a_correction_to_the_route_taken_is_rejected(workbench):
    bob = signed_in(workbench, "bob")
    session = uuid.uuid4().hex[:12]
    assert chat(bob, "Write a python function that sorts a list", session).success
    outcome = raw.call(bob, raw.fn_by_api_name(raw.config(bob), "correct"), [None, "code"], session_hash=session)
    assert "already went to **code**" in outcome.data[0]
    with stored(workbench) as store:
        assert not [c for c in store.corrections() if c.query.startswith("Write a python function that sorts")]


def test_a_body_over_the_limit_gets_413(workbench):
    big = "x" * 2_000_000
    assert httpx.post(f"{workbench.url}/v1/route", json={"query": big}, timeout=30).status_code == 413
    join = httpx.post(f"{workbench.url}/gradio_api/queue/join", timeout=30,
                      json={"data": [big, [], None], "fn_index": 0, "session_hash": "abc123"})
    assert join.status_code == 413
    chunked = httpx.post(f"{workbench.url}/v1/route", content=iter([b'{"query": "', b"y" * 1_500_000, b'"}']),
                         headers={"content-type": "application/json"}, timeout=30)
    assert chunked.status_code == 413


def test_visitors_cannot_upload_files(workbench):
    files = {"files": ("x.jsonl", b'{"query": "q", "route": "code"}\n' * 1000, "application/json")}
    assert httpx.post(f"{workbench.url}/gradio_api/upload", files=files, timeout=30).status_code == 403
    assert httpx.post(f"{workbench.url}/team/gradio_api/upload", files=files, timeout=30).status_code == 401


def test_a_long_message_is_stored_clipped_with_its_length(workbench):
    visitor = raw.anonymous(workbench.url + "/")
    text = "z" * 900_000  # under the 1 MB body limit, over the 20,000 stored characters
    assert chat(visitor, text, uuid.uuid4().hex[:12]).success
    with stored(workbench) as store:
        [event] = [e for e in store.routing_events() if e.query.startswith("zzz")]
    assert len(event.query) == 20_000 and event.original_chars == 900_000 and event.outcome == "refused"


def test_rest_keys_and_rate_limit(workbench):
    url = f"{workbench.url}/v1/route"
    body = {"query": "What is 12 times 7?"}
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer not-a-real-key-at-all"}).status_code == 401
    assert route_of(workbench, body["query"], ADMIN_KEY) and route_of(workbench, body["query"], LABELER_KEY)
    codes = [httpx.post(url, json=body, headers={"Authorization": f"Bearer {RATE_KEY}"}) for _ in range(35)]
    assert [c.status_code for c in codes[:30]] == [200] * 30
    limited = codes[-1]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert route_of(workbench, body["query"], LABELER_KEY), "one key's limit is not another's"


def test_the_page_may_not_fetch_images_from_elsewhere(workbench):
    page = httpx.get(workbench.url + "/", timeout=30)
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: blob:" in policy and "media-src 'self'" in policy


def test_wrong_passwords_fail_and_are_throttled(workbench):
    root = f"{workbench.url}/team/"
    for _ in range(5):
        assert httpx.post(root + "login", data={"username": "carol", "password": "guess"}).status_code == 400
    locked = httpx.post(root + "login", data={"username": "carol", "password": PASSWORDS["carol"]})
    assert locked.status_code == 400, "five wrong passwords lock the name for a minute"
    assert httpx.get(root + "config").status_code == 401, "the team app needs a login"


def test_zz_no_secret_was_printed(workbench):
    """Runs last in this file: nothing the app printed contains a password or a key."""
    output = workbench.app.output()
    for secret in (*PASSWORDS.values(), ADMIN_KEY, LABELER_KEY, RATE_KEY):
        assert secret not in output


GRID_PAYLOADS = [
    "${oc.env:HOME}",
    "router.semantic.threshold=${oc.env:HOME}",
    "+x._target_=pathlib.Path.unlink",
    "router.semantic.head._target_=builtins.open",
    "hydra.run.dir=/tmp/x",
    "~router.semantic",
    "router=../../etc/passwd",
    "router.semantic.threshold=0.1 +encoder._args_=[1]",
]


@pytest.mark.parametrize("payload", GRID_PAYLOADS)
def test_grid_payloads_are_refused_by_name_and_nothing_runs(workbench, payload):
    canary = workbench.tmp / "canary.txt"
    canary.write_text("still here", encoding="utf-8")
    alice = signed_in(workbench, "alice")
    cfg = raw.config(alice)
    fn = raw.fn_index(cfg, "bench-run")
    runs_before = sorted(workbench.runs.glob("*")) if workbench.runs.exists() else []
    outcome = raw.call(alice, fn, raw.inputs_for(cfg, fn, bench_grid=payload.replace("canary", str(canary))))
    assert outcome.success, outcome
    summary = outcome.data[0]
    assert summary.startswith("⚠️") and "Grid item" in summary, summary
    home = os.environ.get("HOME", "/root")
    assert home not in str(outcome.data), "an environment value came back"
    assert canary.read_text(encoding="utf-8") == "still here"
    assert (sorted(workbench.runs.glob("*")) if workbench.runs.exists() else []) == runs_before
    assert not (workbench.tmp / "x").exists() and not Path("/tmp/x").exists()


def test_a_huge_grid_is_refused_even_when_confirmed(workbench):
    alice = signed_in(workbench, "alice")
    cfg = raw.config(alice)
    fn = raw.fn_index(cfg, "bench-run")
    thresholds = ",".join(f"{i / 100:.2f}" for i in range(100))
    top_k = ",".join(str(k) for k in range(1, 51))
    grid = f"router.semantic.threshold={thresholds} router.semantic.top_k={top_k} router.semantic.margin=0,1"
    data = raw.inputs_for(cfg, fn, bench_grid=grid)
    data[-1] = True  # "Run large grids" ticked: the hard limit still holds
    outcome = raw.call(alice, fn, data)
    assert outcome.success and "10000 configurations" in outcome.data[0] and "200" in outcome.data[0], outcome.data[0]
    assert not workbench.runs.exists() or not list(workbench.runs.glob("*/results.json"))


def test_a_data_path_outside_the_data_folder_is_refused(workbench):
    alice = signed_in(workbench, "alice")
    cfg = raw.config(alice)
    fn = raw.fn_index(cfg, "bench-run")
    for path in ("/etc/passwd", "../store/preferences.sqlite3", str(workbench.store)):
        outcome = raw.call(alice, fn, raw.inputs_for(cfg, fn, bench_data=path))
        assert outcome.success and "outside the benchmark data folder" in outcome.data[0], outcome.data[0]
    calibrate = raw.fn_index(cfg, "bench-calibrate")
    outcome = raw.call(alice, calibrate, ["/etc/passwd"])
    assert "outside the benchmark data folder" in str(outcome.data)


def test_an_admin_sweep_runs_and_a_calibration_stays_out_of_conf(workbench):
    alice = signed_in(workbench, "alice")
    cfg = raw.config(alice)
    sweep = raw.fn_index(cfg, "bench-run")
    outcome = raw.call(alice, sweep, raw.inputs_for(cfg, sweep, bench_data="labelled.jsonl",
                                                     bench_grid="router=keyword,hybrid"))
    assert outcome.success and "2 configurations" in outcome.data[0], outcome.data[0]
    conf = Path(__file__).resolve().parents[2] / "conf" / "router"
    before = sorted(p.name for p in conf.iterdir())
    calibrated = raw.call(alice, raw.fn_index(cfg, "bench-calibrate"), ["labelled.jsonl"])
    assert calibrated.success and sorted(p.name for p in conf.iterdir()) == before
    assert list(workbench.calibrations.glob("*/calibration.json"))
    assert not workbench.calibrated.exists()
    bob = signed_in(workbench, "bob")
    refused = raw.call(bob, raw.fn_index(raw.config(bob), "bench-apply"), [])
    assert not refused.success and "admin" in refused.error and not workbench.calibrated.exists()
    applied = raw.call(alice, raw.fn_index(cfg, "bench-apply"), [])
    assert applied.success and workbench.calibrated.exists()
