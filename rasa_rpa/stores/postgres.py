"""PostgreSQL job store: several action servers sharing one database.

The schema and the semantics are SQLite's; what changes is that other
processes run the same statements at the same moment, so two rules replace
SQLite's single writer lock:

* ``record_events`` writes a batch of events with its jobs' row locks held,
  in id order, then each conversation's advisory lock, in key order: events
  of one job apply one after another even across processes, outbox numbers
  follow commit order (a claimer never sees a conversation's later message
  before an earlier one has committed), and replicas wait for each other but
  never deadlock. A batch is usually one statement, planned on the jobs this
  process knows and checked against their row versions under the locks;
  :mod:`rasa_rpa.stores.postgres_record` explains it.
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

This module holds the pool, the migrations and the jobs;
the outbox's claim / mark / replay statements are
:class:`~rasa_rpa.stores.postgres_outbox.PostgresOutbox`, a mixin that runs
them through the same pool and error handling (the claim's locking is
explained above and in :mod:`rasa_rpa.stores.postgres_schema`), recording is
:class:`~rasa_rpa.stores.postgres_record.BatchRecorder`. Files and
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
    StoreError,
)
from rasa_rpa.lifecycle import Planner, apply_event
from rasa_rpa.models import Job
from rasa_rpa.stores.common import UNFINISHED, SqlStore
from rasa_rpa.stores.postgres_files import PostgresFiles
from rasa_rpa.stores.postgres_outbox import PostgresOutbox
from rasa_rpa.stores.postgres_record import WITH_VERSION, BatchRecorder, KnownJobs
from rasa_rpa.stores.postgres_schema import (
    INSERT_JOB,
    JOB_COLUMNS,
    JOB_LIMIT_LOCK,
    JOB_LIMIT_LOCK_CLASS,
    MIGRATIONS,
    SCHEMA_VERSION,
    UNFINISHED_OF,
    UPDATABLE,
    job_from_row,
    job_row,
)
from rasa_rpa.stores.questions import (
    QuestionReads,
    numbered,
)

__all__ = ["SCHEMA_VERSION", "PostgresJobStore"]

_STORE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,  # not an OSError before Python 3.11
    UnicodeError,  # text the driver cannot encode, e.g. a lone surrogate
    # A connection broken mid-query (terminated backend, failover) can leave
    # asyncpg in a state it reports as this, outside its other error roots.
    asyncpg.InternalClientError,
)


class PostgresJobStore(
    BatchRecorder, PostgresOutbox, PostgresFiles, QuestionReads, SqlStore
):
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
        #: The jobs last read or written here, which batches are planned on.
        self.known = KnownJobs()
        #: Batches written at once: two (fewer with a pool under four). A batch
        #: is one statement whose cost hardly depends on its size, so while
        #: one is written the next gathers events: P1 measured 0.18 of
        #: /health with five at once, 0.21-0.25 with two or one. Two keeps a
        #: round trip to a distant database overlapped.
        self.write_concurrency = min(2, max(1, pool_size // 2))
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
                reset=_keep_session,
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
            version = await self._call("fetchval", INSERT_JOB, *job_row(job))
            self.known.remember(job, version)
            return
        key = (job.conversation_id, job.automation)
        with self._errors():
            async with self.pool.acquire() as conn, conn.transaction():
                # Starts of one automation in one conversation take turns (the
                # lock lasts until commit). The count is a statement of its own
                # after it: its snapshot sees what the start before us committed.
                await conn.execute(JOB_LIMIT_LOCK, JOB_LIMIT_LOCK_CLASS, *key)
                rows = await conn.fetch(UNFINISHED_OF, *key)
                if len(rows) >= max_unfinished:
                    running = [job_from_row(row) for row in rows]
                    raise JobLimitReached(job.automation, max_unfinished, running)
                version = await conn.fetchval(INSERT_JOB, *job_row(job))
        self.known.remember(job, version)  # committed now

    async def get_job(self, job_id: str) -> Job:
        query = f"SELECT {WITH_VERSION} FROM jobs WHERE id = $1"
        row = await self._call("fetchrow", query, job_id)
        if row is None:
            self.known.forget(job_id)
            raise JobNotFound(job_id)
        return self.known.remember_row(row)

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


async def _keep_session(connection: Any) -> None:
    """What the pool does to a connection it takes back: nothing more.

    asyncpg's default resets the session on every release (advisory locks,
    cursors, LISTEN, settings), a round trip after each statement run through
    the pool, which doubled the cost of every claim and every batch. This
    store never leaves session state behind: its advisory locks are
    transaction locks, its settings are given at connect, it neither
    listens nor keeps cursors open. The pool still rolls back a transaction
    left open before calling this.
    """
    del connection


def _ident(name: str) -> str:
    """``name`` quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
