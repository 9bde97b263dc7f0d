"""PostgreSQL job store: several action servers sharing one database.

The schema and the semantics are SQLite's; what changes is that other
processes run the same statements at the same moment, so two rules replace
SQLite's single writer lock:

* ``record_events`` writes a batch of events in one transaction of a few
  round trips: it locks the batch's jobs with ``SELECT ... FOR UPDATE`` in id
  order, reads which events are already logged, plans every event in Python
  (:func:`rasa_rpa.stores.common.plan_batch`), then writes the event rows,
  the jobs and the outbox in one statement from column arrays. Events of one job are
  applied one after another even across processes: the second batch waits,
  then sees the first's event row (a retried callback is a duplicate) and its
  job update. Before queueing messages a batch takes an advisory lock per
  conversation, in key order: outbox numbers are then handed out in commit
  order, as with SQLite, so a claimer never sees a conversation's later
  message before an earlier one has committed. Jobs first, then
  conversations, each in one order: replicas wait for each other but never
  deadlock.
* ``claim_due`` finds each conversation's head by a loose index scan and locks
  it ``FOR UPDATE SKIP LOCKED``: a head another claimer is taking right now is
  skipped, not waited for, and nothing behind it is a head, so no claimer gets
  a conversation's second message while the first is undelivered. The claim
  sets ``lease_until`` in the same statement and commits, so row locks last
  milliseconds, not a whole delivery; the lease is what keeps the message
  from other claimers while it is delivered, and what makes the message of a
  claimer that crashed reappear once it runs out.

JSON is stored as TEXT exactly as SQLite stores it: JSONB would reorder keys
and refuse ``\\u0000``, which SQLite accepts.

This module holds the pool, the migrations, the jobs and the event log;
the outbox's claim / mark / replay statements are
:class:`~rasa_rpa.stores.postgres_outbox.PostgresOutbox`, a mixin that runs
them through the same pool and error handling (the claim's locking is
explained above and in :mod:`rasa_rpa.stores.postgres_schema`). Files and
retention are :class:`~rasa_rpa.stores.postgres_files.PostgresFiles`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from rasa_rpa.errors import (
    JobLimitReached,
    JobNotFound,
    RpaError,
    StoreError,
)
from rasa_rpa.lifecycle import Planner, apply_event
from rasa_rpa.models import Job, JobEvent
from rasa_rpa.stores.base import EventResult, Guard
from rasa_rpa.stores.common import UNFINISHED, SqlStore, plan_batch, storable
from rasa_rpa.stores.postgres_files import PostgresFiles
from rasa_rpa.stores.postgres_outbox import PostgresOutbox
from rasa_rpa.stores.postgres_schema import (
    CONVERSATION_LOCK,
    INSERT_JOB,
    JOB_COLUMNS,
    JOB_LIMIT_LOCK,
    JOB_LIMIT_LOCK_CLASS,
    LOCK_JOBS,
    MIGRATIONS,
    RECORD_BATCH,
    RECORDED,
    SCHEMA_VERSION,
    UNFINISHED_OF,
    UPDATABLE,
    job_from_row,
    job_row,
)
from rasa_rpa.stores.questions import (
    SELECT_QUESTIONS,
    QuestionFolder,
    QuestionReads,
    numbered,
    question_from_row,
    question_keys,
)

__all__ = ["SCHEMA_VERSION", "PostgresJobStore"]

_STORE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,  # not an OSError before Python 3.11
    UnicodeError,  # text the driver cannot encode, e.g. a lone surrogate
)


class PostgresJobStore(PostgresOutbox, PostgresFiles, QuestionReads, SqlStore):
    """A :class:`~rasa_rpa.stores.base.JobStore` in a PostgreSQL database."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        #: What an event does to a job; the runtime adds bot-specific policy.
        self.planner: Planner = apply_event
        #: Batches written in parallel; half the pool, the rest serves reads.
        self.write_concurrency = max(1, pool_size // 2)
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        parts = urlsplit(dsn)
        # Both spellings, as the URL has it and as the driver uses it.
        self._secrets = {parts.password or "", unquote(parts.password or "")} - {""}
        #: Where the store is, for messages: never includes the password.
        self.where = (
            f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
            f"/{parts.path.lstrip('/') or parts.username or ''}"
            + (f" (schema {schema})" if schema else "")
        )
        self._pool: Any = None

    @classmethod
    def from_url(cls, url: str, base_dir: Path) -> PostgresJobStore:
        """``postgresql://user@host:port/db?schema=rpa&pool_size=10``.

        ``schema`` and ``pool_size`` are ours; asyncpg would send unknown query
        keys to the server as settings, so they are taken out of the DSN.
        """
        del base_dir  # a database has no path relative to the config
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ours = {key: value for key, value in query if key in ("schema", "pool_size")}
        rest = [(key, value) for key, value in query if key not in ours]
        try:
            pool_size = int(ours.get("pool_size", "10"))
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            pool_size = 0
        if pool_size < 1:
            # open_store names the config file and the fix.
            raise ValueError("the port and ?pool_size= must be positive integers")
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
        return cls(dsn, schema=ours.get("schema") or None, pool_size=pool_size)

    async def open(self) -> None:
        settings = {"search_path": _ident(self.schema)} if self.schema else {}
        with self._errors("cannot open "):
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.connect_timeout,
                server_settings=settings,
            )
            try:
                async with pool.acquire() as conn:
                    await self._migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _migrate(self, conn: Any) -> None:
        # The advisory lock makes processes that start together take turns;
        # it is released with the transaction.
        async with conn.transaction():
            key = f"rasa_rpa.migrate:{self.schema or ''}"
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema
            )
            if self.schema and not exists:
                # Only when missing: creating needs a privilege using one does not.
                await conn.execute(f"CREATE SCHEMA {_ident(self.schema)}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            current = await conn.fetchval("SELECT version FROM schema_version") or 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.where} has schema {current}, newer than this rasa-rpa "
                    f"({SCHEMA_VERSION}); upgrade rasa-rpa"
                )
            for script in MIGRATIONS[current:]:
                await conn.execute(script)  # no arguments: runs every statement
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version VALUES ($1)", SCHEMA_VERSION)

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    async def _call(self, method: str, query: str, *args: Any) -> Any:
        """``pool.<method>(query, *args)`` with errors made StoreErrors."""
        with self._errors():
            return await getattr(self.pool, method)(query, *args)

    # -- jobs ---------------------------------------------------------------

    async def create_job(self, job: Job, *, max_unfinished: int | None = None) -> None:
        if max_unfinished is None:
            await self._call("execute", INSERT_JOB, *job_row(job))
            return
        key = (job.conversation_id, job.automation)
        with self._errors():
            async with self.pool.acquire() as conn, conn.transaction():
                # Starts of one automation in one conversation take turns (the
                # lock lasts until commit). The count is a statement of its own
                # after it: its snapshot sees what the start before us committed.
                await conn.execute(JOB_LIMIT_LOCK, JOB_LIMIT_LOCK_CLASS, *key)
                rows = await conn.fetch(UNFINISHED_OF, *key)
                if len(rows) < max_unfinished:
                    await conn.execute(INSERT_JOB, *job_row(job))
        if len(rows) >= max_unfinished:
            running = [job_from_row(row) for row in rows]
            raise JobLimitReached(job.automation, max_unfinished, running)

    async def get_job(self, job_id: str) -> Job:
        query = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        row = await self._call("fetchrow", query, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    async def jobs_with_id_prefix(self, prefix: str, *, limit: int = 10) -> list[Job]:
        # A range, not LIKE, which only uses the index under the C collation.
        # Ids are lower-case hex, and "g" sorts after every hex digit.
        query = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id >= $1 AND id < $2 "
            "ORDER BY created_at DESC LIMIT $3"
        )
        rows = await self._call("fetch", query, prefix, prefix + "g", limit)
        return [job_from_row(row) for row in rows]

    async def update_job(self, job_id: str, **fields: Any) -> Job:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} directly")
        if fields:
            names = [*fields, "updated_at"]
            sets = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, 2))
            query = f"UPDATE jobs SET {sets} WHERE id = $1"
            await self._call("execute", query, job_id, *fields.values(), time.time())
        return await self.get_job(job_id)

    async def find_by_ref(self, provider: str, provider_ref: str) -> Job | None:
        query = (
            f"SELECT {JOB_COLUMNS} FROM jobs"
            " WHERE provider = $1 AND provider_ref = $2 ORDER BY seq LIMIT 1"
        )
        row = await self._call("fetchrow", query, provider, provider_ref)
        return None if row is None else job_from_row(row)

    async def list_jobs(
        self,
        *,
        conversation_id: str | None = None,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Job]:
        where = ["true"] if conversation_id is None else ["conversation_id = $2"]
        args = [] if conversation_id is None else [conversation_id]
        where += [UNFINISHED] if unfinished else []
        query = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, seq DESC LIMIT $1"
        )
        return [job_from_row(r) for r in await self._call("fetch", query, limit, *args)]

    async def unfinished_jobs(self, *, limit: int = 500) -> list[Job]:
        # NULLS FIRST: SQLite's order, where no deadline sorts first.
        query = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {UNFINISHED}"
            " ORDER BY deadline_at NULLS FIRST, seq LIMIT $1"
        )
        return [job_from_row(r) for r in await self._call("fetch", query, limit)]

    # -- events -------------------------------------------------------------

    async def record_events(
        self, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        with self._errors():
            async with self.pool.acquire() as conn, conn.transaction():
                return await self._record_batch(conn, items)

    async def _record_batch(
        self, conn: Any, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        """Record ``items`` inside ``conn``'s open transaction."""
        events = [event for event, _ in items if storable(event)]
        # Jobs in id order, then conversations in key order: every batch, here
        # or in a replica, takes its locks in one global order, so batches
        # wait for each other but never in a circle.
        jobs = await conn.fetch(LOCK_JOBS, sorted({e.job_id for e in events}))
        # After the locks and in a statement of its own: under READ COMMITTED
        # it gets a fresh snapshot, which sees the events of any batch the
        # locks made us wait for (a retried callback is then a duplicate).
        recorded = await conn.fetch(
            RECORDED, [e.job_id for e in events], [e.id for e in events]
        )
        keys = question_keys(events)
        rows = await conn.fetch(_QUESTIONS_OF, *_columns(keys, 2)) if keys else []
        questions = QuestionFolder({_key(row): question_from_row(row) for row in rows})
        plan = plan_batch(
            items,
            {row["id"]: job_from_row(row) for row in jobs},
            {(row["job_id"], row["event_id"]) for row in recorded},
            self.planner,
            questions.fold,
        )
        for statement, values in questions.changes.statements():
            await conn.executemany(numbered(statement), values)
        if plan.events:
            await conn.execute(
                RECORD_BATCH,
                CONVERSATION_LOCK,
                plan.conversations,
                *_columns(plan.events, 7),
                *_columns([job_row(job) for job in plan.jobs.values()], 17),
                *_columns(plan.outbox, 5),
            )
        return plan.results

    async def _question_rows(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._call("fetch", numbered(sql), *args)
        return rows

    async def job_events(self, job_id: str) -> list[dict[str, Any]]:
        query = (
            "SELECT event_id AS id, type, data, source, applied, received_at"
            " FROM job_events WHERE job_id = $1 ORDER BY seq"
        )
        rows = await self._call("fetch", query, job_id)
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    @contextmanager
    def _errors(self, doing: str = "") -> Iterator[None]:
        """Turn driver and network errors into StoreError so routes answer 503.

        The message names the server and database; a password the driver may
        have echoed is blanked out.
        """
        try:
            yield
        except _STORE_ERRORS as exc:
            detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
            for secret in self._secrets:
                detail = detail.replace(secret, "***")
            raise StoreError(f"{doing}PostgreSQL store {self.where}: {detail}") from exc


#: The questions a batch's answers and expiries name, read after the jobs'
#: locks: an answer committed meanwhile by another replica is seen.
_QUESTIONS_OF = (
    f"{SELECT_QUESTIONS} WHERE (q.job_id, q.question_id) IN"
    " (SELECT * FROM unnest($1::text[], $2::text[]))"
)


def _key(row: Any) -> tuple[str, str]:
    return (row["job_id"], row["question_id"])


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (``unnest`` takes arrays), empty ones too."""
    return (
        [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
    )


def _ident(name: str) -> str:
    """``name`` quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
