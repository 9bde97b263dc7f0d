"""The job store contract, run against every backend: SQLite and PostgreSQL.

The PostgreSQL half needs the server at 127.0.0.1:5432 and fails (it is not
skipped) when it is down. Each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from rasa_rpa.errors import JobLimitReached, JobNotFound, StoreError
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.stores import JobStore
from rasa_rpa.stores.postgres import PostgresJobStore
from rasa_rpa.stores.postgres_schema import (
    CLAIM as _CLAIM,
    SCHEMA_VERSION as PG_SCHEMA_VERSION,
)
from rasa_rpa.stores.sqlite import SQLiteJobStore
from rasa_rpa.stores.sqlite_schema import SCHEMA_VERSION
from tests.waiting import async_wait_until

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
assert SCHEMA_VERSION == PG_SCHEMA_VERSION == 6, "both stores move in step"
BACKENDS = ["sqlite", "postgres"]


class Backend:
    """Opens stores on one database (a file, or a schema) and reads it raw."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "jobs.db"
        self.schema = f"rpa_test_{secrets.token_hex(6)}"
        self.opened: list[JobStore] = []

    def new(self) -> JobStore:
        if self.kind == "sqlite":
            return SQLiteJobStore(self.path)
        return PostgresJobStore.from_url(
            f"{PG_URL}?schema={self.schema}&pool_size=4", Path()
        )

    async def open(self) -> JobStore:
        store = self.new()
        await store.open()
        self.opened.append(store)
        return store

    async def sql(self, query: str) -> Any:
        """Run ``query`` on the store's database; the first value it returns."""
        if self.kind == "sqlite":
            db = sqlite3.connect(self.path)
            try:
                row = db.execute(query).fetchone()
                db.commit()
            finally:
                db.close()
            return None if row is None else row[0]
        conn = await asyncpg.connect(
            PG_URL, server_settings={"search_path": self.schema}
        )
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    async def cleanup(self) -> None:
        for store in self.opened:
            await store.close()
        if self.kind == "postgres":
            conn = await asyncpg.connect(PG_URL)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: Any, tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def pg_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend("postgres", tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def store(backend: Backend) -> JobStore:
    return await backend.open()


def new_job(job_id: str = "j1", conversation: str = "c1", **fields: Any) -> Job:
    return Job(
        id=job_id,
        automation="orders",
        provider="local",
        conversation_id=conversation,
        inputs={"customer": "ACME", "z": 1, "a": [1, "\u0000"]},
        **fields,
    )


def event(event_id: str, kind: EventType, job_id: str = "j1", **data: Any) -> JobEvent:
    return JobEvent(event_id, job_id, kind, data)


def progress(message: Any) -> Any:
    return message.payload["entities"]["rpa_progress"]


async def test_job_round_trip(store: JobStore) -> None:
    created = new_job(deadline_at=1234.5, output_channel="rest")
    await store.create_job(created)
    job = await store.get_job("j1")
    assert job == created
    assert list(job.inputs) == ["customer", "z", "a"]  # key order kept
    assert job.state is JobState.PENDING
    with pytest.raises(JobNotFound):
        await store.get_job("missing")
    with pytest.raises(StoreError):
        await store.create_job(new_job())


async def test_jobs_are_found_by_id_prefix_newest_first(store: JobStore) -> None:
    ids = ["abc1230" + "0" * 25, "abc1231" + "f" * 25, "abc1240" + "0" * 25]
    for n, job_id in enumerate(ids):
        await store.create_job(new_job(job_id, f"c{n}", created_at=100.0 + n))
    found = await store.jobs_with_id_prefix("abc123")
    assert [job.id for job in found] == [ids[1], ids[0]]
    assert [j.id for j in await store.jobs_with_id_prefix("abc1")] == ids[::-1]
    assert await store.jobs_with_id_prefix("abd") == []


async def test_update_job_sets_only_plain_fields(store: JobStore) -> None:
    await store.create_job(new_job())
    job = await store.update_job("j1", provider_ref="R-1", message="queued")
    assert (job.provider_ref, job.message) == ("R-1", "queued")
    with pytest.raises(ValueError):
        await store.update_job("j1", state="succeeded")
    with pytest.raises(JobNotFound):
        await store.update_job("ghost", message="x")


async def test_event_updates_job_and_queues_in_one_go(store: JobStore) -> None:
    await store.create_job(new_job())
    result = await store.record_event(event("e1", EventType.STARTED))
    assert result.job.state is JobState.RUNNING
    assert (result.applied, result.duplicate, result.queued) == (True, False, 1)
    assert (await store.get_job("j1")) == result.job
    assert await store.outbox_stats() == {
        "pending": 1,
        "delivered": 0,
        "dead": 0,
        "discarded": 0,
    }


async def test_duplicate_event_is_acknowledged_not_applied(store: JobStore) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.PROGRESS, progress=10))
    again = await store.record_event(event("e1", EventType.PROGRESS, progress=10))
    assert again.duplicate
    assert not again.applied
    assert again.queued == 0
    log = await store.job_events("j1")
    assert [(e["id"], e["type"], e["data"]) for e in log] == [
        ("e1", "job.progress", {"progress": 10})
    ]
    assert (await store.outbox_stats())["pending"] == 1


async def test_late_event_on_final_job_is_recorded_but_changes_nothing(
    store: JobStore,
) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.SUCCEEDED))
    late = await store.record_event(event("e2", EventType.FAILED, error="late"))
    assert late.job.state is JobState.SUCCEEDED
    assert not late.applied
    assert not late.duplicate
    log = await store.job_events("j1")
    assert [e["applied"] for e in log] == [True, False]


async def test_event_for_unknown_job_leaves_nothing_behind(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.record_event(event("e1", EventType.STARTED, job_id="ghost"))
    assert await store.job_events("ghost") == []
    assert (await store.outbox_stats())["pending"] == 0


async def test_claim_hands_out_only_each_conversations_head(store: JobStore) -> None:
    await store.create_job(new_job("a", "c1"))
    await store.create_job(new_job("b", "c2"))
    for n in range(3):
        await store.record_event(event(f"a{n}", EventType.PROGRESS, "a", progress=n))
    await store.record_event(event("b0", EventType.STARTED, "b"))
    first = await store.claim_due(1e12, limit=10, lease=30)
    assert [m.conversation_id for m in first] == ["c1", "c2"]
    assert progress(first[0]) == 0
    # Leased heads are not handed out again, and nothing behind them either.
    assert await store.claim_due(1e12, limit=10, lease=30) == []
    await store.mark_delivered(first[0].seq or 0, 1.0)
    second = await store.claim_due(1e12, limit=10, lease=30)
    assert [progress(m) for m in second] == [1]


async def test_retry_waits_until_due_and_keeps_order(store: JobStore) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.PROGRESS, progress=5))
    [head] = await store.claim_due(100.0, limit=10, lease=30)
    await store.mark_retry(head.seq or 0, "Rasa down", next_attempt_at=200.0)
    assert await store.claim_due(150.0, limit=10, lease=30) == []
    [again] = await store.claim_due(250.0, limit=10, lease=30)
    assert again.seq == head.seq
    assert again.attempts == 1
    assert again.last_error == "Rasa down"
    assert again.next_attempt_at == 200.0


async def test_lease_expiry_hands_an_unacknowledged_message_out_again(
    store: JobStore,
) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    [claimed] = await store.claim_due(100.0, limit=10, lease=30)
    assert await store.claim_due(129.0, limit=10, lease=30) == []
    [again] = await store.claim_due(131.0, limit=10, lease=30)
    assert again.seq == claimed.seq
    assert again.attempts == 0
    assert not claimed.in_doubt
    assert again.in_doubt  # the first claimer may have sent it before dying
    await store.mark_retry(again.seq, "down", next_attempt_at=140.0)
    [retried] = await store.claim_due(141.0, limit=10, lease=30)
    # A later failure does not tell whether the first claimer sent it.
    assert retried.in_doubt


async def test_doubt_survives_later_failures_reopening_and_dead_letters(
    backend: Backend,
) -> None:
    """Only a delivery settles a doubt: not a failure, a restart or a replay."""
    store = await backend.open()
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    [first] = await store.claim_due(100.0, limit=10, lease=30)
    assert not first.in_doubt
    await store.mark_retry(first.seq or 0, "no answer", 110.0, in_doubt=True)
    await store.close()
    store = await backend.open()  # an action server restart
    [second] = await store.claim_due(120.0, limit=10, lease=30)
    assert second.in_doubt
    await store.mark_retry(second.seq or 0, "tracker check refused", 130.0)
    [third] = await store.claim_due(140.0, limit=10, lease=30)
    assert third.in_doubt
    await store.mark_dead(third.seq or 0, "too old", 150.0)
    [dead] = await store.list_outbox(status="dead")
    assert dead.in_doubt
    assert await store.replay(dead.seq or 0, 160.0)
    [replayed] = await store.claim_due(170.0, limit=10, lease=30)
    assert replayed.in_doubt  # so the tracker is checked before it is sent
    await store.mark_delivered(replayed.seq or 0, 180.0)
    assert await backend.sql("SELECT COUNT(*) FROM outbox WHERE in_doubt") == 0
    assert await store.replay(replayed.seq or 0, 190.0)
    [again] = await store.claim_due(200.0, limit=10, lease=30)
    assert not again.in_doubt  # a delivered message replayed is sent, as asked


async def undo_schema_6(backend: Backend) -> None:
    """Take a store back to schema 5: no files, no retention indexes."""
    for statement in (
        "DROP TABLE file_chunks",
        "DROP TABLE files",
        "DROP INDEX job_events_by_time",
        "DROP INDEX jobs_finished",
        "DROP INDEX outbox_by_job",
        "DROP INDEX outbox_delivered",
        "DROP INDEX outbox_discarded",
    ):
        await backend.sql(statement)


async def undo_schema_5(backend: Backend) -> None:
    """Take a store back to schema 4: no files, no questions."""
    await undo_schema_6(backend)
    await backend.sql("DROP TABLE questions")


async def test_doubt_kept_in_the_lease_before_schema_3_is_migrated(
    backend: Backend,
) -> None:
    """Stores written before the flag marked doubt with a lease left in place."""
    store = await backend.open()
    await store.create_job(new_job("a", "c1"))
    await store.create_job(new_job("b", "c2"))
    await store.record_event(event("e1", EventType.STARTED, "a"))
    await store.record_event(event("e2", EventType.STARTED, "b"))
    await store.close()
    await undo_schema_5(backend)
    await backend.sql("ALTER TABLE outbox DROP COLUMN in_doubt")
    await backend.sql("ALTER TABLE outbox DROP COLUMN discarded_at")
    await backend.sql("UPDATE schema_version SET version = 2")
    # Schema 2's mark_retry(in_doubt=True): the lease set to the next attempt.
    await backend.sql(
        "UPDATE outbox SET lease_until = 200, next_attempt_at = 200, attempts = 1"
        " WHERE job_id = 'a'"
    )
    await backend.open()
    assert await backend.sql("SELECT version FROM schema_version") == SCHEMA_VERSION
    assert await backend.sql("SELECT job_id FROM outbox WHERE in_doubt") == "a"
    assert await backend.sql("SELECT COUNT(*) FROM outbox WHERE in_doubt") == 1


async def test_dead_message_stops_blocking_its_conversation(store: JobStore) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.PROGRESS, progress=5))
    [head] = await store.claim_due(1.0, limit=10, lease=30)
    await store.mark_dead(head.seq or 0, "intent not in domain", 1.0)
    [following] = await store.claim_due(2.0, limit=10, lease=30)
    assert (following.seq or 0) > (head.seq or 0)
    assert (await store.outbox_stats())["dead"] == 1


async def test_list_outbox_and_replay(store: JobStore) -> None:
    await store.create_job(new_job())
    await store.create_job(new_job("j2", "c2"))
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.STARTED, "j2"))
    head, other = await store.claim_due(1.0, limit=10, lease=30)
    await store.mark_dead(head.seq or 0, "intent not in domain", 1.0)
    await store.mark_delivered(other.seq or 0, 1.0)
    [dead] = await store.list_outbox()
    assert (dead.seq, dead.last_error, dead.attempts) == (
        head.seq,
        "intent not in domain",
        1,
    )
    assert dead.payload == head.payload
    assert await store.list_outbox(status="dead", job_id="j2") == []
    assert [m.seq for m in await store.list_outbox(status="delivered")] == [other.seq]
    with pytest.raises(ValueError):
        await store.list_outbox(status="lost")
    assert await store.replay(head.seq or 0, 5.0)
    assert not await store.replay(head.seq or 0, 5.0)  # pending already
    assert not await store.replay(999_999, 5.0)
    [pending] = await store.list_outbox(status="pending")
    assert (pending.seq, pending.attempts, pending.next_attempt_at) == (
        head.seq,
        0,
        5.0,
    )
    [again] = await store.claim_due(5.0, limit=10, lease=30)
    assert again.seq == head.seq


async def dead_head(store: JobStore, job_id: str = "j1") -> int:
    """The job's first message (its started intent), set aside as dead."""
    await store.create_job(new_job(job_id, f"conv-{job_id}"))
    await store.record_event(event(f"s-{job_id}", EventType.STARTED, job_id))
    [head] = await store.claim_due(1.0, limit=10, lease=30)
    await store.mark_dead(head.seq or 0, "Rasa answered 400: bad", 2.0)
    return head.seq or 0


async def test_discard_sets_a_dead_message_aside_for_good(store: JobStore) -> None:
    seq = await dead_head(store)
    await store.record_event(event("p", EventType.PROGRESS, progress=5))
    assert await store.discard(seq, 3.0)
    assert not await store.discard(seq, 4.0)  # once is enough
    stats = await store.outbox_stats()
    assert (stats["dead"], stats["discarded"], stats["pending"]) == (0, 1, 1)
    assert await store.list_outbox(status="dead") == []
    [kept] = await store.list_outbox(status="discarded", job_id="j1")
    assert (kept.seq, kept.last_error) == (seq, "Rasa answered 400: bad")
    # Never replayed, never handed out again.
    assert not await store.replay(seq, 5.0)
    assert [m.seq for m in await store.claim_due(6.0, limit=10, lease=30)] != [seq]
    assert (await store.outbox_stats())["discarded"] == 1
    # Only dead messages can be discarded: not pending ones, nor unknown seqs.
    [pending] = await store.list_outbox(status="pending")
    assert not await store.discard(pending.seq or 0, 7.0)
    assert not await store.discard(999_999, 7.0)


async def test_failing_lists_pending_messages_that_failed(store: JobStore) -> None:
    await store.create_job(new_job())
    await store.create_job(new_job("j2", "c2"))
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.STARTED, "j2"))
    first, _ = await store.claim_due(1.0, limit=10, lease=30)
    await store.mark_retry(first.seq or 0, "Rasa refused our credentials", 2.0)
    [failing] = await store.list_outbox(status="failing")
    assert (failing.seq, failing.attempts) == (first.seq, 1)
    assert failing.last_error == "Rasa refused our credentials"
    await store.mark_delivered(first.seq or 0, 3.0)
    assert await store.list_outbox(status="failing") == []
    assert "failing" not in await store.outbox_stats()  # a part of pending


async def test_dead_messages_stay_dead_when_schema_3_is_migrated(
    backend: Backend,
) -> None:
    store = await backend.open()
    seq = await dead_head(store)
    await store.close()
    await undo_schema_5(backend)
    await backend.sql("ALTER TABLE outbox DROP COLUMN discarded_at")
    await backend.sql("UPDATE schema_version SET version = 3")
    store = await backend.open()
    assert await backend.sql("SELECT version FROM schema_version") == SCHEMA_VERSION
    assert [m.seq for m in await store.list_outbox(status="dead")] == [seq]
    assert await store.discard(seq, 5.0)


async def test_everything_survives_reopening(backend: Backend) -> None:
    first = backend.new()
    await first.open()
    await first.create_job(new_job())
    await first.record_event(event("e1", EventType.STARTED))
    await first.close()
    second = await backend.open()
    assert (await second.get_job("j1")).state is JobState.RUNNING
    assert len(await second.claim_due(1e12, limit=10, lease=30)) == 1


async def test_schema_version_is_recorded_and_newer_schema_refused(
    backend: Backend,
) -> None:
    await backend.open()
    assert await backend.sql("SELECT version FROM schema_version") == SCHEMA_VERSION
    assert await backend.sql("SELECT COUNT(*) FROM schema_version") == 1
    await (await backend.open()).close()  # reopening migrates nothing
    assert await backend.sql("SELECT COUNT(*) FROM schema_version") == 1
    await backend.sql("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="upgrade rasa-rpa"):
        await backend.open()


async def test_stores_opening_together_migrate_once(backend: Backend) -> None:
    stores = [backend.new() for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    backend.opened.extend(stores)
    assert await backend.sql("SELECT version FROM schema_version") == SCHEMA_VERSION


async def test_latest_job_per_conversation(store: JobStore) -> None:
    await store.create_job(new_job("old", "c1"))
    await store.create_job(new_job("new", "c1").evolve(created_at=2e9))
    await store.create_job(new_job("other", "c2"))
    latest = await store.latest_job("c1")
    assert latest is not None and latest.id == "new"
    assert await store.latest_job("nobody") is None
    same = [new_job(f"t{n}", "c3", created_at=5.0) for n in range(3)]
    for job in same:
        await store.create_job(job)
    listed = await store.list_jobs(conversation_id="c3")
    assert [j.id for j in listed] == ["t2", "t1", "t0"]  # ties: newest insert first
    assert len(await store.list_jobs(limit=2)) == 2


async def test_job_limit_holds_for_concurrent_creates(backend: Backend) -> None:
    # Two stores on one database: two action-server workers or replicas.
    one, two = await backend.open(), await backend.open()
    racers = [new_job(f"r{n}", "c1") for n in range(8)]
    results = await asyncio.gather(
        *(
            (one, two)[n % 2].create_job(job, max_unfinished=1)
            for n, job in enumerate(racers)
        ),
        return_exceptions=True,
    )
    won = [job.id for job, result in zip(racers, results, strict=True) if not result]
    [winner] = won
    refusals = [result for result in results if result is not None]
    assert len(refusals) == 7
    for refusal in refusals:
        assert isinstance(refusal, JobLimitReached), refusal
        assert [job.id for job in refusal.running] == [winner]
        assert (refusal.automation, refusal.limit) == ("orders", 1)
    assert [job.id for job in await one.list_jobs(conversation_id="c1")] == [winner]
    # Each conversation and each automation has its own limit.
    await two.create_job(new_job("elsewhere", "c2"), max_unfinished=1)
    other = new_job("other", "c1").evolve(automation="x")
    await two.create_job(other, max_unfinished=1)
    # A finished job frees its place; a higher limit admits more.
    await one.record_event(event("done", EventType.SUCCEEDED, winner))
    await one.create_job(new_job("next", "c1"), max_unfinished=1)
    await two.create_job(new_job("more", "c1"), max_unfinished=2)
    with pytest.raises(JobLimitReached) as caught:
        await one.create_job(new_job("over", "c1"), max_unfinished=2)
    assert [job.id for job in caught.value.running] == ["more", "next"]
    unfinished = await two.list_jobs(conversation_id="c1", unfinished=True)
    assert [job.id for job in unfinished] == ["more", "next", "other"]


async def test_unfinished_jobs_by_deadline(store: JobStore) -> None:
    await store.create_job(new_job("late", deadline_at=300.0))
    await store.create_job(new_job("none"))
    await store.create_job(new_job("soon", deadline_at=100.0))
    await store.create_job(new_job("done", deadline_at=50.0))
    await store.record_event(event("e1", EventType.SUCCEEDED, "done"))
    jobs = await store.unfinished_jobs()
    assert [j.id for j in jobs] == ["none", "soon", "late"]


async def test_find_by_ref(store: JobStore) -> None:
    await store.create_job(new_job("a", provider_ref="R-1"))
    await store.create_job(new_job("b").evolve(provider="uipath", provider_ref="R-1"))
    found = await store.find_by_ref("uipath", "R-1")
    assert found is not None and found.id == "b"
    assert await store.find_by_ref("uipath", "R-2") is None


async def test_same_event_from_two_processes_is_applied_once(
    backend: Backend,
) -> None:
    one, two = await backend.open(), await backend.open()
    await one.create_job(new_job())
    for n in range(10):
        same = event(f"e{n}", EventType.PROGRESS, progress=n)
        results = await asyncio.gather(one.record_event(same), two.record_event(same))
        assert sorted(r.applied for r in results) == [False, True]
        assert sorted(r.duplicate for r in results) == [False, True]
    assert len(await one.job_events("j1")) == 10
    assert (await two.outbox_stats())["pending"] == 10


async def test_concurrent_claimers_deliver_each_message_once_in_order(
    backend: Backend,
) -> None:
    one, two = await backend.open(), await backend.open()
    conversations, jobs, per_job = 4, 2, 6
    for c in range(conversations):
        for j in range(jobs):
            await one.create_job(new_job(f"j{c}.{j}", f"c{c}"))
    total = conversations * jobs * per_job
    claimed: dict[int, str] = {}  # seq -> conversation, in claim order
    state: dict[int, str] = {}  # seq -> "claimed" | "delivering"
    delivered: set[int] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20

    async def producer(store: JobStore, c: int, j: int) -> None:
        # Both processes record, while the claimers run, for interleaved rows.
        for n in range(per_job):
            await store.record_event(
                event(f"e{n}", EventType.PROGRESS, f"j{c}.{j}", progress=n)
            )

    async def worker(store: JobStore) -> None:
        while len(delivered) < total and loop.time() < deadline:
            batch = await store.claim_due(1e12, limit=3, lease=60)
            for message in batch:
                seq = message.seq or 0
                assert seq not in claimed, f"{seq} handed out twice"
                # Every earlier message of this conversation is being or has
                # been acknowledged; none is merely claimed.
                assert all(
                    state[s] == "delivering"
                    for s, conv in claimed.items()
                    if conv == message.conversation_id and s < seq
                )
                claimed[seq] = message.conversation_id
                state[seq] = "claimed"
            await asyncio.sleep(0)  # let other workers in between: a yield, no wait
            for message in batch:
                state[message.seq or 0] = "delivering"
                await store.mark_delivered(message.seq or 0, 1.0)
                delivered.add(message.seq or 0)
            if not batch:
                await asyncio.sleep(0.001)  # nothing due yet: poll again

    await asyncio.gather(
        *(
            producer((one, two)[(c + j) % 2], c, j)
            for c in range(conversations)
            for j in range(jobs)
        ),
        *(worker(s) for s in (one, two) for _ in range(4)),
    )
    assert len(delivered) == total
    assert await one.outbox_stats() == {
        "pending": 0,
        "delivered": total,
        "dead": 0,
        "discarded": 0,
    }
    for c in range(conversations):
        seqs = [s for s, conv in claimed.items() if conv == f"c{c}"]
        assert seqs == sorted(seqs), "a conversation's messages went out of order"
        assert len(seqs) == jobs * per_job


async def test_postgres_messages_of_one_conversation_commit_in_order(
    pg_backend: Backend,
) -> None:
    """A message numbered later waits for the conversation's earlier one.

    Otherwise a claimer could deliver the later one while the earlier one is
    still uncommitted, then the earlier one after it.
    """
    store = await pg_backend.open()
    assert isinstance(store, PostgresJobStore)
    await store.create_job(new_job("a", "c"))
    await store.create_job(new_job("b", "c"))
    async with store.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await store._record_locked(conn, [(event("e1", EventType.STARTED, "a"), None)])
        later = asyncio.create_task(
            store.record_event(event("e2", EventType.STARTED, "b"))
        )
        # It waits for our transaction's lock (Postgres says so), not done.
        await async_wait_until(
            lambda: store.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE $1 = ANY(pg_blocking_pids(pid))",
                conn.get_server_pid(),
            ),
            10,
            "the later event waits for the earlier one's lock",
        )
        assert not later.done()
        assert await store.claim_due(1e12, limit=10, lease=60) == []
        await transaction.commit()
    await later
    [first] = await store.claim_due(1e12, limit=10, lease=60)
    await store.mark_delivered(first.seq or 0, 1.0)
    [second] = await store.claim_due(1e12, limit=10, lease=60)
    assert (first.job_id, second.job_id) == ("a", "b")


async def test_postgres_claim_drops_a_head_delivered_while_it_waited(
    pg_backend: Backend,
) -> None:
    """A claim that reaches a head after another claimer delivered it skips it.

    The claim is slowed down after it has taken its snapshot, in which the
    head is still pending; meanwhile another claimer claims and delivers it.
    """
    store = await pg_backend.open()
    assert isinstance(store, PostgresJobStore)
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.STARTED))
    await store.record_event(event("e2", EventType.PROGRESS, progress=1))
    slowed = _CLAIM.replace(
        "WITH RECURSIVE waiting AS (",
        "WITH RECURSIVE slow AS MATERIALIZED (SELECT pg_sleep(0.4)), waiting AS (",
    ).replace(
        "(SELECT conversation_id FROM outbox WHERE",
        "(SELECT conversation_id FROM outbox, slow WHERE",
    )
    assert slowed.count("slow") == 2

    async with store.pool.acquire() as slow:

        async def deliver_meanwhile() -> int:
            # Once the claim sleeps, its snapshot (head still pending) is taken.
            await async_wait_until(
                lambda: store.pool.fetchval(
                    "SELECT wait_event = 'PgSleep' FROM pg_stat_activity"
                    " WHERE pid = $1",
                    slow.get_server_pid(),
                ),
                10,
                "the slowed claim is asleep",
            )
            [head] = await store.claim_due(1e12, limit=10, lease=60)
            await store.mark_delivered(head.seq or 0, 1.0)
            return head.seq or 0

        rows, _ = await asyncio.gather(
            slow.fetch(slowed, 1e12, 10, 1e12 + 60), deliver_meanwhile()
        )
    assert rows == []


def test_postgres_url_options_are_taken_out_of_the_dsn() -> None:
    store = PostgresJobStore.from_url(
        "postgres://rasa:s3cret@db:6543/bot?schema=rpa&pool_size=3&sslmode=disable",
        Path(),
    )
    assert (store.schema, store.pool_size) == ("rpa", 3)
    assert store.dsn == "postgresql://rasa:s3cret@db:6543/bot?sslmode=disable"
    assert "s3cret" not in store.where and "db:6543/bot" in store.where


async def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    store = PostgresJobStore.from_url(
        "postgresql://rasa:hunter2%40secret@127.0.0.1:1/bot", Path()
    )
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1:1/bot" in str(caught.value)
    with pytest.raises(StoreError, match="not open"):
        await store.get_job("j1")


async def test_a_round_of_deliveries_is_marked_at_once(store: JobStore) -> None:
    for n in range(3):
        await store.create_job(new_job(f"j{n}", f"c{n}"))
        await store.record_event(event(f"e{n}", EventType.STARTED, f"j{n}"))
    claimed = await store.claim_due(100.0, limit=10, lease=30)
    await store.mark_delivered_many([m.seq for m in claimed if m.seq], 101.0)
    assert (await store.outbox_stats())["delivered"] == 3
    assert await store.claim_due(1e12, limit=10, lease=30) == []


async def test_released_messages_are_due_at_once_unless_settled_or_claimed_again(
    store: JobStore,
) -> None:
    for n in range(3):
        await store.create_job(new_job(f"j{n}", f"c{n}"))
        await store.record_event(event(f"e{n}", EventType.STARTED, f"j{n}"))
    m0, m1, m2 = await store.claim_due(100.0, limit=10, lease=30)
    # Handed back unsent: due at once, and not in doubt (it was never sent).
    await store.release([m0.seq or 0], 130.0)
    [again] = await store.claim_due(101.0, limit=10, lease=100)
    assert again.seq == m0.seq and not again.in_doubt
    # Delivered meanwhile: a release leaves it delivered.
    await store.mark_delivered_many([m1.seq or 0], 102.0)
    await store.release([m1.seq or 0], 130.0)
    assert (await store.outbox_stats())["delivered"] == 1
    # Its lease ran out and another claimer holds it: the release names the
    # first claim's lease, so it leaves the second claimer's alone.
    [taken] = await store.claim_due(131.5, limit=10, lease=30)
    assert taken.seq == m2.seq and taken.in_doubt
    await store.release([m2.seq or 0], 130.0)
    assert await store.claim_due(132.0, limit=10, lease=30) == []
    # Its holder's release frees it; the doubt stays until a delivery.
    await store.release([m2.seq or 0], 161.5)
    [freed] = await store.claim_due(133.0, limit=10, lease=30)
    assert freed.seq == m2.seq and freed.in_doubt


async def test_a_batch_answers_each_event_as_if_it_came_alone(store: JobStore) -> None:
    """Refusals and duplicates inside one batch touch nothing but themselves."""
    await store.create_job(new_job("a", "c1"))
    await store.create_job(new_job("b", "c2"))

    def refuse(job: Job) -> None:
        raise StoreError("refused by the guard")

    results = await store.record_events(
        [
            (event("e1", EventType.STARTED, "a"), None),
            (event("e1", EventType.FAILED, "a", error="retry of e1"), None),
            (event("e2", EventType.PROGRESS, "ghost", progress=1), None),
            (event("e3", EventType.PROGRESS, "b", progress=5), refuse),
            (JobEvent("bad\x00id", "b", EventType.PROGRESS, {"progress": 6}), None),
            (event("e6", EventType.PROGRESS, "b", message="NUL \x00 in text"), None),
            (event("e4", EventType.PROGRESS, "a", progress=50), None),
            (event("e5", EventType.SUCCEEDED, "b"), None),
        ]
    )
    kinds = [
        type(r).__name__ if isinstance(r, Exception) else (r.applied, r.duplicate)
        for r in results
    ]
    assert kinds == [
        (True, False),
        (False, True),  # same id as the first: a duplicate, not a failure
        "JobNotFound",
        "StoreError",
        "InvalidPayload",
        "InvalidPayload",  # PostgreSQL text cannot hold it: refused alone
        (True, False),
        (True, False),
    ]
    a, b = await store.get_job("a"), await store.get_job("b")
    assert (a.state, a.progress) == (JobState.RUNNING, 50)
    assert b.state is JobState.SUCCEEDED
    assert [e["id"] for e in await store.job_events("a")] == ["e1", "e4"]
    assert [e["id"] for e in await store.job_events("b")] == ["e5"]
    claimed = await store.claim_due(1e12, limit=10, lease=30)
    assert [m.job_id for m in claimed] == ["a", "b"]


async def test_crossing_batches_on_two_replicas_never_deadlock(
    pg_backend: Backend,
) -> None:
    """Batches of different jobs that share conversations, on two replicas.

    One replica writes jobs 0 and 4, the other jobs 1 and 3: disjoint rows,
    but conversations c0 and c1 in opposite orders. Locks are taken in one
    global order (jobs by id, then conversations), so the replicas wait for
    each other but PostgreSQL never has to abort one as a deadlock.
    """
    one, two = await pg_backend.open(), await pg_backend.open()
    jobs = [new_job(f"j{n}", f"c{n % 3}") for n in range(6)]
    for job in jobs:
        await one.create_job(job)
        await one.record_event(event(f"s{job.id}", EventType.STARTED, job.id))

    def batch(tag: str, job_ids: list[str]) -> list[tuple[JobEvent, None]]:
        return [
            (event(f"{tag}-{job_id}", EventType.PROGRESS, job_id, progress=1), None)
            for job_id in job_ids
        ]

    rounds = 30
    answers = await asyncio.gather(
        *(
            store.record_events(batch(f"{side}{n}", job_ids))
            for n in range(rounds)
            for side, store, job_ids in (
                ("a", one, ["j0", "j4"]),
                ("b", two, ["j1", "j3"]),
            )
        )
    )
    assert all(not isinstance(r, Exception) for batch_ in answers for r in batch_)
    stats = await one.outbox_stats()
    assert stats["pending"] == len(jobs) + 4 * rounds


def _said(message: Any) -> str:
    """What a message tells the user, in short: ``j1 progress 30``, ``j1 hi``."""
    if message.kind == "events":
        return f"{message.job_id} {message.payload['events'][0]['text']}"
    name = message.payload["name"].removeprefix("EXTERNAL_rpa_job_")
    if name == "progress":
        return f"{message.job_id} progress {progress(message):g}"
    return f"{message.job_id} {name}"


async def _backlog_behind_a_slow_rasa(store: JobStore) -> None:
    """Two jobs in one conversation report while nothing is delivered."""
    await store.create_job(new_job())
    await store.create_job(new_job("j2"))
    for n, (job_id, kind, data) in enumerate(
        [
            ("j1", EventType.STARTED, {}),
            ("j1", EventType.PROGRESS, {"progress": 10}),
            ("j1", EventType.PROGRESS, {"progress": 20}),
            ("j1", EventType.MESSAGE, {"text": "hi"}),
            ("j2", EventType.STARTED, {}),
            ("j1", EventType.PROGRESS, {"progress": 30}),
            ("j2", EventType.PROGRESS, {"progress": 5}),
            ("j2", EventType.PROGRESS, {"progress": 6}),
            ("j1", EventType.SUCCEEDED, {}),
        ]
    ):
        await store.record_event(event(f"e{n}", kind, job_id, **data))


async def _drain(store: JobStore, *, coalesce: bool) -> list[str]:
    sent = []
    while due := await store.claim_due(
        1e12, limit=10, lease=30, coalesce_progress=coalesce
    ):
        assert len(due) == 1  # one conversation: only its head is ever handed out
        sent.append(_said(due[0]))
        await store.mark_delivered_many([due[0].seq or 0], 1e12)
    return sent


async def test_coalescing_sends_only_the_newest_progress_of_each_job(
    store: JobStore,
) -> None:
    await _backlog_behind_a_slow_rasa(store)
    assert await _drain(store, coalesce=True) == [
        "j1 running",
        "j1 hi",
        "j2 running",
        "j1 progress 30",
        "j2 progress 6",
        "j1 succeeded",
    ]
    # The older updates are settled, not lost: delivered, saying why.
    stats = await store.outbox_stats()
    assert (stats["pending"], stats["dead"], stats["delivered"]) == (0, 0, 9)
    superseded = [
        m for m in await store.list_outbox(status="delivered") if m.last_error
    ]
    assert sorted(_said(m) for m in superseded) == [
        "j1 progress 10",
        "j1 progress 20",
        "j2 progress 5",
    ]
    assert all("superseded" in (m.last_error or "") for m in superseded)


async def test_without_coalescing_every_progress_is_sent_in_order(
    store: JobStore,
) -> None:
    await _backlog_behind_a_slow_rasa(store)
    assert await _drain(store, coalesce=False) == [
        "j1 running",
        "j1 progress 10",
        "j1 progress 20",
        "j1 hi",
        "j2 running",
        "j1 progress 30",
        "j2 progress 5",
        "j2 progress 6",
        "j1 succeeded",
    ]


async def test_coalescing_leaves_a_claimed_progress_to_its_claimer(
    store: JobStore,
) -> None:
    await store.create_job(new_job())
    await store.record_event(event("e1", EventType.PROGRESS, progress=10))
    [claimed] = await store.claim_due(100.0, limit=10, lease=30)
    await store.record_event(event("e2", EventType.PROGRESS, progress=20))
    # Its lease still runs: the head is being sent, so it is neither
    # superseded nor handed out again.
    assert (
        await store.claim_due(110.0, limit=10, lease=30, coalesce_progress=True) == []
    )
    await store.mark_delivered(claimed.seq or 0, 111.0)
    [newest] = await store.claim_due(112.0, limit=10, lease=30, coalesce_progress=True)
    assert _said(newest) == "j1 progress 20"
    [delivered] = await store.list_outbox(status="delivered")
    assert (delivered.seq, delivered.last_error) == (claimed.seq, None)


async def test_an_event_id_too_long_for_the_index_fails_alone(store: JobStore) -> None:
    """Found by the round-5 attack. A robot that sends no ``id`` in the body
    has its ``webhook-id`` header taken as the event id, and that header has
    no length limit (the body's ``id`` stops at 200 characters). On
    PostgreSQL a few kilobytes that do not compress overflow the btree entry
    of ``job_events (job_id, event_id)`` (2704 bytes): the whole batch fails,
    so every event that shared its group commit, of any job, answers 503, and
    the robot's retries (RobotClient: 5xx for 5 minutes) keep poisoning
    batches. The id must be refused alone (or kept), never take others down.
    """
    await store.create_job(new_job("a", "c1"))
    await store.create_job(new_job("b", "c2"))
    long_id = secrets.token_urlsafe(3000)[:4000]
    try:
        results = await store.record_events(
            [
                (event(long_id, EventType.PROGRESS, "a", progress=1), None),
                (event("fine", EventType.PROGRESS, "b", progress=2), None),
            ]
        )
    except StoreError as exc:
        pytest.fail(f"the whole batch failed: {exc}")
    assert not isinstance(results[1], Exception)
    assert results[1].applied
    assert (await store.get_job("b")).progress == 2


async def test_a_connection_broken_mid_query_is_a_store_error(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the round-5 attack: with PostgreSQL backends terminated while
    callbacks ran (a server restart, a failover, a proxy dropping
    connections), asyncpg now and then hands out a connection still
    consuming the error and raises ``InternalClientError: cannot switch to
    state 12; another operation (2) is in progress``, which is no
    ``PostgresError`` or ``InterfaceError``. The callback then answered 500
    with rasa_sdk's body, ``{"error": "cannot switch to state 12...",
    "request_body": {...}}`` (driver internals, not the documented shape),
    a traceback was logged per request, and the outbox drain died with
    "unexpected error" (its deliveries waited out their leases). It must be
    a StoreError: 503, retry.
    """
    store = await pg_backend.open()
    assert isinstance(store, PostgresJobStore)
    await store.create_job(new_job("a", "c1"))

    class BrokenPool:
        async def _broken(self, *args: Any, **kwargs: Any) -> Any:
            raise asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )

        fetchrow = fetch = fetchval = execute = _broken

    monkeypatch.setattr(store, "_pool", BrokenPool())
    with pytest.raises(StoreError):
        await store.record_events([(event("e1", EventType.PROGRESS, "a"), None)])
    with pytest.raises(StoreError):
        await store.mark_delivered_many([1], 0.0)
