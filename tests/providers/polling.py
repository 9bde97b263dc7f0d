"""Waiting for a polled vendor run to report something (shared by provider tests)."""

from __future__ import annotations

from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import Provider
from tests.waiting import async_wait_until


async def until(
    provider: Provider, job: Job, kind: EventType, timeout: float = 5
) -> JobEvent:
    """The first event of ``kind`` the provider's poll of ``job`` reports."""

    async def reported() -> JobEvent | None:
        return next((e for e in await provider.poll(job) if e.type is kind), None)

    return await async_wait_until(
        reported, timeout, f"{kind} for run {job.provider_ref}", interval=0.05
    )
