"""P1: signed callbacks accepted and stored per second, against bare GET /health.

Besides the figure itself, P1 measures what bounds it in the same run: the
same requests to the floor routes of :mod:`benchmarks.floor` (answered at
once; verified but not stored), and each store driven with no HTTP at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

from benchmarks.harness import (
    MASTER_KEY,
    Row,
    drop_pg_schema,
    row,
    signed_event,
    start_job,
    with_instant,
)
from benchmarks.loadgen import build_request, run_load
from rasa_rpa.security import JobKeys

__all__ = ["p1_callbacks", "store_alone"]


def p1_callbacks(
    tmp: Path,
    count: int,
    store_url: str | None = None,
    label: str = "SQLite",
    target: float = 0.5,
    floors: bool = False,
) -> list[Row]:
    """P1: signed callbacks accepted and stored per second vs bare GET /health.

    With ``floors``, the same signed requests also go to the floor routes of
    :mod:`benchmarks.floor` (answered at once; verified but not stored), to
    show where the distance between /health and a stored callback goes.
    """
    keys = JobKeys(MASTER_KEY)
    with with_instant(tmp, store_url, entry=("benchmarks.floor",)) as port:
        jobs = [start_job(port, f"p1-{n}") for n in range(20)]
        health = [build_request("GET", "/health")] * count
        callbacks = [
            signed_event(
                keys,
                jobs[n % len(jobs)],
                {
                    "id": uuid.uuid4().hex,
                    "type": "job.progress",
                    "data": {"progress": n % 100, "message": "step"},
                },
            )
            for n in range(count)
        ]
        run_load(port, health[: count // 10])  # warm-up
        baseline = run_load(port, health)
        explained: list[Row] = []
        for route, measure in (
            ("/bench/floor/", "floor: same POST answered at once (no work)"),
            ("/bench/checks/", "floor: signature+payload checked, not stored"),
        ):
            if floors:
                same = [
                    c.replace(b"/rpa/v1/jobs/", route.encode(), 1) for c in callbacks
                ]
                run = run_load(port, same)
                explained.append(
                    row("P1", measure, run.per_second, baseline.per_second,
                        "req/s", "ratio", 0.0)
                )  # fmt: skip
        measured = run_load(port, callbacks)
    accepted = measured.statuses.get(202, 0)
    stored = _stored_events(tmp, store_url)
    alone = store_alone(tmp, store_url, count)
    return [
        row(
            "P1",
            f"signed callbacks stored/s ({label}) vs GET /health/s",
            accepted / measured.seconds,
            baseline.per_second,
            "req/s",
            "ratio>=",
            target,
        ),
        *explained,
        row(
            "P1",
            f"floor: {label} store alone, 16-event batches back to back",
            alone,
            baseline.per_second,
            "ev/s",
            "ratio",
            0.0,
        ),
        {
            "id": "P1",
            "measure": f"P1 check ({label}): accepted {accepted}/{count},"
            f" stored {stored}, answers {measured.statuses}",
            # Backpressure (503, 429) is allowed; an accepted callback not stored
            # is not.
            "ok": stored == accepted and accepted >= count * 0.95,
        },
    ]


def store_alone(tmp: Path, store_url: str | None, count: int) -> float:
    """Events/s the store records with no HTTP in front: the write path's ceiling.

    Batches of 16 (what P1's 16 connections can have in flight at most) over
    the same 20 jobs, one batch at a time, with a fresh store beside P1's.
    """
    from rasa_rpa.models import EventType, Job, JobEvent
    from rasa_rpa.stores import open_store

    url = store_url or f"sqlite:///{tmp / 'alone.db'}"
    if store_url is not None:
        url = store_url.replace("schema=", "schema=alone_")

    async def run() -> float:
        store = open_store(url, tmp)
        await store.open()
        try:
            for n in range(20):
                await store.create_job(
                    Job(id=f"alone-{n}", automation="bench", provider="p",
                        conversation_id=f"alone-{n}")
                )  # fmt: skip
            events = [
                JobEvent(uuid.uuid4().hex, f"alone-{n % 20}", EventType.PROGRESS,
                         {"progress": n % 100, "message": "step"})
                for n in range(count)
            ]  # fmt: skip
            started = time.perf_counter()
            for first in range(0, count, 16):
                await store.record_events(
                    [(e, None) for e in events[first : first + 16]]
                )
            return count / (time.perf_counter() - started)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    finally:
        if store_url is not None:
            schema = url.split("schema=", 1)[1].split("&", 1)[0]
            drop_pg_schema(schema)


def _stored_events(tmp: Path, store_url: str | None) -> int:
    if store_url is None:
        with sqlite3.connect(tmp / "jobs.db") as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM job_events WHERE type='job.progress'"
                ).fetchone()[0]
            )

    async def count() -> int:
        import asyncpg

        from rasa_rpa.stores.postgres import PostgresJobStore

        store = PostgresJobStore.from_url(store_url, tmp)
        await store.open()
        async with store._pool.acquire() as connection:
            value = await connection.fetchval(
                "SELECT COUNT(*) FROM job_events WHERE type='job.progress'"
            )
        await store.close()
        del asyncpg
        return int(value)

    return asyncio.run(count())
