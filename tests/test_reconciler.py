"""The reconciler: overdue jobs expire, pollable jobs are polled with backoff,
and what retention lets go is pruned."""

from __future__ import annotations

import asyncio

import pytest

from rasa_rpa.config import ProviderSettings, RetentionSettings
from rasa_rpa.errors import ProviderUnavailable
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.providers.base import Capabilities, Provider
from rasa_rpa.reconciler import Reconciler
from rasa_rpa.security import JobKeys
from rasa_rpa.service import JobService
from rasa_rpa.stores.sqlite import SQLiteJobStore


class ScriptedProvider(Provider):
    """A backend whose status API answers from a script."""

    type_name = "scripted"
    capabilities = Capabilities(poll=True, cancel=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answers: dict[str, list] = {}
        self.polls: list[str] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def start(self, request):
        return "ref"

    async def poll(self, job):
        self.polls.append(job.id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)  # a poll takes time (polls overlap): no wait
        self.in_flight -= 1
        answer = self.answers.get(job.id, [])
        item = answer.pop(0) if answer else []
        if isinstance(item, Exception):
            raise item
        return item

    async def cancel(self, job):
        self.cancelled.append(job.id)


@pytest.fixture
async def world(tmp_path, make_config):
    config = make_config()
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    service = JobService(config, store, JobKeys("k" * 32))
    provider = ScriptedProvider(
        "scripted",
        ProviderSettings(type="scripted", poll_interval=10),
        config,
        service.record,
    )
    service.providers = {"scripted": provider}
    yield service, provider, Reconciler(service, interval=1, max_concurrent_polls=3)
    await store.close()


async def add_job(service, job_id, deadline=1e12):
    await service.store.create_job(
        Job(
            id=job_id,
            automation="a",
            provider="scripted",
            conversation_id="c",
            provider_ref=f"ref-{job_id}",
            deadline_at=deadline,
            created_at=0,
        )
    )


async def test_polled_status_moves_the_job(world):
    service, provider, reconciler = world
    await add_job(service, "j1")
    provider.answers["j1"] = [
        [JobEvent("p1", "j1", EventType.SUCCEEDED, {"outputs": {"n": 1}})]
    ]
    assert await reconciler.check_once(now=100) == 1
    job = await service.store.get_job("j1")
    assert job.state is JobState.SUCCEEDED
    assert job.outputs == {"n": 1}


async def test_only_a_declared_status_api_is_polled(world):
    # A poll method alone (SAP's answers [] by design) is no promise to poll:
    # the reconciler goes by the declared capability, not by method identity.
    service, provider, reconciler = world
    provider.capabilities = Capabilities(cancel=True)
    await add_job(service, "j1")
    await reconciler.check_once(now=100)
    assert provider.polls == []


async def test_poll_waits_for_its_interval(world):
    service, provider, reconciler = world
    await add_job(service, "j1")
    await reconciler.check_once(now=100)
    await reconciler.check_once(now=105)
    await reconciler.check_once(now=111)
    assert provider.polls == ["j1", "j1"]


async def test_failing_poll_backs_off(world):
    service, provider, reconciler = world
    await add_job(service, "j1")
    provider.answers["j1"] = [ProviderUnavailable("scripted", "down")] * 3
    await reconciler.check_once(now=100)  # fails: next try at 100 + 20
    await reconciler.check_once(now=111)
    assert provider.polls == ["j1"]
    await reconciler.check_once(now=121)  # fails again: next at 121 + 40
    await reconciler.check_once(now=150)
    assert provider.polls == ["j1", "j1"]


async def test_concurrent_polls_are_bounded(world):
    service, provider, reconciler = world
    for n in range(10):
        await add_job(service, f"j{n}")
    await reconciler.check_once(now=100)
    assert len(provider.polls) == 10
    assert provider.max_in_flight <= 3


async def test_overdue_job_expires_and_is_stopped(world):
    service, provider, reconciler = world
    await add_job(service, "late", deadline=50)
    assert await reconciler.check_once(now=100) == 1
    await service.aclose()  # waits for the stop it started in the background
    job = await service.store.get_job("late")
    assert job.state is JobState.EXPIRED
    assert job.error == "the robot never reported back"  # not a word from it
    assert provider.cancelled == ["late"]
    assert provider.polls == []


async def finished_job(service, job_id, at):
    await add_job(service, job_id)
    await service.record(JobEvent(f"{job_id}-ok", job_id, EventType.SUCCEEDED, {}))
    # Finished, and its news delivered, at ``at``.
    db = service.store.db
    db.execute("UPDATE jobs SET finished_at = ? WHERE id = ?", (at, job_id))
    db.execute("UPDATE job_events SET received_at = ? WHERE job_id = ?", (at, job_id))
    db.execute("UPDATE outbox SET delivered_at = ? WHERE job_id = ?", (at, job_id))


async def test_retention_prunes_in_batches_until_nothing_is_due(world):
    service, _, _ = world
    reconciler = Reconciler(
        service,
        interval=1,
        retention=RetentionSettings(jobs="1h", events="1h", delivered="1h", batch=2),
    )
    for n in range(5):
        await finished_job(service, f"old{n}", 1000)
    await finished_job(service, "new", 9000)
    pruned = await reconciler.prune_once(now=9500)
    assert pruned == {"files": 0, "delivered": 5, "events": 5, "jobs": 5}
    assert [job.id for job in await service.store.list_jobs()] == ["new"]


async def test_retention_off_prunes_nothing(world):
    service, _, _ = world
    off = RetentionSettings(jobs="off", events=None, delivered="never", files="off")
    reconciler = Reconciler(service, interval=1, retention=off)
    await finished_job(service, "old", 1000)
    assert not any((await reconciler.prune_once(now=1e9)).values())
    assert len(await service.store.list_jobs()) == 1
