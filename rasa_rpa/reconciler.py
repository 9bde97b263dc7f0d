"""Background work on the store: expiry, polling providers, the questions
nobody answered in time, and retention.

Callbacks can be lost (UiPath drops webhooks for an hour after one failure;
a robot can die before it reports), so every unfinished job is looked at on
a timer. What the reconciler learns goes through the same
:meth:`JobService.record` path as a callback: same dedupe, same state machine.

Every ``retention.interval`` it also prunes what ``retention:`` lets go
(:meth:`Reconciler.prune_once`), in batches of ``retention.batch`` rows, each
a short transaction, yielding to the event loop between them.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rasa_rpa.asking import QuestionDesk
from rasa_rpa.background import BackgroundLoop
from rasa_rpa.cleantext import clean_event
from rasa_rpa.configfiles import RetentionSettings
from rasa_rpa.errors import ProviderError, StoreError
from rasa_rpa.logs import job_context
from rasa_rpa.models import Job
from rasa_rpa.service import JobService
from rasa_rpa.stores.retention import KINDS, Cutoffs

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class Reconciler(BackgroundLoop):
    """Expires overdue jobs and polls providers that have a status API.

    Each job is polled every ``poll_interval`` seconds (a provider option,
    default 10 s); a failing poll backs off exponentially up to 5 minutes, and
    at most ``max_concurrent_polls`` polls run at once, so a backlog of jobs
    cannot flood a vendor API.
    """

    task_name = "rasa-rpa-reconciler"

    def __init__(
        self,
        service: JobService,
        *,
        interval: float,
        max_concurrent_polls: int = 8,
        questions: QuestionDesk | None = None,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.service = service
        #: Expires questions past their timeout (the user is told).
        self.questions = questions
        self.interval = interval
        self.retention = retention
        self._limit = asyncio.Semaphore(max_concurrent_polls)
        #: job id -> (next poll time, consecutive failures)
        self._schedule: dict[str, tuple[float, int]] = {}
        #: When retention runs next (at once, on start).
        self._next_prune = 0.0

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
                if self.retention and time.time() >= self._next_prune:
                    self._next_prune = time.time() + self.retention.interval
                    await self.prune_once()
            except StoreError as exc:
                log.error("reconciler: store unavailable: %s", exc)
            except Exception:  # a bad answer must not stop expiry for good
                log.exception("reconciler: unexpected error; carrying on")
            await asyncio.sleep(self.interval)

    def cutoffs(self, now: float | None = None) -> Cutoffs:
        """What ``retention:`` lets go of at ``now``."""
        settings = self.retention or RetentionSettings()
        return Cutoffs.of(settings, time.time() if now is None else now)

    async def prune_once(self, now: float | None = None) -> dict[str, int]:
        """Prune everything retention allows now, batch after batch; counts."""
        settings = self.retention or RetentionSettings()
        cutoffs = self.cutoffs(now)
        totals = dict.fromkeys(KINDS, 0)
        while True:
            done = await self.service.store.prune(cutoffs, batch=settings.batch)
            for kind, count in done.items():
                totals[kind] += count
            if not any(done.values()):
                break
            await asyncio.sleep(0)  # callbacks go first between batches
        if any(totals.values()):
            log.info(
                "retention: pruned %s",
                ", ".join(f"{count} {kind}" for kind, count in totals.items()),
            )
        return totals

    async def check_once(self, now: float | None = None) -> int:
        """One pass over unfinished jobs; return how many changed."""
        now = time.time() if now is None else now
        changed = 0
        due: list[Job] = []
        jobs = await self.service.store.unfinished_jobs()
        live = {job.id for job in jobs}
        for job_id in set(self._schedule) - live:
            del self._schedule[job_id]
        for job in jobs:
            if job.deadline_at is not None and job.deadline_at <= now:
                result = await self.service.expire(job, now)
                changed += int(result.applied)
            elif self._pollable(job) and self._schedule.get(job.id, (0, 0))[0] <= now:
                due.append(job)
        counts = await asyncio.gather(*(self._poll(job, now) for job in due))
        if self.questions is not None:
            changed += await self.questions.expire_due(now)
        return changed + sum(counts)

    def _pollable(self, job: Job) -> bool:
        provider = self.service.providers.get(job.provider)
        return (
            provider is not None
            and job.provider_ref is not None
            and provider.capabilities.poll
        )

    async def _poll(self, job: Job, now: float) -> int:
        provider = self.service.providers[job.provider]
        interval = provider.options.poll_interval
        failures = self._schedule.get(job.id, (0.0, 0))[1]
        async with self._limit:
            try:
                with job_context(job):
                    events = await provider.poll(job)
            except ProviderError as exc:
                self.service.metrics.poll_errors.labels(job.provider).inc()
                failures += 1
                delay = min(interval * 2**failures, 300.0)
                self._schedule[job.id] = (now + delay, failures)
                log.warning(
                    "reconciler: polling job %s failed (%s); next try in %.0fs",
                    job.id,
                    exc,
                    delay,
                    extra={"job_id": job.id, "conversation_id": job.conversation_id},
                )
                return 0
        self._schedule[job.id] = (now + interval, 0)
        changed = 0
        for event in events:
            # A vendor's words are cleaned, not refused: a refusal here would
            # repeat on every poll until the job expired.
            result = await self.service.record(clean_event(event))
            changed += int(result.applied and not result.duplicate)
        return changed
