import dataclasses
import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

import forensics.preference_store as store_module
from forensics.dpo_pipeline import export_dpo_dataset
from forensics.preference_store import (
    Correction,
    Preference,
    PreferenceStore,
    RoutingEvent,
    StoreError,
    clean_text,
    open_backend,
)
from forensics.store_migrations import v1_tables
from router.errors import RouterError
from tests.support.postgres import fresh_database

REPO = Path(__file__).resolve().parents[2]
VERSION = len(store_module.MIGRATIONS)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a new store goes: a SQLite file, or a fresh PostgreSQL database (skipped without a server)."""
    if request.param == "sqlite":
        yield str(tmp_path / "prefs.sqlite3")
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def store(location):
    with PreferenceStore(location) as s:
        yield s


@pytest.fixture
def sqlite_store(tmp_path):
    with PreferenceStore(tmp_path / "prefs.sqlite3") as s:
        yield s


def schema_version(store: PreferenceStore) -> int:
    with store._db.transaction() as conn:
        return store._db.schema_version(conn)

HOSTILE = [
    "\x00nul\x00 inside",
    "".join(chr(i) for i in range(32)) + "\x7f\x85\u2028\u2029",
    "'); DROP TABLE preferences; --",
    "emoji 👩‍💻 🏳️‍🌈 \U0001F600 and a family 👨‍👩‍👧‍👦",
    "RTL \u202eשלום עולם\u202c مرحبا بالعالم",
    "\ufeffBOM, \\u0000 as text, \"quotes\" and \\ backslashes",
]
MEGABYTE = ("".join(HOSTILE) * 20_000)[:1_000_000]


def pref(**kw) -> Preference:
    values = dict(prompt="what is 2+2?", answer_a="4", answer_b="five", expert_a="professor", model_a="qwen",
                  expert_b="zoomer", model_b="llama", verdict="a", route="math",
                  created_at="2025-01-01T00:00:00+00:00")
    return Preference(**{**values, **kw})


def event(**kw) -> RoutingEvent:
    values = dict(query="hello", route="chitchat", expert="zoomer", model="llama", tier="L2", score=0.61,
                  margin=0.12, router_us=850.5, ttft_ms=120.0, total_ms=900.0, outcome="answered",
                  created_at="2025-01-01T00:00:00+00:00")
    return RoutingEvent(**{**values, **kw})


def test_store_error_is_a_router_error():
    assert issubclass(StoreError, RouterError)


def test_preference_round_trip(store):
    p = pref(history=[{"role": "user", "content": "hi", "metadata": {}}, {"role": "assistant", "content": "yo"}],
             decision={"route": "math", "tier": "L1", "score": 1.0, "top_routes": [["math", 0.9]]},
             timings={"router_us": 12.5, "ttft_ms": None})
    pid = store.add_preference(p)
    [got] = store.preferences()
    assert got == dataclasses.replace(p, id=pid, app_version=store.app_version)
    assert got.history == ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"})
    assert got.chosen == ("4", "professor") and got.rejected == ("five", "zoomer")


def test_created_at_is_filled_and_normalised_to_utc(store):
    store.add_preference(pref(created_at=None))
    store.add_preference(pref(created_at="2025-03-01T12:00:00+02:00"))
    store.add_preference(pref(created_at="2025-03-01T09:30:00Z", app_version="9.9"))
    newest, moved, utc = store.preferences()
    assert newest.created_at.endswith("+00:00") and newest.created_at > "2025"
    assert moved.created_at == "2025-03-01T10:00:00.000000+00:00"
    assert utc.created_at == "2025-03-01T09:30:00.000000+00:00" and utc.app_version == "9.9"
    assert newest.app_version == store.app_version != ""


def test_correction_round_trip_and_undo(store):
    c = Correction(query="solve 2x=4", wrong_route="code", right_route="math", decision={"tier": "L2"},
                   created_at="2025-01-02T00:00:00Z", app_version="1")
    cid = store.add_correction(c)
    store.add_correction(Correction(query="hi", right_route="chitchat", created_at="2025-01-03T00:00:00Z"))
    assert store.corrections()[1] == dataclasses.replace(c, id=cid)
    assert store.undo_correction(cid) is True
    assert store.undo_correction(cid) is False  # already undone
    assert store.undo_correction(999) is False
    assert [x.query for x in store.corrections()] == ["hi"]
    undone = [x for x in store.corrections(include_undone=True) if x.id == cid]
    assert undone[0].undone_at is not None and store.count("corrections") == 2


def test_routing_event_round_trip_and_limit(store):
    e = event(error="boom", outcome="failed", model=None, ttft_ms=None)
    eid = store.add_routing_event(e)
    for i in range(3):
        store.add_routing_event(event(query=f"q{i}", created_at=f"2025-02-0{i + 1}T00:00:00Z"))
    assert store.routing_events()[-1] == dataclasses.replace(e, id=eid, app_version=store.app_version)
    assert [x.query for x in store.routing_events(limit=2)] == ["q2", "q1"]
    assert store.count("routing_events") == 4


@pytest.mark.parametrize("make, field, bad", [
    (pref, "verdict", "A"), (event, "outcome", "ok"), (event, "tier", "L3"),
])
def test_invalid_values_name_what_is_allowed(make, field, bad):
    with pytest.raises(ValueError, match="Allowed: "):
        make(**{field: bad})


def test_invalid_history_and_dates_are_refused():
    with pytest.raises(ValueError, match="history\\[0\\]"):
        pref(history=[{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        pref(created_at="yesterday")
    with pytest.raises(TypeError, match="prompt must be a str"):
        pref(prompt=None)


def test_preference_filters_newest_first(store):
    store.add_preference(pref(prompt="old", route="math", created_at="2025-01-01T00:00:00Z"))
    store.add_preference(pref(prompt="mid", route="code", verdict="tie", created_at="2025-02-01T00:00:00Z"))
    store.add_preference(pref(prompt="new", route="code", expert_a="coder", verdict="b",
                              created_at="2025-03-01T00:00:00Z"))
    prompts = lambda **kw: [p.prompt for p in store.preferences(**kw)]  # noqa: E731
    assert prompts() == ["new", "mid", "old"]
    assert prompts(route="code") == ["new", "mid"]
    assert prompts(expert="zoomer") == ["new", "mid", "old"]  # either side
    assert prompts(expert="coder") == ["new"]
    assert prompts(verdict="tie") == ["mid"]
    assert prompts(since="2025-02-01") == ["new", "mid"]
    assert prompts(since=date(2025, 2, 2), route="code") == ["new"]
    with pytest.raises(ValueError, match="Allowed: a, b, tie, both_bad"):
        store.preferences(verdict="draw")


def test_delete_preference(store):
    pid = store.add_preference(pref())
    assert store.delete_preference(pid) is True
    assert store.delete_preference(pid) is False
    assert store.count("preferences") == 0
    assert store.add_preference(pref()) != pid  # ids of deleted votes are never reused


def test_win_rates(store):
    for verdict in ("a", "a", "b", "tie", "both_bad"):
        store.add_preference(pref(verdict=verdict))
    store.add_preference(pref(route="code", verdict="tie"))
    store.add_preference(pref(expert_b="professor", verdict="a"))  # an expert against itself: left out
    rows = {(r["route"], r["expert"]): r for r in store.win_rates()}
    assert rows[("math", "professor")] == {"route": "math", "expert": "professor", "wins": 2, "losses": 1,
                                           "ties": 1, "both_bad": 1, "n": 5, "win_rate": 2 / 3}
    assert rows[("math", "zoomer")]["win_rate"] == 1 / 3
    assert rows[("code", "zoomer")]["win_rate"] is None and rows[("code", "zoomer")]["ties"] == 1
    assert len(rows) == 4


def test_count_unknown_table_and_closed_store(location):
    store = PreferenceStore(location)
    with pytest.raises(ValueError, match="Available: preferences, corrections, routing_events"):
        store.count("sqlite_master")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.add_preference(pref())


def test_pragmas_and_parent_directory(tmp_path):
    path = tmp_path / "deep" / "er" / "prefs.sqlite3"
    with PreferenceStore(path) as store:
        conn = store._db.conn  # the settings are per connection, so look at the store's own
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store_module.MIGRATIONS) == 3
    assert path.is_file()


def _v4_add_rating(conn):
    conn.execute("ALTER TABLE preferences ADD COLUMN rating INTEGER")


def test_sqlite_file_of_version_0_is_migrated(tmp_path):
    v0 = tmp_path / "v0.sqlite3"
    with closing(sqlite3.connect(v0)) as conn:  # version 0: a SQLite file this store has never touched
        conn.execute("CREATE TABLE notes (x TEXT)")
        conn.commit()
    with PreferenceStore(v0) as store:
        assert store.count("preferences") == 0 and schema_version(store) == VERSION


def test_a_new_migration_runs_once(location, monkeypatch):
    with PreferenceStore(location) as store:
        pid = store.add_preference(pref())
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, _v4_add_rating])
    with PreferenceStore(location) as store:
        assert schema_version(store) == VERSION + 1
        assert store._db.read("SELECT rating FROM preferences WHERE id = ?", (pid,)) == [{"rating": None}]
    with PreferenceStore(location):  # already at the new version: nothing to do
        pass


def test_failed_migration_leaves_the_store_as_it_was(location, monkeypatch):
    PreferenceStore(location).close()

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        conn.execute("SELECT no_such_column FROM half_done")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, broken])
    with pytest.raises(StoreError, match="no_such_column"):
        PreferenceStore(location)
    monkeypatch.undo()
    with PreferenceStore(location) as store:
        assert schema_version(store) == VERSION
        with pytest.raises(StoreError, match="half_done"):
            store._db.read("SELECT * FROM half_done")


def test_newer_version_is_refused(location):
    with PreferenceStore(location) as store, store._db.transaction() as conn:
        store._db.set_schema_version(conn, 7)
    with pytest.raises(StoreError, match=f"schema version 7.*up to {VERSION}.*newer release"):
        PreferenceStore(location)


def test_corrupted_file(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
    with pytest.raises(StoreError, match="corrupted or is not a SQLite database") as info:
        PreferenceStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_parent_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "prefs.sqlite3"
    with pytest.raises(StoreError) as info:
        PreferenceStore(path)
    assert str(info.value) == (f"Cannot write preferences to {path}: {tmp_path / 'afile'} is not a directory. "
                               "Set store.path to a writable file.")
    assert isinstance(info.value.__cause__, OSError)


def test_read_only_file_system(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    path = tmp_path / "ro" / "y.sqlite3"
    with pytest.raises(StoreError) as info:
        PreferenceStore(path)
    assert str(info.value) == (f"Cannot write preferences to {path}: read-only file system. "
                               "Set store.path to a writable file.")


@pytest.mark.parametrize("locked", ["directory", "file", "both"])
def test_read_only_directory_or_file(tmp_path, locked):
    folder = tmp_path / "locked"
    path = folder / "p.sqlite3"
    folder.mkdir()
    if locked != "directory":
        PreferenceStore(path).close()
        path.chmod(0o400)
    if locked != "file":
        folder.chmod(0o500)
    try:
        if os.access(folder if locked != "file" else path, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(StoreError, match=f"Cannot write preferences to {path}: .*read-only|cannot be opened"):
            PreferenceStore(path)
    finally:
        folder.chmod(0o700)


def test_full_disk(sqlite_store):
    store = sqlite_store
    store.add_preference(pref())
    pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
    store._db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # a database this big fills the "disk"
    with pytest.raises(StoreError, match="disk is full") as info:
        store.add_preference(pref(answer_a="x" * 200_000))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert store.count("preferences") == 1  # the failed record left nothing behind
    store._db.conn.execute("PRAGMA max_page_count = 1073741823")
    store.add_preference(pref(answer_a="x" * 200_000))
    assert store.count("preferences") == 2


@pytest.mark.parametrize("text", [*HOSTILE, MEGABYTE], ids=[*map(str, range(len(HOSTILE))), "1MB"])
def test_hostile_text_round_trips(location, text):
    store = PreferenceStore(location, max_text_chars=len(MEGABYTE))  # exact below the bound
    p = pref(prompt=text, answer_a=text, answer_b=text[::-1], expert_a=text[:50], history=[{"role": "user",
             "content": text}], decision={text[:20]: text}, route=text[:30])
    c = Correction(query=text, wrong_route=text[:10], right_route=text[-10:])
    e = event(query=text, error=text)
    ids = store.add_preference(p), store.add_correction(c), store.add_routing_event(e)
    assert store.preferences()[0] == dataclasses.replace(p, id=ids[0], app_version=store.app_version)
    assert store.corrections()[0].query == text and store.routing_events()[0].error == text
    assert store.count("preferences") == 1  # the SQL-looking text stayed text
    store.close()


def test_lone_surrogates_become_replacement_characters(store):
    assert clean_text("pair \ud83d\ude00 stays") == "pair \U0001F600 stays"
    p = pref(prompt="lone \ud800 high, \udfff low", history=[{"role": "user", "content": "\udc80"}],
             decision={"k\ud800": ["\udfff"]})
    store.add_preference(p)
    got = store.preferences()[0]
    assert got.prompt == "lone \ufffd high, \ufffd low"
    assert got.history[0]["content"] == "\ufffd" and got.decision == {"k\ufffd": ["\ufffd"]}


def test_sixteen_threads_write_ten_thousand_records(store):
    barrier = threading.Barrier(16)
    ids: list[list[int]] = [[] for _ in range(16)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(625):
                if i % 2:
                    ids[n].append(store.add_preference(pref(prompt=f"{n}-{i}", created_at=None)))
                else:
                    ids[n].append(-store.add_routing_event(event(query=f"{n}-{i}", created_at=None)))
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    flat = [i for chunk in ids for i in chunk]
    assert len(set(flat)) == len(flat) == 10_000
    assert store.count("preferences") + store.count("routing_events") == 10_000
    assert store.count("preferences") == 16 * 312


WRITER = """
import sys
from forensics.preference_store import Correction, Preference, PreferenceStore, RoutingEvent

store = PreferenceStore(sys.argv[1], pool_size=1)
print("ready", flush=True)
i = 0
while True:
    i += 1
    if i % 3 == 0:
        n = store.add_preference(Preference(prompt=f"p{i}", answer_a="a" * 20_000, answer_b="b" * 9_000,
            expert_a="x", model_a="m", expert_b="y", model_b="n", verdict="ab"[i % 2]))
        print("preferences", n, flush=True)
    elif i % 3 == 1:
        n = store.add_routing_event(RoutingEvent(query=f"q{i}" * 500, route="r", expert="x", model="m",
            tier="L1", score=1.0, margin=0.5, router_us=3.0, outcome="answered"))
        print("routing_events", n, flush=True)
    else:
        n = store.add_correction(Correction(query=f"c{i}", wrong_route="a", right_route="b"))
        print("corrections", n, flush=True)
"""


def _wait_for_ready(log: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not log.read_text().startswith("ready\n"):
        assert proc.poll() is None, f"writer exited early: {log.read_text()}"
        assert time.monotonic() < deadline, "writer did not start"
        time.sleep(0.01)


def test_records_survive_sigkill(tmp_path, location):
    written: dict[str, set[int]] = {"preferences": set(), "routing_events": set(), "corrections": set()}
    for round_ in range(5):
        log = tmp_path / f"writer-{round_}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-c", WRITER, location], stdout=out, cwd=REPO)
        try:
            _wait_for_ready(log, proc)
            time.sleep(random.uniform(0.2, 0.5))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        lines = log.read_text().split("\n")[1:-1]  # the last piece may be a half-printed line
        for table, n in (line.split() for line in lines):
            written[table].add(int(n))
        if not location.startswith("postgresql"):
            with closing(sqlite3.connect(location)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with PreferenceStore(location) as store:
            for table, expected in written.items():
                stored = {row["id"] for row in store._db.read(f"SELECT id FROM {table}")}
                assert expected <= stored, f"round {round_}: {table} lost {sorted(expected - stored)[:5]}"
    assert all(len(ids) > 5 for ids in written.values())


def test_v1_store_gains_users_scopes_pairs_and_clipped_lengths(location):
    db = open_backend(location)
    with db.transaction() as conn:  # a store as the release before accounts wrote it
        db.schema_version(conn)
        v1_tables(conn)
        db.set_schema_version(conn, 1)
        conn.execute("INSERT INTO preferences (prompt, history, answer_a, answer_b, expert_a, model_a, expert_b, "
                     "model_b, verdict, route, created_at, app_version) VALUES ('2 plus 2', '[]', '4', 'five', "
                     "'professor', 'qwen', 'zoomer', 'llama', 'a', 'math', '2025-01-01T00:00:00.000000+00:00', '1')")
        conn.execute("INSERT INTO corrections (query, wrong_route, right_route, created_at, app_version) "
                     "VALUES ('solve x', 'code', 'math', '2025-01-02T00:00:00.000000+00:00', '1')")
        conn.execute("INSERT INTO routing_events (query, route, expert, model, tier, score, margin, router_us, "
                     "outcome, created_at, app_version) VALUES ('hi', 'chitchat', 'zoomer', 'llama', 'L2', 0.6, "
                     "0.1, 800.0, 'answered', '2025-01-03T00:00:00.000000+00:00', '1')")
    db.close()
    with PreferenceStore(location) as store:
        assert schema_version(store) == VERSION
        [p], [c], [e] = store.preferences(), store.corrections(), store.routing_events()
        assert (p.prompt, p.answer_b, p.verdict, p.route, p.app_version) == ("2 plus 2", "five", "a", "math", "1")
        assert (p.user, p.pair_id, p.original_chars) == ("", None, None)
        assert (c.query, c.wrong_route, c.right_route, c.user, c.scope, c.original_chars) == (
            "solve x", "code", "math", "", "global", None)
        assert (e.query, e.score, e.user, e.original_chars) == ("hi", 0.6, "", None)
        assert store.add_preference(pref(pair_id="p1", user="alice")) == store.add_preference(
            pref(pair_id="p1", user="alice", verdict="b"))  # the new unique index is in place


def test_clip_text():
    assert store_module.clip_text("abc", 3) == ("abc", None)
    assert store_module.clip_text("abcd", 3) == ("abc", 4)


def test_long_text_is_clipped_and_its_length_kept(store):
    huge = "x" * 5_000_000
    store.add_preference(pref(prompt=huge, answer_a=huge, answer_b="short",
                              history=[{"role": "user", "content": huge}, {"role": "assistant", "content": "ok"}]))
    store.add_preference(pref(prompt="short", answer_b=huge))
    store.add_correction(Correction(query=huge, right_route="math"))
    store.add_routing_event(event(query=huge, error=huge, outcome="failed"))
    store.add_routing_event(event(query="short", error=huge, outcome="failed"))
    answers_clipped, prompt_clipped = store.preferences()
    assert len(prompt_clipped.prompt) == 20_000 and prompt_clipped.original_chars == 5_000_000
    assert len(prompt_clipped.answer_a) == 20_000 and prompt_clipped.answer_b == "short"
    assert [len(m["content"]) for m in prompt_clipped.history] == [20_000, 2]
    assert len(answers_clipped.answer_b) == 20_000 and answers_clipped.original_chars is None  # the prompt was whole
    [c] = store.corrections()
    assert len(c.query) == 20_000 and c.original_chars == 5_000_000
    short_query, long_query = store.routing_events()
    assert len(long_query.query) == len(long_query.error) == 20_000 and long_query.original_chars == 5_000_000
    assert len(short_query.error) == 20_000 and short_query.original_chars is None


def test_the_bound_is_set_per_store_and_never_splits_a_character(tmp_path, location):
    with PreferenceStore(location, max_text_chars=4) as store:
        store.add_preference(pref(prompt="abc\ud83d\ude00tail"))  # a split pair is joined before clipping
        [p] = store.preferences()
        assert (p.prompt, p.original_chars) == ("abc\U0001F600", 8)
    with pytest.raises(ValueError, match="max_text_chars must be .* >= 1, got 0"):
        PreferenceStore(tmp_path / "q.sqlite3", max_text_chars=0)


def test_every_record_names_its_user_and_reads_filter_by_it(store):
    store.add_preference(pref(prompt="a1", user="alice"))
    store.add_preference(pref(prompt="b1", user="bob", verdict="b"))
    store.add_preference(pref(prompt="old"))
    store.add_correction(Correction(query="qa", right_route="math", user="alice"))
    store.add_correction(Correction(query="qv", right_route="math", user="anonymous:ab12cd", scope="session"))
    store.add_routing_event(event(query="ea", user="alice"))
    store.add_routing_event(event(query="ek", user="key:3f9a1c"))
    assert [p.prompt for p in store.preferences(user="alice")] == ["a1"]
    assert [p.prompt for p in store.preferences(user="")] == ["old"]
    assert len(store.preferences()) == 3
    assert [c.query for c in store.corrections(user="alice")] == ["qa"]
    assert [c.query for c in store.corrections(scope="session")] == ["qv"]
    assert store.corrections(user="alice", scope="session") == []
    assert [e.query for e in store.routing_events(user="key:3f9a1c")] == ["ek"]
    assert store.routing_events(limit=1, user="nobody") == []
    [professor] = [r for r in store.win_rates(user="bob") if r["expert"] == "professor"]
    assert (professor["wins"], professor["losses"], professor["n"]) == (0, 1, 1)
    with pytest.raises(ValueError, match="Allowed: global, session"):
        store.corrections(scope="private")
    with pytest.raises(ValueError, match="Allowed: global, session"):
        Correction(query="q", right_route="math", scope="private")
    with pytest.raises(TypeError, match="user must be a str"):
        pref(user=None)


def test_delete_and_undo_only_what_the_user_made(store):
    pid = store.add_preference(pref(user="alice"))
    assert store.delete_preference(pid, user="bob") is False
    assert store.delete_preference(pid, user="alice") is True
    cid = store.add_correction(Correction(query="q", right_route="math", user="alice"))
    assert store.undo_correction(cid, user="bob") is False and store.corrections()[0].undone_at is None
    assert store.undo_correction(cid, user="alice") is True
    other = store.add_preference(pref(user="bob"))
    assert store.delete_preference(other) is True  # no user: an admin deletes anyone's


def test_one_vote_per_pair_per_user(store):
    first = store.add_preference(pref(pair_id="pair-1", user="alice", created_at="2025-01-01T00:00:00Z"))
    store.add_preference(pref(pair_id="pair-1", user="bob"))
    again = store.add_preference(pref(pair_id="pair-1", user="alice", verdict="b", answer_a="four", model_b="m2",
                                      decision={"route": "math"}, timings={"ms": 5},
                                      created_at="2025-02-01T00:00:00Z"))
    assert again == first and store.count("preferences") == 2
    vote = store.preference_for_pair("pair-1", "alice")
    assert (vote.id, vote.verdict, vote.answer_a, vote.model_b, vote.decision, vote.timings) == (
        first, "b", "four", "m2", {"route": "math"}, {"ms": 5})
    assert vote.created_at.startswith("2025-02-01")
    assert store.preference_for_pair("pair-1", "carol") is None
    assert store.add_preference(pref()) != store.add_preference(pref())  # no pair_id: every vote is kept
    with pytest.raises(StoreError, match="(?i)unique"):  # the database holds the rule too, not only add_preference
        store._write("""UPDATE preferences SET pair_id = 'pair-1', "user" = 'alice' WHERE id = ?""",
                     (store.preference_for_pair("pair-1", "bob").id,))


def test_promote_correction(store):
    visitor = store.add_correction(Correction(query="q", right_route="math", user="anonymous:1", scope="session"))
    admin = store.add_correction(Correction(query="r", right_route="math", user="alice"))
    assert store.promote_correction(admin) is False  # already global
    assert store.promote_correction(visitor) is True
    assert store.correction(visitor).scope == "global" and store.promote_correction(visitor) is False
    undone = store.add_correction(Correction(query="s", right_route="math", scope="session"))
    store.undo_correction(undone)
    assert store.promote_correction(undone) is False and store.correction(undone).scope == "session"
    assert store.promote_correction(999) is False and store.correction(999) is None


def test_every_change_to_the_corrections_bumps_the_version_other_processes_read(location):
    with PreferenceStore(location) as store, PreferenceStore(location) as other:
        assert store.corrections_version() == other.corrections_version() == 0
        visitor = store.add_correction(Correction(query="q", right_route="math", scope="session"))
        assert other.corrections_version() == 1
        store.add_preference(pref())
        store.add_routing_event(event())
        assert other.corrections_version() == 1  # votes and routed turns leave the corrections alone
        assert store.promote_correction(visitor) and other.corrections_version() == 2
        assert store.undo_correction(visitor) and other.corrections_version() == 3
        assert not store.undo_correction(visitor) and not store.promote_correction(visitor)
        assert other.corrections_version() == 3  # nothing changed, nothing to notice


def test_a_waiting_replica_wakes_on_a_correction(location):
    """PostgreSQL wakes the waiter with NOTIFY; SQLite's wait is a plain timeout (it polls)."""
    if not location.startswith("postgresql"):
        pytest.skip("SQLite replicas poll: nothing wakes them early")
    with PreferenceStore(location) as waiter, PreferenceStore(location) as writer:
        waiter.wait_for_change(0.1)  # the first call starts listening
        woke = threading.Event()
        thread = threading.Thread(target=lambda: (waiter.wait_for_change(600), woke.set()), daemon=True)
        thread.start()
        writer.add_correction(Correction(query="q", right_route="math"))
        thread.join(120)
        assert woke.is_set()


def test_both_backends_export_the_same_files(tmp_path):
    with fresh_database() as url:
        files = []
        for location in (str(tmp_path / "p.sqlite3"), url):
            with PreferenceStore(location, app_version="1") as store:
                store.add_preference(pref(prompt="\x00 odd \ufdd0 text", history=[{"role": "user", "content": "hi"}]))
                store.add_preference(pref(verdict="b", created_at="2025-01-02T00:00:00Z"))
                store.add_preference(pref(verdict="tie", created_at="2025-01-03T00:00:00Z"))
                store.add_correction(Correction(query="solve x", wrong_route="code", right_route="math",
                                                created_at="2025-01-04T00:00:00Z"))
                for kind in ("answers", "routing"):
                    out = tmp_path / f"{len(files)}-{kind}.jsonl"
                    export_dpo_dataset(store, out, kind=kind)
                    files.append(out.read_bytes())
        assert files[:2] == files[2:] and all(files)


def test_store_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with PreferenceStore("sqlite:///data/prefs.sqlite3") as relative:
        assert relative.path == Path("data/prefs.sqlite3") and (tmp_path / "data" / "prefs.sqlite3").is_file()
    with PreferenceStore(f"sqlite:///{tmp_path}/abs.sqlite3") as absolute:
        assert absolute.path == tmp_path / "abs.sqlite3"
    with pytest.raises(StoreError, match="Unknown store URL scheme 'mysql'. Available: sqlite:///PATH, postgresql://"):
        PreferenceStore("mysql://bob@db/prefs")


def test_an_unreachable_server_is_named_without_its_password():
    with pytest.raises(StoreError) as info:
        PreferenceStore("postgresql://bob:hunter2@127.0.0.1:9/prefs", busy_timeout_s=1)
    message = str(info.value)
    assert "hunter2" not in message and "postgresql://bob@127.0.0.1:9/prefs" in message
    assert "Check that the PostgreSQL server is running" in message
