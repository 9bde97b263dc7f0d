"""The SQLite store: one transaction per event, idempotent, ordered outbox, durable."""

from __future__ import annotations

import sqlite3

import pytest

from rasa_rpa.errors import JobNotFound, StoreError
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.stores import open_store
from rasa_rpa.stores.sqlite import SCHEMA_VERSION, SQLiteJobStore


@pytest.fixture
async def store(tmp_path):
    opened = SQLiteJobStore(tmp_path / "jobs.db")
    await opened.open()
    yield opened
    await opened.close()


def new_job(job_id: str = "j1", conversation: str = "c1") -> Job:
    return Job(
        id=job_id,
        automation="orders",
        provider="local",
        conversation_id=conversation,
        inputs={"customer": "ACME"},
    )


def event(event_id: str, kind: EventType, job_id: str = "j1", **data) -> JobEvent:
    return JobEvent(event_id, job_id, kind, data)


async def test_job_round_trip(store):
    await store.create_job(new_job())
    job = await store.get_job("j1")
    assert job.inputs == {"customer": "ACME"}
    assert job.state is JobState.PENDING
    with pytest.raises(JobNotFound):
        await store.get_job("missing")


async def test_event_updates_job_and_queues_in_one_go(store):
    await store.create_job(new_job())
    result = await store.record_event(event("e1", EventType.STARTED))
    assert result.job.state is JobState.RUNNING
    assert result.queued == 1
    assert (await store.get_job("j1")).state is JobState.RUNNING
    assert (await store.outbox_stats())["pending"] == 1


async def test_duplicate_event_is_acknowledged_not_applied(store):
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.PROGRESS, progress=10))
    again = await store.record_event(event("e1", EventType.PROGRESS, progress=10))
    assert again.duplicate
    assert again.queued == 0
    assert len(await store.job_events("j1")) == 1
    assert (await store.outbox_stats())["pending"] == 1


async def test_late_event_on_final_job_is_recorded_but_changes_nothing(store):
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.SUCCEEDED))
    late = await store.record_event(event("e2", EventType.FAILED, error="late"))
    assert late.job.state is JobState.SUCCEEDED
    assert not late.applied
    log = await store.job_events("j1")
    assert [e["applied"] for e in log] == [True, False]


async def test_event_for_unknown_job_leaves_nothing_behind(store):
    with pytest.raises(JobNotFound):
        await store.record_event(event("e1", EventType.STARTED, job_id="ghost"))
    assert await store.job_events("ghost") == []
    assert (await store.outbox_stats())["pending"] == 0


async def test_claim_hands_out_only_each_conversations_head(store):
    await store.create_job(new_job("a", "c1"))
    await store.create_job(new_job("b", "c2"))
    for n in range(3):
        await store.record_event(event(f"a{n}", EventType.PROGRESS, "a", progress=n))
    await store.record_event(event("b0", EventType.STARTED, "b"))
    first = await store.claim_due(1e12, limit=10, lease=30)
    assert [
        (
            m.conversation_id,
            m.payload["entities"]["rpa_progress"]
            if m.conversation_id == "c1"
            else None,
        )
        for m in first
    ] == [("c1", 0), ("c2", None)]
    # Leased heads are not handed out again, and nothing behind them either.
    assert await store.claim_due(1e12, limit=10, lease=30) == []
    await store.mark_delivered(first[0].seq, 1.0)
    second = await store.claim_due(1e12, limit=10, lease=30)
    assert [m.payload["entities"]["rpa_progress"] for m in second] == [1]


async def test_retry_waits_until_due_and_keeps_order(store):
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.PROGRESS, progress=5))
    [head] = await store.claim_due(100.0, limit=10, lease=30)
    await store.mark_retry(head.seq, "Rasa down", next_attempt_at=200.0)
    assert await store.claim_due(150.0, limit=10, lease=30) == []
    [again] = await store.claim_due(250.0, limit=10, lease=30)
    assert again.seq == head.seq
    assert again.attempts == 1
    assert again.last_error == "Rasa down"


async def test_dead_message_stops_blocking_its_conversation(store):
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.PROGRESS, progress=5))
    [head] = await store.claim_due(1.0, limit=10, lease=30)
    await store.mark_dead(head.seq, "intent not in domain", 1.0)
    [following] = await store.claim_due(2.0, limit=10, lease=30)
    assert following.seq > head.seq
    assert (await store.outbox_stats())["dead"] == 1


async def test_everything_survives_reopening(tmp_path):
    first = SQLiteJobStore(tmp_path / "jobs.db")
    await first.open()
    await first.create_job(new_job())
    await first.record_event(event("e1", EventType.STARTED))
    await first.close()
    second = open_store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path)
    await second.open()
    assert (await second.get_job("j1")).state is JobState.RUNNING
    assert len(await second.claim_due(1e12, limit=10, lease=30)) == 1
    await second.close()


async def test_schema_version_is_recorded_and_newer_schema_refused(tmp_path):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    await store.close()
    db = sqlite3.connect(tmp_path / "jobs.db")
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == (
        SCHEMA_VERSION
    )
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="upgrade rasa-rpa"):
        await SQLiteJobStore(tmp_path / "jobs.db").open()


async def test_latest_job_per_conversation(store):
    await store.create_job(new_job("old", "c1"))
    await store.create_job(new_job("new", "c1").evolve(created_at=2e9))
    await store.create_job(new_job("other", "c2"))
    latest = await store.latest_job("c1")
    assert latest is not None and latest.id == "new"
    assert await store.latest_job("nobody") is None


def test_relative_sqlite_url_is_resolved_against_the_config_folder(tmp_path):
    store = open_store("sqlite:///state/jobs.db", tmp_path)
    assert isinstance(store, SQLiteJobStore)
    assert store.path == tmp_path / "state" / "jobs.db"
