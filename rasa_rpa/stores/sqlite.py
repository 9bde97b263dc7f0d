"""SQLite job store: the embedded default.

WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
process being killed (power loss may drop the last few; use PostgreSQL or
``?synchronous=FULL`` where that matters). Statements run on the event loop
thread on purpose: each takes microseconds, less than a hop to a worker
thread would cost, and running a whole transaction without an ``await``
means coroutines never interleave inside one.

This module holds the connection, its transactions, the jobs and the event
log; the outbox's claim / mark / replay statements are
:class:`~rasa_rpa.stores.sqlite_outbox.SQLiteOutbox`, a mixin on the same
connection, because they change together with the outbox schema and apart
from how events are recorded. Files and retention are another mixin,
:class:`~rasa_rpa.stores.sqlite_files.SQLiteFiles`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from rasa_rpa.errors import JobLimitReached, JobNotFound, RpaError, StoreError
from rasa_rpa.lifecycle import Planner, apply_event
from rasa_rpa.models import Job, JobEvent
from rasa_rpa.questions import Question
from rasa_rpa.stores.base import EventResult, Guard
from rasa_rpa.stores.checkpointer import FALLBACK_PAGES, WalCheckpointer
from rasa_rpa.stores.common import UNFINISHED, SqlStore, plan_batch, storable
from rasa_rpa.stores.questions import (
    SELECT_QUESTIONS,
    QuestionFolder,
    QuestionReads,
    question_from_row,
    question_keys,
)
from rasa_rpa.stores.sqlite_files import SQLiteFiles
from rasa_rpa.stores.sqlite_outbox import SQLiteOutbox
from rasa_rpa.stores.sqlite_schema import (
    INSERT_EVENT,
    INSERT_JOB,
    INSERT_OUTBOX,
    JOB_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    UNFINISHED_OF,
    UPDATABLE,
    job_from_row,
    job_row,
    job_updates,
)

__all__ = ["SCHEMA_VERSION", "SQLiteJobStore"]


class SQLiteJobStore(SQLiteOutbox, SQLiteFiles, QuestionReads, SqlStore):
    """A :class:`~rasa_rpa.stores.base.JobStore` in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        # Short on purpose: waiting for another process's lock blocks this
        # worker's event loop, so give up fast, answer 503 and let robots retry.
        self._busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None
        #: What an event does to a job; the runtime adds bot-specific policy.
        self.planner: Planner = apply_event
        #: One connection: one transaction at a time (batches make it cheap).
        self.write_concurrency = 1
        self._checkpointer = WalCheckpointer(self.path)

    @classmethod
    def from_url(cls, url: str, base_dir: Path) -> SQLiteJobStore:
        """``sqlite:///relative.db``, ``sqlite:////abs.db``, ``?synchronous=FULL``."""
        parsed = urlparse(url)
        raw = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        path = Path(raw)
        if not path.is_absolute():
            path = base_dir / path
        query = parse_qs(parsed.query)
        sync = query.get("synchronous", ["NORMAL"])[0]
        busy = float(query.get("busy_timeout", ["1.0"])[0])
        return cls(path, synchronous=sync, busy_timeout=busy)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._busy_timeout
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
            self._db = db
            self._migrate(db)
            self._checkpointer.start()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def close(self) -> None:
        self._checkpointer.stop()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA busy_timeout = 10000")  # start-up may wait for a peer
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema {current}, newer than this rasa-rpa "
                    f"({SCHEMA_VERSION}); upgrade rasa-rpa"
                )
            for script in MIGRATIONS[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            self._commit(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    # -- jobs ---------------------------------------------------------------

    async def create_job(self, job: Job, *, max_unfinished: int | None = None) -> None:
        if max_unfinished is None:
            with self._errors():
                self.db.execute(INSERT_JOB, job_row(job))
            return
        # The write lock comes before the count (see _write), so a start in
        # another process cannot count the same jobs and insert too.
        with self._write() as db:
            key = (job.conversation_id, job.automation)
            rows = db.execute(UNFINISHED_OF, key).fetchall()
            if len(rows) < max_unfinished:
                db.execute(INSERT_JOB, job_row(job))
        if len(rows) >= max_unfinished:
            running = [job_from_row(row) for row in rows]
            raise JobLimitReached(job.automation, max_unfinished, running)

    async def get_job(self, job_id: str) -> Job:
        with self._errors():
            row = self.db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    async def jobs_with_id_prefix(self, prefix: str, *, limit: int = 10) -> list[Job]:
        with self._errors():
            rows = self.db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id >= ? AND id < ? "
                "ORDER BY created_at DESC LIMIT ?",
                (prefix, prefix + "g", limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    async def update_job(self, job_id: str, **fields: Any) -> Job:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} directly")
        if fields:
            sets = ", ".join(f"{name} = ?" for name in fields)
            with self._errors():
                self.db.execute(
                    f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ?",
                    (*fields.values(), time.time(), job_id),
                )
        return await self.get_job(job_id)

    async def find_by_ref(self, provider: str, provider_ref: str) -> Job | None:
        with self._errors():
            row = self.db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs"
                " WHERE provider = ? AND provider_ref = ?",
                (provider, provider_ref),
            ).fetchone()
        return None if row is None else job_from_row(row)

    async def list_jobs(
        self,
        *,
        conversation_id: str | None = None,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Job]:
        where, args = ["1"], []
        if conversation_id is not None:
            where, args = ["conversation_id = ?"], [conversation_id]
        if unfinished:
            where.append(UNFINISHED)
        with self._errors():
            rows = self.db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    async def unfinished_jobs(self, *, limit: int = 500) -> list[Job]:
        with self._errors():
            rows = self.db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {UNFINISHED}"
                " ORDER BY deadline_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    # -- events -------------------------------------------------------------

    async def record_events(
        self, items: list[tuple[JobEvent, Guard | None]]
    ) -> list[EventResult | RpaError]:
        db = self.db
        events = [event for event, _ in items if storable(event)]
        with self._write():
            stored = self._jobs_by_id(db, {event.job_id for event in events})
            questions = QuestionFolder(self._questions_of(db, events))
            recorded = self._recorded(db, events)
            plan = plan_batch(items, stored, recorded, self.planner, questions.fold)
            db.executemany(INSERT_EVENT, plan.events)
            for update, rows in job_updates(stored, plan.jobs).items():
                db.executemany(update, rows)
            for statement, rows in questions.changes.statements():
                db.executemany(statement, rows)
            db.executemany(INSERT_OUTBOX, plan.outbox)
        return plan.results

    @staticmethod
    def _questions_of(
        db: sqlite3.Connection, events: list[JobEvent]
    ) -> dict[tuple[str, str], Question]:
        """The rows of the questions the batch's answers and expiries name."""
        found: dict[tuple[str, str], Question] = {}
        for key in question_keys(events):
            row = db.execute(
                f"{SELECT_QUESTIONS} WHERE q.job_id = ? AND q.question_id = ?", key
            ).fetchone()
            if row is not None:
                found[key] = question_from_row(row)
        return found

    async def _question_rows(self, sql: str, *args: Any) -> list[Any]:
        with self._errors():
            return self.db.execute(sql, args).fetchall()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the write lock first (IMMEDIATE).

        What it reads then cannot change under it before it commits, in this
        process or another; and a busy database fails at BEGIN, not halfway.
        """
        db = self.db
        with self._errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._commit(db)

    def _commit(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT (full disk, I/O error) leaves the transaction
            # open; roll it back or every later BEGIN fails too.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _jobs_by_id(db: sqlite3.Connection, ids: set[str]) -> dict[str, Job]:
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", tuple(ids)
        )
        return {row["id"]: job_from_row(row) for row in rows}

    @staticmethod
    def _recorded(
        db: sqlite3.Connection, events: list[JobEvent]
    ) -> set[tuple[str, str]]:
        # A join on VALUES, not a row-value IN: SQLite only uses the unique
        # index for the join (checked with EXPLAIN QUERY PLAN).
        if not events:
            return set()
        values = ",".join("(?,?)" for _ in events)
        rows = db.execute(
            f"SELECT e.job_id, e.event_id FROM (VALUES {values}) AS v"
            " JOIN job_events e ON e.job_id = v.column1 AND e.event_id = v.column2",
            [text for event in events for text in (event.job_id, event.id)],
        )
        return {(row[0], row[1]) for row in rows}

    async def job_events(self, job_id: str) -> list[dict[str, Any]]:
        with self._errors():
            rows = self.db.execute(
                "SELECT event_id, type, data, source, applied, received_at"
                " FROM job_events WHERE job_id = ? ORDER BY seq",
                (job_id,),
            ).fetchall()
        return [
            {
                "id": r["event_id"],
                "type": r["type"],
                "data": json.loads(r["data"]),
                "source": r["source"],
                "applied": bool(r["applied"]),
                "received_at": r["received_at"],
            }
            for r in rows
        ]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn sqlite3 errors into StoreError so routes can answer 503.

        So is text the driver cannot encode (a lone surrogate in a
        conversation id, say): the callers (actions, routes) answer a
        StoreError in plain words, where a bare UnicodeEncodeError was a 500.
        """
        try:
            yield
        except (sqlite3.Error, UnicodeError) as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc
