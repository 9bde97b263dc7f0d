"""The job service: group commit answers every caller; a start never strands a job."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rasa_rpa.errors import ProviderError
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.providers.base import Provider, StartRequest
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
    service.writer._flushers.add(finished)
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


class Buggy(Provider):
    """A provider whose start fails in a way no one planned for."""

    type_name = "buggy"

    async def start(self, request: StartRequest) -> str | None:
        raise ValueError("embedded null byte")


async def test_any_exception_from_a_provider_fails_the_job_at_once(
    tmp_path, make_config, caplog
):
    config = make_config()
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()

    async def report(event: JobEvent) -> None:
        return None

    buggy = Buggy("local", config.providers["local"], config, report)
    service = JobService(config, store, JobKeys("k" * 32), {"local": buggy})
    with caplog.at_level(logging.WARNING, logger="rasa_rpa.service"):
        with pytest.raises(ProviderError) as caught:
            await service.start_job("collect_order_details", "c1", {"customer": "x"})
    error = caught.value
    assert error.job_id is not None
    assert error.user_message == "something went wrong on my side"
    job = await store.get_job(error.job_id)
    assert job.state is JobState.FAILED
    # The job's error is what the chat may show; the detail is the operator's.
    assert job.error == "something went wrong on my side"
    [event] = await store.job_events(job.id)
    assert "unexpected ValueError" in event["data"]["detail"]
    # The cause is in the log, with the job id, for the maintainers.
    # (The log's redaction renders tracebacks into exc_text as records are made.)
    logged = [r for r in caplog.records if r.exc_info or r.exc_text]
    assert logged and error.job_id in logged[0].getMessage()
    await store.close()
