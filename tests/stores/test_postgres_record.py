"""The PostgreSQL store records a batch in one statement when it knows the
jobs, and never lets what it remembers outlive a change made elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rasa_rpa.models import EventType, JobState
from rasa_rpa.stores.postgres import PostgresJobStore
from rasa_rpa.stores.postgres_record import KnownJobs
from tests.stores.test_contract import Backend, event, new_job, pg_backend
from tests.waiting import async_wait_until

__all__ = ["pg_backend"]


class CountingPool:
    """The store's pool, counting the statements and transactions it runs."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._pool, name)
        if name in ("fetchrow", "fetch", "execute", "fetchval", "acquire"):
            self.calls.append(name)
        return attribute


@contextmanager
def counted(store: PostgresJobStore) -> Iterator[CountingPool]:
    """The store's calls into its pool, counted while the block runs."""
    counting = CountingPool(store._pool)
    store._pool = counting
    try:
        yield counting
    finally:
        store._pool = counting._pool


async def replicas(backend: Backend) -> tuple[PostgresJobStore, PostgresJobStore]:
    one, two = await backend.open(), await backend.open()
    assert isinstance(one, PostgresJobStore) and isinstance(two, PostgresJobStore)
    return one, two


async def test_a_batch_on_known_jobs_is_one_statement(pg_backend: Backend) -> None:
    store, _ = await replicas(pg_backend)
    await store.create_job(new_job("a", "c"))
    await store.record_event(event("s", EventType.STARTED, "a"))
    with counted(store) as counting:
        results = await store.record_events(
            [(event(f"p{n}", EventType.PROGRESS, "a", progress=n), None)
             for n in range(1, 4)]
        )  # fmt: skip
    assert counting.calls == ["fetchrow"]  # no transaction, no reads first
    assert [r.queued for r in results] == [1, 1, 1]  # type: ignore[union-attr]
    assert (await store.get_job("a")).progress == 3


async def test_batches_of_one_process_on_one_job_take_turns(
    pg_backend: Backend,
) -> None:
    """The second plans on the first's result instead of falling back."""
    store, _ = await replicas(pg_backend)
    await store.create_job(new_job("a", "c"))
    await store.record_event(event("s", EventType.STARTED, "a"))
    with counted(store) as counting:
        results = await asyncio.gather(
            *(
                store.record_events(
                    [(event(f"p{n}", EventType.PROGRESS, "a", progress=n), None)]
                )
                for n in range(1, 6)
            )
        )
    assert counting.calls == ["fetchrow"] * 5
    assert all(r.applied for [r] in results)  # type: ignore[union-attr]
    assert store.known._turns == {}  # nothing kept once the batches are done


async def test_a_change_by_another_replica_is_not_overwritten(
    pg_backend: Backend,
) -> None:
    """The other replica's finish and provider_ref survive a stale plan."""
    one, two = await replicas(pg_backend)
    await one.create_job(new_job("a", "c"))
    await one.record_event(event("s", EventType.STARTED, "a"))  # one knows: running
    await two.update_job("a", provider_ref="robot-42")
    await two.record_event(event("ok", EventType.SUCCEEDED, "a", outputs={"n": 1}))
    result = await one.record_event(event("late", EventType.PROGRESS, "a", progress=9))
    assert not result.applied and result.queued == 0
    job = await two.get_job("a")
    assert job.state is JobState.SUCCEEDED and job.provider_ref == "robot-42"
    assert job.progress != 9
    # Read under lock now, and finished: not kept (its outputs can be large).
    assert one.known.lookup(["a"]) is None


async def test_a_change_committed_while_the_batch_waits_for_the_lock_is_kept(
    pg_backend: Backend,
) -> None:
    """The statement's snapshot predates the change; the row lock's re-read
    (READ COMMITTED re-checks the newest version) must still see its xmin."""
    one, two = await replicas(pg_backend)
    await one.create_job(new_job("a", "c"))
    await one.record_event(event("s", EventType.STARTED, "a"))  # one knows: v1
    async with two.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE jobs SET provider_ref = 'r' WHERE id = 'a'")
            pending = asyncio.create_task(
                one.record_event(event("p", EventType.PROGRESS, "a", progress=4))
            )

            async def waiting_for_the_lock() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                    )
                )

            await async_wait_until(waiting_for_the_lock, 5, "batch waits")
        result = await pending
    assert result.applied
    job = await two.get_job("a")
    assert job.provider_ref == "r" and job.progress == 4


async def test_an_event_logged_by_another_replica_is_a_duplicate(
    pg_backend: Backend,
) -> None:
    """Even when logging it changed nothing in the job (a late progress)."""
    one, two = await replicas(pg_backend)
    await one.create_job(new_job("a", "c"))
    await one.record_event(event("ok", EventType.SUCCEEDED, "a"))
    await two.record_event(event("late", EventType.PROGRESS, "a", progress=5))
    again = await one.record_event(event("late", EventType.PROGRESS, "a", progress=5))
    assert again.duplicate
    events = await one.job_events("a")
    assert [e["id"] for e in events] == ["ok", "late"]


async def test_a_job_deleted_elsewhere_is_not_found(pg_backend: Backend) -> None:
    one, two = await replicas(pg_backend)
    await one.create_job(new_job("a", "c"))
    async with two.pool.acquire() as conn:
        await conn.execute("DELETE FROM jobs WHERE id = 'a'")
    [result] = await one.record_events([(event("p", EventType.PROGRESS, "a"), None)])
    assert type(result).__name__ == "JobNotFound"
    assert one.known.lookup(["a"]) is None


def test_known_jobs_forget_the_least_recently_used() -> None:
    known = KnownJobs(limit=2)
    for job_id in ("a", "b"):
        known.remember(new_job(job_id), "1")
    assert known.lookup(["a"]) is not None  # a is now the most recent
    known.remember(new_job("c"), "1")
    assert known.lookup(["b"]) is None
    assert known.lookup(["a", "c"]) is not None
    assert len(known) == 2


async def test_the_pool_takes_a_connection_back_without_a_round_trip(
    pg_backend: Backend, monkeypatch: Any
) -> None:
    """asyncpg's default reset query would follow every statement."""
    import asyncpg

    resets: list[object] = []

    async def reset(self: Any, *, timeout: Any = None) -> None:
        resets.append(self)

    monkeypatch.setattr(asyncpg.Connection, "reset", reset)
    store, _ = await replicas(pg_backend)
    await store.create_job(new_job("a", "c"))
    await store.record_event(event("s", EventType.STARTED, "a"))
    assert (await store.get_job("a")).state is JobState.RUNNING
    assert resets == []
