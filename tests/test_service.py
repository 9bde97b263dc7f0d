"""The job service: group commit answers every caller; a start never strands a job."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rasa_rpa.errors import JobLimitReached, ProviderError
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.providers.base import Capabilities, Provider, StartRequest
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


# -- direct unit tests: a recording provider and a real SQLite store ----------

MASTER = "m" * 32


class Recording(Provider):
    """A provider that remembers what it was asked and can refuse to stop."""

    type_name = "recording"
    capabilities = Capabilities(cancel=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[StartRequest] = []
        self.cancelled: list[str] = []
        self.refuse_cancel = False
        self.closed = False

    async def start(self, request: StartRequest) -> str | None:
        self.started.append(request)
        return f"ref-{len(self.started)}"

    async def cancel(self, job: Job) -> None:
        if self.refuse_cancel:
            raise ProviderError(self.name, "the vendor refused to stop it")
        self.cancelled.append(job.id)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
async def service(tmp_path, make_config):
    config = make_config()
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    service = JobService(config, store, JobKeys(MASTER))
    provider = Recording(
        "testbots", config.providers["testbots"], config, service.record
    )
    service.providers = {"testbots": provider, "local": provider}
    yield service
    await service.aclose()
    await store.close()


async def test_start_records_the_job_and_hands_the_provider_its_credentials(service):
    job = await service.start_job("idle", "c1", {"duration": "5s"}, output_channel="x")
    [request] = service.providers["testbots"].started
    assert (request.task, request.inputs, request.job.id) == (
        "idle",
        {"duration": "5s"},
        job.id,
    )
    stored = await service.store.get_job(job.id)
    assert stored.state is JobState.PENDING and stored.provider_ref == "ref-1"
    assert stored.output_channel == "x"
    assert stored.deadline_at == pytest.approx(stored.created_at + 600)
    # The token the robot gets is good for this job and conversation only.
    claims = service.keys.verify_token(request.credentials.token, job.id)
    assert claims.conversation_id == "c1"
    assert request.credentials.events_url.endswith(f"/rpa/v1/jobs/{job.id}/events")


async def test_start_beyond_max_running_starts_nothing(service):
    await service.start_job("idle", "c1", {})
    with pytest.raises(JobLimitReached):
        await service.start_job("idle", "c1", {})
    assert len(service.providers["testbots"].started) == 1
    await service.start_job("idle", "c2", {})  # another conversation may


async def test_record_applies_dedupes_wakes_delivery_and_hides_secrets(service):
    woken = []
    service.on_queued.append(lambda: woken.append(True))
    job = await service.start_job("idle", "c1", {})
    started = JobEvent("e1", job.id, EventType.STARTED, {"note": f"key {MASTER}"})
    first = await service.record(started)
    again = await service.record(started)
    assert first.applied and not first.duplicate
    assert first.job.state is JobState.RUNNING
    assert again.duplicate and not again.applied
    assert first.queued and woken  # news for Rasa: the dispatcher is woken
    stored = await service.store.job_events(job.id)
    assert MASTER not in repr(stored)


async def test_cancel_stops_the_robot_then_marks_the_job(service):
    job = await service.start_job("idle", "c1", {})
    cancelled = await service.cancel_job(job, reason="the user said stop")
    assert service.providers["testbots"].cancelled == [job.id]
    assert cancelled.state is JobState.CANCELLED


async def test_a_refused_cancel_leaves_the_job_running(service):
    job = await service.start_job("idle", "c1", {})
    await service.record(JobEvent("e1", job.id, EventType.STARTED, {}))
    service.providers["testbots"].refuse_cancel = True
    with pytest.raises(ProviderError, match="refused"):
        await service.cancel_job(job)
    assert (await service.store.get_job(job.id)).state is JobState.RUNNING


async def test_expire_ends_the_job_and_stops_the_robot_once(service):
    job = await service.start_job("idle", "c1", {})
    job = (await service.record(JobEvent("s", job.id, EventType.STARTED))).job
    result = await service.expire(job, now=job.created_at + 601)
    assert result.applied and result.job.state is JobState.EXPIRED
    # It reported, then went quiet: the old words, no guess at a cause.
    assert result.job.error == "no result after 601s (timeout)"
    assert "detail" not in (await service.store.job_events(job.id))[-1]["data"]
    await asyncio.wait_for(asyncio.gather(*service._background), 5)
    assert service.providers["testbots"].cancelled == [job.id]
    # Expiring it again changes nothing and stops nothing.
    again = await service.expire(result.job, now=job.created_at + 700)
    assert not again.applied
    assert not service._background
    assert service.providers["testbots"].cancelled == [job.id]


async def test_a_robot_never_heard_from_is_expired_with_its_likely_cause(
    service, caplog
):
    job = await service.start_job("idle", "c1", {})
    with caplog.at_level(logging.WARNING, logger="rasa_rpa.service"):
        result = await service.expire(job, now=job.created_at + 120)
    # The user's words: plain, no URL, no key (they become {rpa_error}).
    assert result.job.error == "the robot never reported back"
    [event] = await service.store.job_events(job.id)
    assert event["data"]["error"] == "the robot never reported back"
    # The operator's: the likely causes, where robots were told to call.
    detail = event["data"]["detail"]
    assert "no callback arrived from the robot in 120s" in detail
    assert "never started" in detail and "401" in detail
    assert f"callbacks.public_url ({service.config.callbacks.public_url})" in detail
    [logged] = [r for r in caplog.records if "expired" in r.getMessage()]
    assert logged.levelno == logging.WARNING and detail in logged.getMessage()
    assert logged.job_id == job.id


async def test_a_chat_line_from_a_pending_robot_counts_as_hearing_from_it(service):
    job = await service.start_job("idle", "c1", {})
    said = JobEvent("m", job.id, EventType.MESSAGE, {"text": "looking..."})
    job = (await service.record(said)).job
    assert job.state is JobState.PENDING  # a chat line does not start a job
    result = await service.expire(job, now=job.created_at + 120)
    assert result.job.error == "no result after 120s (timeout)"


async def test_aclose_closes_every_provider(service):
    await service.aclose()
    assert service.providers["testbots"].closed
