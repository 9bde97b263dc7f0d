"""The job store contract every backend fulfils.

A store keeps four things: jobs, the append-only log of events received for
them (unique per ``(job_id, event id)``), the outbox of calls still to be made
to Rasa, the questions robots ask (changed only by recording the events that
ask, answer and expire them), and the files robots sent (in chunks, so any
replica serves them). Retention (:mod:`rasa_rpa.stores.retention`) prunes what
is done with. :meth:`JobStore.record_event` is the heart: it records the
event, folds it into the job with :func:`rasa_rpa.lifecycle.apply_event` and
queues the resulting outbox rows in **one transaction**, so a callback that
was acknowledged is never lost and never delivered twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rasa_rpa.errors import JobNotFound, RpaError
from rasa_rpa.lifecycle import Planner
from rasa_rpa.models import Job, JobEvent, OutboxMessage, StoredFile
from rasa_rpa.questions import Question
from rasa_rpa.stores.retention import Cutoffs, Storage
from rasa_rpa.variables import job_ref, ref_id_prefix

__all__ = ["EventResult", "Guard", "JobStore", "find_job"]

#: A check on the job, run inside the recording transaction.
Guard = Callable[[Job], None]


@dataclass(frozen=True)
class EventResult:
    """What recording an event did."""

    job: Job
    #: The event changed the job or queued a message.
    applied: bool
    #: An event with this id was already recorded for this job.
    duplicate: bool
    #: How many outbox rows were queued.
    queued: int = 0


class JobStore(Protocol):
    """Durable storage for jobs, events and the outbox.

    Usage::

        store = open_store("sqlite:///jobs.db")
        await store.open()
        await store.create_job(job)
        result = await store.record_event(event)
        for message in await store.claim_due(now, limit=100, lease=30):
            ...  # deliver, then mark_delivered / mark_retry / mark_dead
        await store.close()
    """

    #: What an event does to a job (default :func:`rasa_rpa.lifecycle.apply_event`).
    planner: Planner
    #: How many record_events transactions may run at once.
    write_concurrency: int

    async def open(self) -> None:
        """Connect and bring the schema to the current version."""

    async def close(self) -> None:
        """Release connections."""

    async def create_job(self, job: Job, *, max_unfinished: int | None = None) -> None:
        """Insert a new job.

        With ``max_unfinished``, only while fewer jobs of the same automation
        in the same conversation are unfinished (pending or running); else
        raise :class:`~rasa_rpa.errors.JobLimitReached` naming them. The count
        and the insert are one atomic step, across processes too: two starts
        racing in two workers or replicas cannot both get through.
        """

    async def get_job(self, job_id: str) -> Job:
        """The job, or JobNotFound."""

    async def update_job(self, job_id: str, **fields: Any) -> Job:
        """Set plain fields (``provider_ref``...) that are not state changes."""

    async def jobs_with_id_prefix(self, prefix: str, *, limit: int = 10) -> list[Job]:
        """Jobs whose id starts with ``prefix`` (lower-case hex), newest first.

        For the short references users are given (:mod:`rasa_rpa.variables`):
        a range scan on the primary key, whatever the store's size.
        """

    async def find_by_ref(self, provider: str, provider_ref: str) -> Job | None:
        """The job a provider knows as ``provider_ref`` (for vendor webhooks)."""

    async def latest_job(self, conversation_id: str) -> Job | None:
        """The newest job started from ``conversation_id``."""

    async def list_jobs(
        self,
        *,
        conversation_id: str | None = None,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Job]:
        """Newest first; ``unfinished``: only jobs still pending or running."""

    async def unfinished_jobs(self, *, limit: int = 500) -> list[Job]:
        """Jobs not yet in a final state, oldest deadline first."""

    async def record_event(
        self, event: JobEvent, guard: Guard | None = None
    ) -> EventResult:
        """Record, apply and queue, atomically; idempotent on the event id.

        ``guard(job)`` runs on the locked job before anything is written and
        may raise (an RpaError) to refuse the event.
        """

    async def record_events(
        self, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        """Several events in one transaction (one commit).

        Each event sees the jobs as the events before it left them, as if it
        had its own transaction. An event that fails (unknown job, refused by
        its guard, text the database cannot hold) writes nothing and its
        error is returned in its place; the others commit.
        """

    async def job_events(self, job_id: str) -> list[dict[str, Any]]:
        """The event log of one job, oldest first."""

    async def get_question(self, job_id: str, question_id: str) -> Question | None:
        """A job's question with its answer, if any (``job_final`` filled in)."""

    async def find_question(
        self, conversation_id: str, question_id: str
    ) -> Question | None:
        """The question ``question_id`` of a job of ``conversation_id``.

        Robots choose question ids, so two jobs of one conversation may
        share one: the open question is meant, else the newest.
        """

    async def open_questions(self, conversation_id: str, now: float) -> list[Question]:
        """Questions of the conversation's unfinished jobs still waiting at
        ``now``, oldest first."""

    async def due_questions(self, now: float, *, limit: int = 100) -> list[Question]:
        """Questions of unfinished jobs whose timeout passed without an
        answer, and that are not marked expired yet (the reconciler's work)."""

    async def claim_due(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        coalesce_progress: bool = False,
    ) -> list[OutboxMessage]:
        """The head message of each conversation that is due, leased to the caller.

        ``coalesce_progress``: where a due head is a progress update and a newer
        one of the same job waits in the same conversation, the older ones are
        set aside first (counted as delivered, ``last_error`` says why), so a
        user behind a slow Rasa hears the latest progress, not every step. No
        other kind of message is ever set aside, and order is kept.

        Only a conversation's oldest undelivered message is ever handed out,
        which keeps delivery in order per conversation even across processes.
        A message is claimed ``in_doubt`` when it was marked so, or when an
        earlier claimer's lease ran out before it reported (it may have sent
        the message, then died); the claim stores that doubt durably.
        """

    async def mark_delivered(self, seq: int, now: float) -> None:
        """The message reached Rasa; this settles any doubt about it."""

    async def mark_delivered_many(self, seqs: list[int], now: float) -> None:
        """Several messages reached Rasa (one transaction for all of them)."""

    async def release(self, seqs: list[int], lease_until: float) -> None:
        """Hand claimed messages back unsent: due again now, as if never claimed.

        ``lease_until`` is the lease the claim gave them; a message whose lease
        ran out and that another claimer holds now is left alone, as is one
        settled meanwhile. A release neither adds nor clears doubt.
        """

    async def mark_retry(
        self, seq: int, error: str, next_attempt_at: float, *, in_doubt: bool = False
    ) -> None:
        """The message failed and is due again at ``next_attempt_at``.

        ``in_doubt``: Rasa may have processed it; later claims report it in
        doubt so the dispatcher checks the tracker before sending again.
        False adds no doubt but never clears one: a later failure (Rasa
        refusing connections, the tracker check itself failing) says nothing
        about whether an earlier attempt arrived. Only a delivery settles it.
        """

    async def mark_dead(self, seq: int, error: str, now: float) -> None:
        """Set the message aside for an operator (refused, too old), doubt and all."""

    async def outbox_stats(self) -> dict[str, int]:
        """Counts of pending, delivered, dead and discarded messages."""

    async def list_outbox(
        self, *, status: str = "dead", job_id: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        """Outbox messages by status, newest first.

        ``status`` is pending, delivered, dead or discarded, or ``failing``:
        pending messages that have failed at least once. ``OutboxMessage.
        last_error`` says why a message is dead, or failing.
        """

    async def replay(self, seq: int, now: float) -> bool:
        """Queue a dead (or delivered) message again; False if there is none.

        A dead message in doubt stays in doubt, so the tracker is checked
        before it is sent; a delivered one is sent again, as asked. A
        discarded message is never replayed.
        """

    async def discard(self, seq: int, now: float) -> bool:
        """Set a dead message aside for good; False if ``seq`` is not dead.

        It stops counting as dead and is never replayed nor delivered, but
        stays listed (status ``discarded``) with its last error, for the record.
        """

    async def begin_file(self, file: StoredFile) -> None:
        """Start an upload: the file's row, not yet stored (its job must exist)."""

    async def put_file_chunk(self, file_id: str, n: int, data: bytes) -> None:
        """Keep chunk ``n`` (from 0) of an upload begun with :meth:`begin_file`."""

    async def finish_file(
        self, file_id: str, size: int, sha256: str, now: float
    ) -> tuple[StoredFile, bool]:
        """Mark an upload stored, once all its chunks are in and checked.

        Returns the stored file and True; or, when an upload of the same
        ``upload_id`` for the job was stored first, that one and False (this
        one is dropped). StoreError when the upload is gone (pruned as stale).
        """

    async def drop_file(self, file_id: str) -> None:
        """Forget an upload (refused, cut off) and whatever chunks it had."""

    async def get_file(self, file_id: str) -> StoredFile | None:
        """A stored file by id; None for an unknown, unfinished or pruned one."""

    async def file_by_upload(self, job_id: str, upload_id: str) -> StoredFile | None:
        """The file stored for ``job_id`` under the uploader's ``upload_id``."""

    async def file_chunk(self, file_id: str, n: int) -> bytes | None:
        """Chunk ``n`` of a file (one read each: a download holds one chunk)."""

    async def list_files(self, job_id: str) -> list[StoredFile]:
        """The stored files of a job, oldest first."""

    async def prune(self, cutoffs: Cutoffs, *, batch: int) -> dict[str, int]:
        """Drop one small batch of each kind ``cutoffs`` allows; counts by kind.

        Each kind goes in a short transaction of its own; call again until
        every count is 0. Never touches an unfinished job, nor anything of
        a job with a message not yet delivered.
        """

    async def storage(self, cutoffs: Cutoffs) -> Storage:
        """The store's size and rows, and what :meth:`prune` would drop now."""


async def find_job(store: JobStore, wanted: str) -> Job:
    """The job named by its id or by the short reference the user was shown.

    A reference (``7K3-Q9X``, typed in any case, dash optional) leads to a
    few candidates by id prefix, kept when their own reference matches;
    two jobs sharing one is rare, and then both ids are named.
    """
    with contextlib.suppress(JobNotFound):
        return await store.get_job(wanted)
    parsed = ref_id_prefix(wanted)
    if parsed is None:
        raise JobNotFound(wanted)
    ref, prefix = parsed
    found = [
        job
        for job in await store.jobs_with_id_prefix(prefix)
        if job_ref(job.id) == ref
    ]
    if len(found) > 1:
        ids = ", ".join(job.id for job in found)
        raise JobNotFound(ref, f"{ref} names several jobs ({ids}): give the id")
    if not found:
        raise JobNotFound(ref)
    return found[0]
