"""Retention on SQLite and PostgreSQL: what is done with goes, in small
batches, and nothing of a running job or not yet delivered is touched.

Times are fixed: everything "old" happened at 100,000 s, the prune runs at
200,000 s with periods of 1,000 s (files, delivered, events) and 50,000 s
(jobs), so old things are past every cutoff and recent ones (199,990 s)
within all of them.
"""

from __future__ import annotations

from typing import Any

from rasa_rpa.models import EventType, JobEvent, StoredFile
from rasa_rpa.stores import JobStore
from rasa_rpa.stores.retention import Cutoffs
from tests.stores.test_contract import Backend, new_job

OLD, NOW, RECENT = 100_000.0, 200_000.0, 199_990.0
CUTOFFS = Cutoffs.at(NOW, files=1000, delivered=1000, events=1000, jobs=50_000)
KEEP_ALL = Cutoffs.at(NOW, files=None, delivered=None, events=None, jobs=None)


async def job_with_news(
    store: JobStore, job_id: str, at: float, *, finish: bool = True
) -> list[int]:
    """A job started (and finished) at ``at``; its messages' seqs, in order."""
    await store.create_job(new_job(job_id, f"conv-{job_id}"))
    kinds = [EventType.STARTED] + ([EventType.SUCCEEDED] if finish else [])
    for n, kind in enumerate(kinds):
        await store.record_event(
            JobEvent(f"{job_id}-e{n}", job_id, kind, {}, received_at=at + n)
        )
    messages = await store.list_outbox(status="pending", job_id=job_id)
    return sorted(m.seq or 0 for m in messages)


async def with_file(store: JobStore, job_id: str, at: float) -> str:
    file_id = f"file-{job_id}"
    await store.begin_file(
        StoredFile(file_id, job_id, "u", "a.csv", "report", "text/csv", 0, "", at)
    )
    await store.put_file_chunk(file_id, 0, b"x" * 1000)
    await store.put_file_chunk(file_id, 1, b"y" * 24)
    await store.finish_file(file_id, 1024, "h", at)
    return file_id


async def deliver(store: JobStore, seqs: list[int], at: float) -> None:
    await store.mark_delivered_many(seqs, at)


async def prune_all(store: JobStore, cutoffs: Cutoffs, batch: int) -> dict[str, Any]:
    """Prune until nothing is left to prune, as the reconciler does."""
    totals = {"files": 0, "delivered": 0, "events": 0, "jobs": 0, "rounds": 0}
    while True:
        done = await store.prune(cutoffs, batch=batch)
        if not any(done.values()):
            return totals
        totals["rounds"] += 1
        for kind, count in done.items():
            totals[kind] += count


async def count(backend: Backend, table: str, where: str = "1 = 1") -> int:
    return int(await backend.sql(f"SELECT COUNT(*) FROM {table} WHERE {where}"))


async def test_what_is_done_with_goes_and_nothing_undelivered_is_touched(
    backend: Backend,
) -> None:
    store = await backend.open()
    # done: finished long ago, told, its file old: everything goes.
    seqs = await job_with_news(store, "done", OLD)
    await deliver(store, seqs, OLD + 5)
    await with_file(store, "done", OLD)
    # waiting: finished long ago, but its last message never reached Rasa.
    seqs = await job_with_news(store, "waiting", OLD)
    await deliver(store, seqs[:1], OLD + 5)
    await with_file(store, "waiting", OLD)
    # dead: its message was set aside, not discarded: an operator may replay it.
    seqs = await job_with_news(store, "dead", OLD)
    await deliver(store, seqs[:1], OLD + 5)
    await store.mark_dead(seqs[1], "refused", OLD + 5)
    await with_file(store, "dead", OLD)
    # discarded: an operator dropped it for good: as good as delivered.
    seqs = await job_with_news(store, "discarded", OLD)
    await deliver(store, seqs[:1], OLD + 5)
    await store.mark_dead(seqs[1], "refused", OLD + 4)
    assert await store.discard(seqs[1], OLD + 5)
    # running: started long ago, still running, told: nothing of it goes.
    seqs = await job_with_news(store, "running", OLD, finish=False)
    await deliver(store, seqs, OLD + 5)
    await with_file(store, "running", OLD)
    # recent: finished a moment ago: within every period.
    seqs = await job_with_news(store, "recent", RECENT)
    await deliver(store, seqs, RECENT + 1)
    await with_file(store, "recent", RECENT)
    # abandoned: an upload that never completed, begun long ago.
    await store.begin_file(
        StoredFile("half", "running", "h", "b.csv", "t", "text/csv", 0, "", OLD)
    )
    await store.put_file_chunk("half", 0, b"z")

    pruned = await prune_all(store, CUTOFFS, batch=1)
    # Small batches: one row of a kind per transaction (jobs: one per round).
    assert pruned["rounds"] >= 4
    assert {k: pruned[k] for k in ("files", "jobs")} == {"files": 2, "jobs": 2}

    jobs = {row.id for row in await store.list_jobs(limit=100)}
    assert jobs == {"waiting", "dead", "running", "recent"}
    # Nothing undelivered is touched: the pending and the dead message stay,
    # and so do their jobs' files.
    assert await count(backend, "outbox", "delivered_at IS NULL") == 2
    assert (await store.outbox_stats())["pending"] == 1
    assert (await store.outbox_stats())["dead"] == 1
    files = {f.id for j in jobs for f in await store.list_files(j)}
    assert files == {"file-waiting", "file-dead", "file-running", "file-recent"}
    # A running job keeps its events, its delivered messages and its file.
    assert len(await store.job_events("running")) == 1
    assert await count(backend, "outbox", "job_id = 'running'") == 1
    # Finished long ago: the event log goes, the job (with news pending) stays.
    assert await store.job_events("waiting") == []
    assert await store.job_events("dead") == []
    # Recent: all kept.
    assert len(await store.job_events("recent")) == 2
    assert await count(backend, "outbox", "job_id = 'recent'") == 2
    # The pruned files' bytes are gone, the abandoned upload's too.
    assert await count(backend, "files") == 4
    assert await count(backend, "file_chunks") == 8
    assert await store.file_chunk("file-done", 0) is None
    assert await store.file_chunk("half", 0) is None
    # A second pass finds nothing more.
    assert not any((await store.prune(CUTOFFS, batch=100)).values())


async def test_once_delivered_a_waiting_jobs_files_and_row_go_too(
    backend: Backend,
) -> None:
    store = await backend.open()
    seqs = await job_with_news(store, "waiting", OLD)
    await deliver(store, seqs[:1], OLD + 5)
    await with_file(store, "waiting", OLD)
    await prune_all(store, CUTOFFS, batch=10)
    assert await store.list_files("waiting") != []
    await deliver(store, seqs[1:], OLD + 6)
    pruned = await prune_all(store, CUTOFFS, batch=10)
    assert (pruned["files"], pruned["jobs"]) == (1, 1)
    assert await store.list_jobs() == []
    assert await count(backend, "outbox") == 0
    assert await count(backend, "file_chunks") == 0


async def test_retention_off_keeps_everything(backend: Backend) -> None:
    store = await backend.open()
    seqs = await job_with_news(store, "done", OLD)
    await deliver(store, seqs, OLD + 5)
    await with_file(store, "done", OLD)
    assert not any((await store.prune(KEEP_ALL, batch=100)).values())
    # Events kept while jobs go: a job takes what is left of its log along.
    only_jobs = Cutoffs.at(NOW, files=1000, delivered=None, events=None, jobs=1000)
    pruned = await prune_all(store, only_jobs, batch=100)
    assert (pruned["files"], pruned["jobs"], pruned["events"]) == (1, 1, 0)
    assert await count(backend, "job_events") == 0
    assert await count(backend, "outbox") == 0


async def test_storage_tells_what_a_prune_would_drop(backend: Backend) -> None:
    store = await backend.open()
    seqs = await job_with_news(store, "done", OLD)
    await deliver(store, seqs, OLD + 5)
    await with_file(store, "done", OLD)
    seqs = await job_with_news(store, "recent", RECENT)
    await with_file(store, "recent", RECENT)
    storage = await store.storage(CUTOFFS)
    assert storage.rows == {"jobs": 2, "events": 4, "outbox": 4, "files": 2}
    assert storage.file_bytes == 2048
    assert storage.bytes > storage.file_bytes
    assert storage.prunable == {"files": 1, "delivered": 2, "events": 2, "jobs": 1}
    assert storage.prunable_bytes == 1024
    pruned = await prune_all(store, CUTOFFS, batch=100)
    assert {k: pruned[k] for k in storage.prunable} == storage.prunable
    after = await store.storage(CUTOFFS)
    assert after.prunable == {"files": 0, "delivered": 0, "events": 0, "jobs": 0}
