"""How the PostgreSQL store records a batch of events: usually one round trip.

A batch is planned in Python (:func:`rasa_rpa.stores.common.plan_batch`, where
``lifecycle.apply_event`` and the bot's policy live), so the store must know
the batch's jobs before it writes. Reading them under lock costs a
transaction of five round trips (BEGIN, lock the jobs, read the event ids
already logged, write, COMMIT), and on a loopback connection those waits,
not the work, are most of a batch's time.

So the store remembers the jobs it has read or written, each with its row
version (PostgreSQL's ``xmin``: the transaction that wrote that version of
the row; any update makes a new one), and plans the batch on those. The one
statement that then writes it checks first, under the jobs' row locks, that
every job is still at the version the plan was made on and that none of the
batch's events is logged yet, and writes nothing otherwise. A batch planned
on stale knowledge (another replica, ``update_job``, a question, a retried
callback) is planned again the careful way: the locked transaction, which
also refreshes what is remembered. Either way the result is the one a
transaction per event would give, and the statement answers with the new
versions of the jobs it changed.

Locks are taken in one global order on both paths, jobs by id and then each
conversation's advisory lock by key: batches wait for each other, here or in
a replica, but never in a circle. The conversation locks make outbox numbers
follow commit order, so a claimer never sees a conversation's later message
before an earlier one has committed.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from rasa_rpa.errors import RpaError, StoreError
from rasa_rpa.lifecycle import Planner
from rasa_rpa.models import Job, JobEvent
from rasa_rpa.stores.base import EventResult, Guard
from rasa_rpa.stores.common import BatchPlan, plan_batch, storable
from rasa_rpa.stores.postgres_schema import (
    JOB_COLUMNS,
    JOB_FIELDS,
    job_from_row,
    job_row,
)
from rasa_rpa.stores.questions import (
    QUESTION_TYPES,
    SELECT_QUESTIONS,
    QuestionFolder,
    numbered,
    question_from_row,
    question_keys,
)

__all__ = [
    "CONVERSATION_LOCK",
    "RECORD_BATCH",
    "WITH_VERSION",
    "BatchRecorder",
    "KnownJobs",
]

#: Selected beside a job's columns: the row version the cache keys on.
WITH_VERSION = f"{JOB_COLUMNS}, xmin::text AS version"
#: First key of the per-conversation advisory lock a batch takes.
CONVERSATION_LOCK = 0x5250
# Locked in id order (ORDER BY comes before FOR UPDATE's row locks).
_LOCK_JOBS = (
    f"SELECT {WITH_VERSION} FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
)
_RECORDED = (
    "SELECT job_id, event_id FROM job_events WHERE (job_id, event_id) IN"
    " (SELECT * FROM unnest($1::text[], $2::text[]))"
)
#: The questions a batch's answers and expiries name, read after the jobs'
#: locks: an answer committed meanwhile by another replica is seen.
_QUESTIONS_OF = (
    f"{SELECT_QUESTIONS} WHERE (q.job_id, q.question_id) IN"
    " (SELECT * FROM unnest($1::text[], $2::text[]))"
)
_FLOATS = {"progress", "created_at", "updated_at", "started_at", "finished_at"}
_JOB_TYPES = [
    "float8" if name in _FLOATS | {"deadline_at"} else "text" for name in JOB_FIELDS
]
_EVENT_COLUMNS = {
    "job_id": "text", "event_id": "text", "type": "text", "data": "text",
    "source": "text", "applied": "bool", "received_at": "float8",
}  # fmt: skip
_OUTBOX_COLUMNS = {
    "conversation_id": "text", "job_id": "text", "kind": "text", "payload": "text",
    "created_at": "float8",
}  # fmt: skip


def _rows(parameter: str, columns: dict[str, str]) -> str:
    """The rows of a JSON array of arrays, as typed columns, then ``n`` (order).

    One JSON text per table, not one array per column: asyncpg checks every
    element of an array argument in Python (some 16 µs an event here),
    while PostgreSQL parses JSON in C.
    """
    typed = ", ".join(
        f"(r.value ->> {i})::{kind} AS {name}"
        for i, (name, kind) in enumerate(columns.items())
    )
    return (
        f"(SELECT {typed}, r.ordinality AS n"
        f" FROM json_array_elements({parameter}::json) WITH ORDINALITY AS r)"
    )


# A whole batch in one statement:
#   $1 the jobs' ids, $2 the versions the plan assumed, $3 lock class,
#   $4 conversations; $5, $6, $7 the job_events, jobs and outbox rows (JSON).
# ``go`` locks the jobs (id order), compares versions and looks for the
# batch's events in the log; every write waits on it (a one-time filter, so
# the locks come first) and writes nothing when it is false. The advisory
# locks follow the row locks, in key order (the sorted subquery is not
# flattened); the outbox insert needs their result before its first row, so
# numbers are handed out under them. A concurrent batch that logged one of
# our events after this statement's snapshot also held the job's lock: it
# either changed the job (a new version) or its event row makes our insert
# fail on the unique key; both send the batch the careful way.
RECORD_BATCH = f"""
WITH events AS MATERIALIZED {_rows("$5", _EVENT_COLUMNS)},
current AS (
    SELECT id, xmin::text AS version FROM jobs
    WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
), go AS (
    SELECT (
        SELECT count(*) FROM unnest($1::text[], $2::text[]) AS e(id, version)
        JOIN current USING (id, version)
    ) = cardinality($1::text[]) AND NOT EXISTS (
        SELECT 1 FROM job_events WHERE (job_id, event_id) IN (
            SELECT job_id, event_id FROM events
        )
    ) AS ok
), locked AS (
    SELECT count(pg_advisory_xact_lock($3, key)) AS n FROM (
        SELECT DISTINCT hashtext(c) AS key FROM unnest($4::text[]) AS c ORDER BY key
    ) AS keys WHERE (SELECT ok FROM go)
), logged AS (
    INSERT INTO job_events ({", ".join(_EVENT_COLUMNS)})
    SELECT {", ".join(_EVENT_COLUMNS)} FROM events
    WHERE (SELECT ok FROM go) ORDER BY n
), changed AS (
    UPDATE jobs SET {", ".join(f"{name} = u.{name}" for name in JOB_FIELDS[1:])}
    FROM {_rows("$6", dict(zip(JOB_FIELDS, _JOB_TYPES, strict=True)))} AS u
    WHERE jobs.id = u.id AND (SELECT ok FROM go)
    RETURNING jobs.id, jobs.xmin::text AS version
), queued AS (
    INSERT INTO outbox ({", ".join(_OUTBOX_COLUMNS)})
    SELECT {", ".join(_OUTBOX_COLUMNS)} FROM {_rows("$7", _OUTBOX_COLUMNS)} AS u
    WHERE (SELECT n FROM locked) >= 0 AND (SELECT ok FROM go)
    ORDER BY n
)
SELECT (SELECT ok FROM go) AS ok, array(SELECT id FROM changed) AS ids,
    array(SELECT version FROM changed) AS versions
"""


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KnownJobs:
    """The jobs this process last read or wrote, with their row versions.

    Bounded (least recently used go first), and only unfinished jobs, whose
    outputs are still empty. Only ever a guess: the batch statement checks
    every version under lock before it writes.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._jobs: OrderedDict[str, tuple[Job, str]] = OrderedDict()
        self._turns: dict[str, _Turn] = {}

    @asynccontextmanager
    async def turns(self, job_ids: list[str]) -> AsyncIterator[None]:
        """Hold ``job_ids`` (sorted: no two holders wait in a circle).

        Concurrent batches of one process on one job would otherwise both
        plan on the same version, and the second would always fall back.
        """
        counted: list[_Turn] = []
        held: list[_Turn] = []
        try:
            for job_id in job_ids:
                turn = self._turns.setdefault(job_id, _Turn())
                turn.users += 1
                counted.append(turn)
                await turn.lock.acquire()
                held.append(turn)
            yield
        finally:
            for turn in held:
                turn.lock.release()
            for job_id, turn in zip(job_ids, counted, strict=False):
                turn.users -= 1
                if turn.users == 0:
                    del self._turns[job_id]

    def remember(self, job: Job, version: str) -> None:
        if job.state.is_final:
            # Its outputs can be large, and events after the end are rare
            # (a late file, a retried callback): those take the locked path.
            self.forget(job.id)
            return
        self._jobs[job.id] = (job, version)
        self._jobs.move_to_end(job.id)
        while len(self._jobs) > self.limit:
            self._jobs.popitem(last=False)

    def remember_row(self, row: Mapping[str, Any]) -> Job:
        """The job of a row selected ``WITH_VERSION``, remembered."""
        fields = dict(row)
        version = fields.pop("version")
        job = job_from_row(fields)
        self.remember(job, version)
        return job

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def lookup(self, job_ids: Iterable[str]) -> dict[str, tuple[Job, str]] | None:
        """Every one of ``job_ids``, or None when any is unknown."""
        found: dict[str, tuple[Job, str]] = {}
        for job_id in job_ids:
            known = self._jobs.get(job_id)
            if known is None:
                return None
            self._jobs.move_to_end(job_id)
            found[job_id] = known
        return found

    def __len__(self) -> int:
        return len(self._jobs)


class BatchRecorder:
    """``record_events`` for :class:`~rasa_rpa.stores.postgres.PostgresJobStore`.

    A mixin: the store provides ``pool``, ``planner`` and ``_errors``.
    """

    pool: Any
    planner: Planner
    known: KnownJobs

    async def record_events(
        self, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        events = [event for event, _ in items if storable(event)]
        ids = sorted({event.job_id for event in events})
        # A batch of this process waits for the one before it on the same job
        # (so it plans on that one's result), as it would for its row lock.
        async with self.known.turns(ids):
            with self._errors():  # type: ignore[attr-defined]
                return await self._record(items, events, ids)

    async def _record(
        self,
        items: list[tuple[JobEvent, Guard | None]],
        events: list[JobEvent],
        ids: list[str],
    ) -> list[EventResult | RpaError]:
        known = self.known.lookup(ids)
        # Questions are read under lock (an answer races other replicas).
        if known is not None and not any(e.type in QUESTION_TYPES for e in events):
            results = await self._record_on_known(items, known)
            if results is not None:
                return results
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._record_locked(conn, items)

    async def _record_on_known(
        self,
        items: list[tuple[JobEvent, Guard | None]],
        known: dict[str, tuple[Job, str]],
    ) -> list[EventResult | RpaError] | None:
        """The batch in one statement, planned on remembered jobs.

        None when a job had changed or an event was logged already: nothing
        was written, and the caller takes the locked path.
        """
        plan = plan_batch(
            items, {job_id: job for job_id, (job, _) in known.items()}, (), self.planner
        )
        if not plan.events:  # refusals alone prove nothing about the jobs
            return None
        versions = [version for _, version in known.values()]
        try:
            row = await self.pool.fetchrow(
                RECORD_BATCH, list(known), versions, *_arguments(plan)
            )
        except asyncpg.UniqueViolationError:
            return None  # logged meanwhile by a batch this one waited for
        if not row["ok"]:
            return None
        self._remember(plan, row)
        return plan.results

    async def _record_locked(
        self, conn: Any, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        """The batch inside ``conn``'s open transaction, reading under lock."""
        events = [event for event, _ in items if storable(event)]
        ids = sorted({event.job_id for event in events})
        jobs: dict[str, Job] = {}
        versions: list[str] = []
        for row in await conn.fetch(_LOCK_JOBS, ids):
            job = self.known.remember_row(row)
            jobs[job.id] = job
            versions.append(row["version"])
        for job_id in set(ids) - set(jobs):
            self.known.forget(job_id)  # gone, pruned by another replica perhaps
        # After the locks and in a statement of its own: under READ COMMITTED
        # it gets a fresh snapshot, which sees the events of any batch the
        # locks made us wait for (a retried callback is then a duplicate).
        recorded = await conn.fetch(
            _RECORDED, [e.job_id for e in events], [e.id for e in events]
        )
        keys = question_keys(events)
        rows = await conn.fetch(_QUESTIONS_OF, *_columns(keys, 2)) if keys else []
        questions = QuestionFolder({_key(row): question_from_row(row) for row in rows})
        plan = plan_batch(
            items,
            jobs,
            {(row["job_id"], row["event_id"]) for row in recorded},
            self.planner,
            questions.fold,
        )
        for statement, values in questions.changes.statements():
            await conn.executemany(numbered(statement), values)
        if plan.events:
            arguments = _arguments(plan)
            row = await conn.fetchrow(RECORD_BATCH, list(jobs), versions, *arguments)
            if not row["ok"]:  # cannot happen under the locks: never lose a batch
                raise StoreError("a batch conflicted with itself under lock")
            self._remember(plan, row)
        return plan.results

    def _remember(self, plan: BatchPlan, row: Mapping[str, Any]) -> None:
        for job_id, version in zip(row["ids"], row["versions"], strict=True):
            self.known.remember(plan.jobs[job_id], version)


def _arguments(plan: BatchPlan) -> list[Any]:
    """RECORD_BATCH's arguments from the lock class on."""
    return [
        CONVERSATION_LOCK,
        plan.conversations,
        _json(plan.events),
        _json([job_row(job) for job in plan.jobs.values()]),
        _json(plan.outbox),
    ]


def _json(rows: list[tuple[Any, ...]]) -> str:
    # Every text in a row is storable (plan_batch checked it) or JSON that
    # dump() wrote with escapes, so the text PostgreSQL decodes holds no NUL.
    return json.dumps(rows, ensure_ascii=False, allow_nan=False)


def _key(row: Any) -> tuple[str, str]:
    return (row["job_id"], row["question_id"])


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (``unnest`` takes arrays), empty ones too."""
    return (
        [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
    )
