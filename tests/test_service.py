"""The job service's group commit: every caller is answered, batches or not."""

from __future__ import annotations

import asyncio

from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.security import JobKeys
from rasa_rpa.service import JobService
from rasa_rpa.stores.sqlite import SQLiteJobStore


async def test_an_event_right_after_a_batch_is_not_left_waiting(tmp_path, make_config):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    service = JobService(make_config(), store, JobKeys("k" * 32))
    await store.create_job(
        Job(id="j1", automation="a", provider="local", conversation_id="c1")
    )
    first = await service.record(JobEvent("e1", "j1", EventType.STARTED, {}))
    # A flusher that has finished stays in the set until its done callback
    # runs; an event arriving in that moment must start a new one.
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    service._flushers.add(finished)
    second = await asyncio.wait_for(
        service.record(JobEvent("e2", "j1", EventType.PROGRESS, {"progress": 5})), 5
    )
    assert first.applied and second.applied
    burst = await asyncio.gather(
        *(
            service.record(JobEvent(f"b{n}", "j1", EventType.MESSAGE, {"text": "x"}))
            for n in range(50)
        )
    )
    assert all(r.applied for r in burst)
    await store.close()
