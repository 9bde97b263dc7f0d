"""The job service: the one place jobs are started, changed and stopped.

Actions, the callback routes and the reconciler all go through here, so
every path shares the same store transaction, state machine and outbox.

How events are batched into transactions lives apart, in
:mod:`rasa_rpa.stores.groupcommit`, so that this module reads as the jobs'
story: start, record, cancel, expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from rasa_rpa.cleantext import input_problem
from rasa_rpa.config import RpaConfig, secret_values
from rasa_rpa.errors import (
    JobLimitReached,
    ProviderError,
    ProviderUnavailable,
    UnsendableInput,
)
from rasa_rpa.expiry import expiry_data
from rasa_rpa.logs import job_context
from rasa_rpa.metrics import Metrics
from rasa_rpa.models import EventType, Job, JobEvent, JobState, new_job_id
from rasa_rpa.providers.base import Provider, StartRequest
from rasa_rpa.scrub import scrub_event
from rasa_rpa.security import JobKeys
from rasa_rpa.stores.base import EventResult, Guard, JobStore
from rasa_rpa.stores.groupcommit import GroupCommit

__all__ = ["CANCEL_TIMEOUT", "START_TIMEOUT", "JobService"]

log = logging.getLogger(__name__)
#: Seconds a provider may take to accept a job before the user is told it failed.
START_TIMEOUT = 45.0
#: Seconds a provider may take to stop a job before the user hears it could not.
CANCEL_TIMEOUT = 30.0


class JobService:
    """Starts, records and stops jobs."""

    def __init__(
        self,
        config: RpaConfig,
        store: JobStore,
        keys: JobKeys,
        providers: dict[str, Provider] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.providers: dict[str, Provider] = providers or {}
        self.metrics = metrics or Metrics()
        #: Called after an event queued outbox messages (the dispatcher's wake).
        self.on_queued: list[Any] = []
        #: Writes events in batches (see rasa_rpa.stores.groupcommit).
        self.writer = GroupCommit(store, self._after)
        #: Provider stops in flight (kept so they are not garbage-collected).
        self._background: set[asyncio.Future[None]] = set()
        #: Jobs a user is cancelling -> set once the outcome is recorded.
        self._stopping: dict[str, asyncio.Event] = {}
        #: Hidden from every event's data (see :meth:`record`).
        self._secrets = (keys.master_key, *secret_values(config))

    async def record(self, event: JobEvent, guard: Guard | None = None) -> EventResult:
        """Record an event from any source; wake delivery if it queued messages.

        Events that arrive together are written in one transaction (group
        commit, :class:`~rasa_rpa.stores.groupcommit.GroupCommit`): each
        caller still gets its answer only after that commit, so acknowledged
        still means durable, at a fraction of the cost.

        Whatever the source, the data loses credentials first (the job's
        own, configured ones, JWTs): it is shown to users, sent to Rasa and
        stored, and secrets reach none of them.
        """
        secret = self.keys.signing_secret(event.job_id)
        event = scrub_event(
            event, (*self._secrets, secret, secret.removeprefix("whsec_"))
        )
        await self._after_stop(event)
        return await self.writer.write(event, guard)

    def _after(self, event: JobEvent, result: EventResult) -> None:
        target = event.type.target_state
        if result.applied and target is not None and target.is_final:
            self.metrics.jobs_finished.labels(result.job.automation, target.value).inc()
        if result.queued:
            for wake in self.on_queued:
                wake()
        if result.applied and not result.duplicate:
            # State changes are news; progress and chat lines are routine.
            routine = target is None or event.type is EventType.PROGRESS
            log.log(
                logging.DEBUG if routine else logging.INFO,
                "job %s: %s -> %s",
                event.job_id,
                event.type.value,
                result.job.state.value,
                extra={
                    "job_id": event.job_id,
                    "conversation_id": result.job.conversation_id,
                },
            )

    async def start_job(
        self,
        automation_name: str,
        conversation_id: str,
        inputs: dict[str, Any],
        *,
        output_channel: str | None = None,
    ) -> Job:
        """Record a job and hand it to its provider.

        On failure, whatever the provider raised, the job is recorded as
        failed with the reason and a ProviderError is raised for the caller
        to tell the user (its ``user_message``); nothing stays pending.

        Raises:
            JobLimitReached: the conversation already has the automation's
                ``max_running`` jobs unfinished; nothing was recorded or started.
        """
        automation = self.config.automations.get(automation_name)
        if automation is None:
            raise self.config.error(
                f"automations.{automation_name}",
                "no such automation",
                f"add it under automations: in {self.config.source}",
            )
        now = time.time()
        job = Job(
            id=new_job_id(),
            automation=automation_name,
            provider=automation.provider,
            conversation_id=conversation_id,
            output_channel=output_channel,
            inputs=inputs,
            created_at=now,
            updated_at=now,
            deadline_at=now + automation.timeout,
        )
        try:
            await self.store.create_job(job, max_unfinished=automation.max_running)
        except JobLimitReached as exc:
            log.info(
                "not starting %s: %s",
                automation_name,
                exc,
                extra={"job_id": exc.running[0].id, "conversation_id": conversation_id},
            )
            raise
        provider = self.providers[automation.provider]
        request = StartRequest(
            job=job,
            task=automation.task,
            inputs=inputs,
            credentials=self.keys.credentials(
                job.id, conversation_id, self.config.callbacks.public_url
            ),
            timeout=automation.timeout,
        )
        with job_context(job):  # the task copies it: vendor calls name the job
            starting = asyncio.ensure_future(_checked_start(provider, request))
        try:
            # shield: cancelling a half-sent vendor call could leave a job
            # running there that we know nothing about.
            ref = await asyncio.wait_for(asyncio.shield(starting), START_TIMEOUT)
        except asyncio.TimeoutError:
            error: ProviderError = ProviderUnavailable(
                provider.name,
                f"did not accept the job within {START_TIMEOUT:.0f}s",
                job_id=job.id,
            )
            starting.add_done_callback(partial(self._stop_late_start, provider, job))
        except ProviderError as exc:
            error = exc
            error.job_id = error.job_id or job.id
        except Exception as exc:
            # A provider bug or an input it did not expect (a ValueError from
            # deep in a library): fail the job now rather than leave it
            # pending until it expires, and answer the action normally
            # rather than with a 500. The traceback is for the maintainers.
            log.error(
                "job %s: provider %s failed unexpectedly at start",
                job.id,
                provider.name,
                exc_info=exc,
                extra={"job_id": job.id, "conversation_id": conversation_id},
            )
            error = ProviderError(
                provider.name,
                f"could not start the job: unexpected {type(exc).__name__}",
                job_id=job.id,
                user_message="something went wrong on my side",
            )
        else:
            if ref:
                job = await self.store.update_job(job.id, provider_ref=ref)
            self.metrics.jobs_started.labels(automation_name).inc()
            return job
        # The action tells the user itself, so this failure is not pushed again.
        await self.record(
            JobEvent(
                f"start-failed:{job.id}",
                job.id,
                EventType.FAILED,
                # The job's error is what the status action and the monitor
                # show, so it gets the plain words; the operator's detail
                # (URLs, paths, vendor wording) stays in the event and the log.
                {"error": error.user_message, "detail": error.message},
                source="plugin",
                notify=False,
            )
        )
        log.warning(
            "job %s could not start: %s",
            job.id,
            error,
            extra={"job_id": job.id, "conversation_id": conversation_id},
        )
        raise error

    def _stop_late_start(
        self, provider: Provider, job: Job, starting: asyncio.Future[str | None]
    ) -> None:
        """The vendor accepted a job we already reported as failed: stop it."""
        if starting.cancelled() or starting.exception() is not None:
            return
        ref = starting.result()
        log.warning(
            "job %s started after its start timed out; stopping it",
            job.id,
            extra={"job_id": job.id, "conversation_id": job.conversation_id},
        )
        self._stop_in_background(job.evolve(provider_ref=ref))

    async def cancel_job(
        self, job: Job, *, reason: str = "cancelled by the user"
    ) -> Job:
        """Ask ``job``'s provider to stop it, then mark it cancelled.

        Raises ProviderError, the job left as it was, when the provider
        could not stop it (refused, unreachable, slower than CANCEL_TIMEOUT,
        or no cancel capability at all): a job still running must not be
        reported cancelled.
        What the dying robot reports meanwhile waits for this verdict (see
        :meth:`_after_stop`), so it lands as a late event on a final job.
        """
        provider = self.providers.get(job.provider)
        done = self._stopping.setdefault(job.id, asyncio.Event())
        try:
            if provider is not None and not provider.capabilities.cancel:
                # SAP without cancel_url_template, a plain webhook: nothing here
                # can stop the work, so calling it cancelled would be a lie.
                raise ProviderError(
                    job.provider,
                    f"provider {job.provider!r} ({provider.type_name}) has no way "
                    "to stop a job it started; it runs on and its news still "
                    "arrives (configure a cancel API where the provider has one)",
                    job_id=job.id,
                    user_message="it cannot be stopped from here",
                )
            if provider is not None:
                try:
                    with job_context(job):
                        await asyncio.wait_for(provider.cancel(job), CANCEL_TIMEOUT)
                except asyncio.TimeoutError:
                    raise ProviderUnavailable(
                        job.provider,
                        f"stopping the job took more than {CANCEL_TIMEOUT:g}s",
                        job_id=job.id,
                    ) from None
            result = await self.record(
                JobEvent(
                    f"cancel:{job.id}",
                    job.id,
                    EventType.CANCELLED,
                    {"reason": reason},
                    source="plugin",
                )
            )
        except ProviderError as exc:
            log.warning(
                "job %s: could not stop it, so it is not cancelled: %s",
                job.id,
                exc,
                extra={"job_id": job.id, "conversation_id": job.conversation_id},
            )
            raise
        finally:
            self._stopping.pop(job.id, None)
            done.set()
        return result.job

    async def _after_stop(self, event: JobEvent) -> None:
        """Hold a job's own ending while a user's stop of it is in flight.

        A stopped robot often reports its end (a killed local robot says
        "failed"); recorded first, it would beat the cancellation. Held
        until the stop's outcome is recorded, it arrives as a late event on
        a cancelled job, or applies as usual if the stop failed. Only this
        worker's stops are seen: a report reaching another replica is not held.
        """
        done = self._stopping.get(event.job_id)
        target = event.type.target_state
        if done is None or target is None or not target.is_final:
            return
        if event.id == f"cancel:{event.job_id}":
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), CANCEL_TIMEOUT + 5)

    async def expire(self, job: Job, now: float) -> EventResult:
        """End an overdue job as expired and stop whatever still runs.

        Whether its robot was ever heard from changes what the user and the
        operator are told (:func:`rasa_rpa.expiry.expiry_data`).
        """
        pending = job.state is JobState.PENDING
        events = await self.store.job_events(job.id) if pending else []
        data = expiry_data(job, events, now, self.config.callbacks.public_url)
        result = await self.record(
            JobEvent(
                f"expired:{job.id}",
                job.id,
                EventType.EXPIRED,
                data,
                source="reconciler",
            )
        )
        if result.applied:
            if "detail" in data:
                ids = {"job_id": job.id, "conversation_id": job.conversation_id}
                log.warning("job %s expired: %s", job.id, data["detail"], extra=ids)
            self._stop_in_background(result.job)
        return result

    def _stop_in_background(self, job: Job) -> None:
        provider = self.providers.get(job.provider)
        if provider is None:
            return

        async def stop() -> None:
            try:
                await provider.cancel(job)
            except ProviderError as exc:
                log.warning(
                    "job %s: provider could not stop it: %s",
                    job.id,
                    exc,
                    extra={"job_id": job.id, "conversation_id": job.conversation_id},
                )

        with job_context(job):
            task = asyncio.ensure_future(stop())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Let pending stops finish (briefly), then close every provider."""
        if self._background:
            await asyncio.wait(self._background, timeout=10)
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:  # one provider must not keep the others open
                log.exception("closing provider %s failed", provider.name)


async def _checked_start(provider: Provider, request: StartRequest) -> str | None:
    """``provider.start``, once no input holds a NUL or a lone surrogate.

    Checked for every provider alike, so the user hears at once which input
    is to blame. Passed on, such text fails the job minutes later at the
    vendor, whose error then quotes it back to us.
    """
    found = input_problem(request.inputs)
    if found is not None:
        name, problem = found
        raise UnsendableInput(provider.name, name, problem, job_id=request.job.id)
    return await provider.start(request)
