"""What both SQL stores share: the outbox status filters, the fields a plain
update may set, how JSON columns are written, and how a batch of events is
planned before a single write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rasa_rpa import strictjson
from rasa_rpa.errors import InvalidPayload, JobNotFound, RpaError
from rasa_rpa.lifecycle import Outcome, Planner, intent_for
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.stores.base import EventResult, Guard

__all__ = [
    "OUTBOX_FILTERS",
    "OUTBOX_STATUS",
    "PROGRESS_INTENT",
    "SUPERSEDED",
    "UNFINISHED",
    "UPDATABLE",
    "BatchPlan",
    "SqlStore",
    "dump",
    "outbox_condition",
    "plan_batch",
    "storable",
]

#: SQL conditions for each outbox status (the same columns in both schemas).
#: Every message has exactly one. A discarded message is a dead one an operator
#: set aside for good: it no longer counts as dead and is never replayed.
OUTBOX_STATUS = {
    "pending": "delivered_at IS NULL AND dead_at IS NULL",
    "delivered": "delivered_at IS NOT NULL",
    "dead": "dead_at IS NOT NULL AND discarded_at IS NULL",
    "discarded": "discarded_at IS NOT NULL",
}
#: What ``list_outbox`` filters by: the statuses, and ``failing``, the pending
#: messages that have failed at least once (what keeps news from a user now).
OUTBOX_FILTERS = {
    **OUTBOX_STATUS,
    "failing": f"{OUTBOX_STATUS['pending']} AND attempts > 0",
}
#: The intent of a progress update: the one kind of message coalescing drops.
PROGRESS_INTENT = intent_for(EventType.PROGRESS)
#: What a progress update coalescing dropped says (``last_error``; it counts
#: as delivered, since the newer update it gave way to carries its news).
SUPERSEDED = (
    "superseded by a newer progress update of the same job"
    " (delivery.coalesce_progress)"
)
#: SQL condition for jobs not yet in a final state (both schemas).
UNFINISHED = "state IN ('pending', 'running')"
#: Job fields update_job may set; state changes only go through events.
UPDATABLE = frozenset({"provider_ref", "deadline_at", "output_channel", "message"})


def outbox_condition(status: str) -> str:
    """The SQL condition for outbox messages in ``status`` (both schemas).

    Raises:
        ValueError: ``status`` is none of :data:`OUTBOX_FILTERS`'s (the admin
            API answers 400).
    """
    where = OUTBOX_FILTERS.get(status)
    if where is None:
        raise ValueError(f"status must be one of {sorted(OUTBOX_FILTERS)}")
    return where


def dump(value: Any) -> str:
    """Compact JSON text, the same bytes whichever store keeps it.

    Strict JSON: a NaN or Infinity that got this far is stored as null, so no
    row ever breaks a reader (the admin API, the monitor, an export).
    """
    return strictjson.dumps(value, separators=(",", ":"), default=str)


class SqlStore:
    """What the SQL stores derive from their own primitives, written once."""

    async def record_events(
        self, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        raise NotImplementedError

    async def list_jobs(
        self,
        *,
        conversation_id: str | None = None,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Job]:
        raise NotImplementedError

    async def record_event(
        self, event: JobEvent, guard: Guard | None = None
    ) -> EventResult:
        """One event: a batch of one, its refusal raised rather than returned."""
        [result] = await self.record_events([(event, guard)])
        if isinstance(result, RpaError):
            raise result
        return result

    async def latest_job(self, conversation_id: str) -> Job | None:
        jobs = await self.list_jobs(conversation_id=conversation_id, limit=1)
        return jobs[0] if jobs else None


@dataclass
class BatchPlan:
    """Everything a batch of events writes, worked out before the first write.

    The rows come out in event order, so outbox numbers follow arrival order.
    """

    #: One answer per event, in the order the events came.
    results: list[EventResult | RpaError] = field(default_factory=list)
    #: ``job_events`` rows: job_id, event_id, type, data, source, applied, received_at.
    events: list[tuple[Any, ...]] = field(default_factory=list)
    #: The final state of every job the batch changed, by id.
    jobs: dict[str, Job] = field(default_factory=dict)
    #: ``outbox`` rows: conversation_id, job_id, kind, payload, created_at.
    outbox: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def conversations(self) -> list[str]:
        """The conversations the batch queues messages for, sorted."""
        return sorted({row[0] for row in self.outbox})


def plan_batch(
    items: Iterable[tuple[JobEvent, Guard | None]],
    jobs: Mapping[str, Job],
    recorded: Iterable[tuple[str, str]],
    planner: Planner,
    fold: Callable[[Outcome, JobEvent], Outcome] | None = None,
) -> BatchPlan:
    """Fold each event into its job, as one transaction per event would.

    ``jobs`` holds the batch's jobs as stored (locked, where the store can),
    ``recorded`` the ``(job_id, event_id)`` pairs already in the event log.
    An event that cannot be kept (unknown job, a guard's refusal, text the
    database cannot hold) gets its error as its result and writes nothing;
    the others go on, each seeing the jobs as the events before it left them.
    Planned up front, a batch becomes a few bulk writes instead of a
    savepoint and a handful of statements per event. ``fold`` has the last
    word on each outcome (questions: :mod:`rasa_rpa.stores.questions`).
    """
    plan = BatchPlan()
    current = dict(jobs)
    seen = set(recorded)
    for event, guard in items:
        job = current.get(event.job_id)
        try:
            _check_text(event)
            if job is None:
                raise JobNotFound(event.job_id)
            if guard is not None:
                guard(job)
            if (event.job_id, event.id) in seen:
                plan.results.append(EventResult(job, applied=False, duplicate=True))
                continue
            outcome = planner(job, event)
            _check_job_text(outcome.job, job)
            if fold is not None:  # last: it writes down what it folds
                outcome = fold(outcome, event)
            event_row = (
                event.job_id,
                event.id,
                event.type.value,
                dump(event.data),
                event.source,
                outcome.applied,
                event.received_at,
            )
            outbox_rows = [
                (m.conversation_id, m.job_id, m.kind, dump(m.payload), m.created_at)
                for m in outcome.outbox
            ]
        except (RpaError, UnicodeError, ValueError) as exc:
            plan.results.append(_refusal(exc))
            continue
        seen.add((event.job_id, event.id))
        plan.events.append(event_row)
        plan.outbox.extend(outbox_rows)
        if outcome.job is not job:
            current[job.id] = plan.jobs[job.id] = outcome.job
        plan.results.append(
            EventResult(outcome.job, outcome.applied, False, len(outbox_rows))
        )
    return plan


def storable(event: JobEvent) -> bool:
    """Whether both databases can hold the event's ids and source as text.

    Checked before an id goes into any statement: PostgreSQL fails the whole
    statement (and so the batch) on a NUL, SQLite's driver on a lone surrogate.
    """
    try:
        _check_text(event)
    except (InvalidPayload, UnicodeError):
        return False
    return True


#: Longest event id kept: the body's ``id`` allows 200 characters, and a
#: ``webhook-id`` header or a vendor's id must not be longer (a few KB would
#: overflow PostgreSQL's index entry and fail every event batched with it).
MAX_EVENT_ID = 200


def _check_text(event: JobEvent) -> None:
    for text in (event.job_id, event.id, event.source):
        _storable_text(text, "ids and sources")
    if len(event.id) > MAX_EVENT_ID:
        raise InvalidPayload(
            f"an event id can be at most {MAX_EVENT_ID} characters"
            " (the body's id, or the webhook-id header when it has none)"
        )


def _check_job_text(job: Job, before: Job) -> None:
    """The plain-text columns an event can fill from its data (JSON columns are
    written with escapes, so they hold anything); only what this event set."""
    for text, old in ((job.message, before.message), (job.error, before.error)):
        if text is not None and text is not old:
            _storable_text(text, "messages and errors")


def _storable_text(text: str, what: str) -> None:
    text.encode()  # a lone surrogate raises UnicodeEncodeError
    if "\x00" in text:
        raise InvalidPayload(f"{what} cannot contain NUL characters")


def _refusal(exc: Exception) -> RpaError:
    """An event the store cannot keep fails alone, as a client error.

    The answer names the problem, not the exception: codec and driver
    wording is for the log, not for whoever sent the event.
    """
    if isinstance(exc, RpaError):
        return exc
    if isinstance(exc, UnicodeError):
        return InvalidPayload(
            "the event cannot be stored: it holds text that is not valid "
            "Unicode (a lone surrogate)"
        )
    return InvalidPayload(f"the event cannot be stored: {exc}")
