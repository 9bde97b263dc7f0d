"""Background checks on jobs that are not final: expiry, and polling providers.

Callbacks can be lost (UiPath drops webhooks for an hour after one failure;
a robot can die before it reports), so every unfinished job is looked at on
a timer. What the reconciler learns goes through the same
:meth:`JobService.record` path as a callback: same dedupe, same state machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from rasa_rpa.errors import ProviderError, StoreError
from rasa_rpa.service import JobService

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class Reconciler:
    """Expires overdue jobs and polls providers that have a status API."""

    def __init__(self, service: JobService, *, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self._run(), name="rasa-rpa-reconciler")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except StoreError as exc:
                log.error("reconciler: store unavailable: %s", exc)
            await asyncio.sleep(self.interval)

    async def check_once(self, now: float | None = None) -> int:
        """One pass over unfinished jobs; return how many changed."""
        now = time.time() if now is None else now
        changed = 0
        for job in await self.service.store.unfinished_jobs():
            if job.deadline_at is not None and job.deadline_at <= now:
                result = await self.service.expire(job, now)
                changed += int(result.applied)
                continue
            provider = self.service.providers.get(job.provider)
            if provider is None:
                continue
            try:
                events = await provider.poll(job)
            except ProviderError as exc:
                log.warning("reconciler: polling job %s failed: %s", job.id, exc)
                continue
            for event in events:
                result = await self.service.record(event)
                changed += int(result.applied and not result.duplicate)
        return changed
