"""What only the SQLite store does (the shared behaviour is in test_contract.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from rasa_rpa.stores import open_store
from rasa_rpa.stores.sqlite import SQLiteJobStore
from rasa_rpa.stores.sqlite_schema import MIGRATIONS, SUPERSEDE_PROGRESS
from tests.stores.test_contract import new_job
from tests.waiting import async_wait_until


def test_relative_sqlite_url_is_resolved_against_the_config_folder(tmp_path):
    store = open_store("sqlite:///state/jobs.db", tmp_path)
    assert isinstance(store, SQLiteJobStore)
    assert store.path == tmp_path / "state" / "jobs.db"


def test_url_options(tmp_path):
    store = SQLiteJobStore.from_url(
        f"sqlite:///{tmp_path}/j.db?synchronous=full&busy_timeout=0.25", tmp_path
    )
    assert store.path == tmp_path / "j.db"
    assert store._synchronous == "FULL"
    assert store._busy_timeout == 0.25


async def test_wal_mode_is_on(tmp_path):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.close()


async def test_the_write_ahead_log_is_copied_back_off_the_event_loop(tmp_path):
    """Commits leave the log alone; the checkpoint thread moves it into the file.

    The writer's own threshold is 10,000 pages, so a database file that grows
    while the writer only commits a few dozen pages was written by the thread.
    """
    path = tmp_path / "jobs.db"
    store = SQLiteJobStore(path)
    store._checkpointer.interval = 0.05
    await store.open()
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    # The migration's pages are copied first: the file then holds every page.
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    size = pages * store.db.execute("PRAGMA page_size").fetchone()[0]
    await async_wait_until(
        lambda: path.stat().st_size >= size, 5, "the migration is in the file"
    )
    before = path.stat().st_size
    for n in range(300):
        await store.create_job(new_job(f"j{n}", f"c{n}"))
    deadline = time.monotonic() + 5
    while path.stat().st_size <= before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert path.stat().st_size > before
    await store.close()
    assert store._checkpointer._thread is None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 300


def test_job_updates_write_what_changed_even_when_it_compares_equal():
    from rasa_rpa.models import JobState
    from rasa_rpa.stores.sqlite_schema import job_updates

    before = new_job("j1", "c1")
    after = before.evolve(outputs={"n": True}, state=JobState.RUNNING)
    quiet = before.evolve(outputs={**before.outputs})  # equal, but a new value
    updates = job_updates({"j1": before, "j2": before}, {"j1": after, "j2": quiet})
    assert updates == {
        "UPDATE jobs SET state = ?, outputs = ? WHERE id = ?": [
            ("running", '{"n":true}', "j1")
        ],
        "UPDATE jobs SET outputs = ? WHERE id = ?": [("{}", "j2")],
    }


def test_coalescing_reads_only_pending_messages() -> None:
    """Its cost follows what waits, not everything a job ever sent.

    Left to its own choice SQLite took the per-job index, read every
    delivered update of the job and took 50 ms a claim after 1,600 updates.
    """
    db = sqlite3.connect(":memory:")
    for script in MIGRATIONS:
        db.executescript(script)
    plan = db.execute(
        f"EXPLAIN QUERY PLAN {SUPERSEDE_PROGRESS}",
        {"now": 1.0, "name": "EXTERNAL_rpa_progress", "note": ""},
    ).fetchall()
    searches = [row[3] for row in plan if "outbox" in row[3] or " o " in row[3]]
    assert searches and not any("outbox_by_job" in step for step in searches)
