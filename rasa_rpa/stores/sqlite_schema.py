"""The SQLite store's schema and its row <-> model mapping.

Kept apart from :mod:`rasa_rpa.stores.sqlite` so the store reads as what it
does (transactions, claims, leases) rather than as SQL text.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rasa_rpa.models import Job, JobState, OutboxMessage
from rasa_rpa.stores.common import OUTBOX_STATUS, UNFINISHED, UPDATABLE, dump

__all__ = [
    "CLAIM_HEADS",
    "INSERT_EVENT",
    "INSERT_JOB",
    "INSERT_OUTBOX",
    "JOB_COLUMNS",
    "MESSAGE_COLUMNS",
    "MIGRATIONS",
    "OUTBOX_STATUS",
    "SCHEMA_VERSION",
    "SUPERSEDE_PROGRESS",
    "UNFINISHED_OF",
    "UPDATABLE",
    "dump",
    "job_from_row",
    "job_row",
    "job_updates",
    "message_from_row",
]

MIGRATIONS = [
    # 1: jobs, the event log and the outbox.
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        automation TEXT NOT NULL,
        provider TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        state TEXT NOT NULL,
        output_channel TEXT,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        progress REAL,
        message TEXT,
        error TEXT,
        provider_ref TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        deadline_at REAL
    );
    CREATE INDEX jobs_by_conversation ON jobs(conversation_id, created_at);
    CREATE INDEX jobs_unfinished ON jobs(deadline_at)
        WHERE state IN ('pending', 'running');
    CREATE TABLE job_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id),
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        source TEXT NOT NULL,
        applied INTEGER NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (job_id, event_id)
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        lease_until REAL,
        last_error TEXT,
        created_at REAL NOT NULL,
        delivered_at REAL,
        dead_at REAL
    );
    CREATE INDEX outbox_pending ON outbox(conversation_id, seq)
        WHERE delivered_at IS NULL AND dead_at IS NULL;
    """,
    # 2: vendor webhooks name jobs by the vendor's id.
    """
    CREATE INDEX jobs_by_provider_ref ON jobs(provider, provider_ref);
    """,
    # 3: doubt ("Rasa may already have it") as a flag of its own. It used to
    # ride on the lease, which the next failure cleared; pending rows with a
    # lease were in doubt under that encoding (or are in flight: checking the
    # tracker once more for those costs a read, never a duplicate).
    """
    ALTER TABLE outbox ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET in_doubt = 1
        WHERE lease_until IS NOT NULL AND delivered_at IS NULL AND dead_at IS NULL;
    """,
    # 4: an operator can set a dead message aside for good (``jobs discard``);
    # it keeps its dead_at, so it stays out of every pending query.
    """
    ALTER TABLE outbox ADD COLUMN discarded_at REAL;
    """,
    # 5: questions robots ask in the chat, and their answers
    # (rasa_rpa.questions). Open ones are found by conversation (the status
    # answer, the answering action) and by expiry (the reconciler). IF NOT
    # EXISTS: self-contained, so it can be renumbered among other migrations.
    """
    CREATE TABLE IF NOT EXISTS questions (
        job_id TEXT NOT NULL REFERENCES jobs(id),
        question_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        text TEXT NOT NULL,
        choices TEXT NOT NULL,
        free_text INTEGER NOT NULL,
        asked_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        answer TEXT,
        answered_at REAL,
        expired_at REAL,
        PRIMARY KEY (job_id, question_id)
    );
    CREATE INDEX IF NOT EXISTS questions_by_conversation
        ON questions(conversation_id, question_id);
    CREATE INDEX IF NOT EXISTS questions_open ON questions(expires_at)
        WHERE answer IS NULL AND expired_at IS NULL;
    """,
    # 6: files robots send, in chunks (see sqlite_files), and the indexes
    # retention prunes by. ``stored_at`` stays NULL while an upload is on its
    # way; an upload id is unique per job once stored.
    """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(id),
        upload_id TEXT NOT NULL,
        name TEXT NOT NULL,
        title TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        stored_at REAL
    );
    CREATE INDEX files_by_job ON files(job_id);
    CREATE UNIQUE INDEX files_by_upload ON files(job_id, upload_id)
        WHERE stored_at IS NOT NULL;
    CREATE INDEX files_by_age ON files(created_at);
    CREATE TABLE file_chunks (
        file_id TEXT NOT NULL REFERENCES files(id),
        n INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (file_id, n)
    ) WITHOUT ROWID;
    CREATE INDEX job_events_by_time ON job_events(received_at);
    CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX outbox_by_job ON outbox(job_id);
    CREATE INDEX outbox_delivered ON outbox(delivered_at)
        WHERE delivered_at IS NOT NULL;
    CREATE INDEX outbox_discarded ON outbox(discarded_at)
        WHERE discarded_at IS NOT NULL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
JOB_COLUMNS = (
    "id, automation, provider, conversation_id, state, output_channel, inputs, "
    "outputs, progress, message, error, provider_ref, created_at, updated_at, "
    "started_at, finished_at, deadline_at"
)
_JOB_FIELDS = [column.strip() for column in JOB_COLUMNS.split(",")]


def job_updates(
    before: dict[str, Job], after: dict[str, Job]
) -> dict[str, list[tuple[Any, ...]]]:
    """UPDATE statements (with their rows) setting only what changed.

    SQLite maintains every index on a column named in SET, changed or not:
    a progress event rewriting all seventeen columns also rewrote three
    index entries. Jobs that changed the same fields share a statement.
    """
    updates: dict[str, list[tuple[Any, ...]]] = {}
    for job_id, job in after.items():
        old = before[job_id]
        # Identity, not equality: evolve() keeps the very objects it did not
        # change, and 1 == 1.0 == True or reordered dicts must still be written.
        fields = [f for f in _JOB_FIELDS[1:] if getattr(job, f) is not getattr(old, f)]
        if not fields:
            continue
        sql = f"UPDATE jobs SET {', '.join(f'{f} = ?' for f in fields)} WHERE id = ?"
        updates.setdefault(sql, []).append((*(_column(job, f) for f in fields), job_id))
    return updates


def _column(job: Job, field: str) -> Any:
    value = getattr(job, field)
    if field == "state":
        return value.value
    if field in ("inputs", "outputs"):
        return dump(value)
    return value


INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({','.join('?' * 17)})"
#: A conversation's unfinished jobs of one automation, newest first.
UNFINISHED_OF = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE conversation_id = ? AND automation = ?"
    f" AND {UNFINISHED} ORDER BY created_at DESC, rowid DESC"
)
INSERT_EVENT = (
    "INSERT INTO job_events (job_id, event_id, type, data, source, applied,"
    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (conversation_id, job_id, kind, payload, created_at)"
    " VALUES (?, ?, ?, ?, ?)"
)

_PENDING = "delivered_at IS NULL AND dead_at IS NULL"
#: What an outbox message is read from, in message_from_row's order.
MESSAGE_COLUMNS = (
    "seq, conversation_id, job_id, kind, payload, attempts, next_attempt_at,"
    " last_error, created_at, in_doubt"
)
# Each conversation's oldest pending message, found by hopping from one
# conversation to the next along the outbox_pending index (a loose index
# scan): the cost grows with the conversations waiting, not with the messages
# queued behind them, which a GROUP BY over a 20,000-message backlog paid on
# every claim (1.5 ms against 0.06 ms).
_WAITING = f"""WITH RECURSIVE waiting(conversation_id) AS (
    SELECT MIN(conversation_id) FROM outbox WHERE {_PENDING}
    UNION ALL
    SELECT (
        SELECT MIN(conversation_id) FROM outbox
        WHERE {_PENDING} AND conversation_id > waiting.conversation_id
    ) FROM waiting WHERE waiting.conversation_id IS NOT NULL
)"""
CLAIM_HEADS = f"""
{_WAITING}, due AS (
    SELECT o.seq FROM waiting JOIN outbox o ON o.seq = (
        SELECT MIN(seq) FROM outbox
        WHERE {_PENDING} AND conversation_id = waiting.conversation_id
    )
    WHERE o.next_attempt_at <= :now
      AND (o.lease_until IS NULL OR o.lease_until < :now)
    ORDER BY o.seq LIMIT :limit
)
-- One statement claims and reads (a SELECT, then an UPDATE per row, cost
-- twice as much). SET sees the row as it was: a lease still on it ran out
-- before its claimer reported, so that claimer may have sent it and died.
-- The doubt is written down now, since the new lease hides the old one.
UPDATE outbox SET lease_until = :until, in_doubt = (in_doubt OR lease_until IS NOT NULL)
WHERE seq IN (SELECT seq FROM due)
RETURNING {MESSAGE_COLUMNS}
"""


def _progress(alias: str) -> str:
    return f"{alias}kind = 'intent' AND json_extract({alias}payload, '$.name') = :name"


# Progress coalescing, run just before CLAIM_HEADS in the claim's transaction:
# where a conversation's due head is a progress update and a newer one of the
# same job waits behind it, every older pending progress update of that job
# in that conversation is set aside, so the newest is the one sent. Only heads
# are looked at, so the cost follows the conversations waiting, as the claim's.
# INDEXED BY: left to itself SQLite walks outbox_by_job, every message the job
# ever had, delivered ones included, with a json_extract each (50 ms a claim
# once a job had sent 1,600 updates, against 0.2 ms).
SUPERSEDE_PROGRESS = f"""
{_WAITING}, stale AS MATERIALIZED (
    SELECT o.conversation_id, o.job_id, (
        SELECT MAX(n.seq) FROM outbox n INDEXED BY outbox_pending
        WHERE n.{_PENDING.replace(" AND ", " AND n.")}
          AND n.conversation_id = o.conversation_id AND n.job_id = o.job_id
          AND {_progress("n.")}
    ) AS newest
    FROM waiting JOIN outbox o ON o.seq = (
        SELECT MIN(seq) FROM outbox
        WHERE {_PENDING} AND conversation_id = waiting.conversation_id
    )
    WHERE {_progress("o.")} AND o.next_attempt_at <= :now
      AND (o.lease_until IS NULL OR o.lease_until < :now)
)
UPDATE outbox SET delivered_at = :now, last_error = :note, lease_until = NULL
WHERE seq IN (
    SELECT o.seq FROM stale s JOIN outbox o INDEXED BY outbox_pending
      ON o.conversation_id = s.conversation_id AND o.seq < s.newest
    WHERE o.{_PENDING.replace(" AND ", " AND o.")}
      AND o.job_id = s.job_id AND {_progress("o.")}
      AND (o.lease_until IS NULL OR o.lease_until < :now)
)
"""


def job_row(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.automation,
        job.provider,
        job.conversation_id,
        job.state.value,
        job.output_channel,
        dump(job.inputs),
        dump(job.outputs),
        job.progress,
        job.message,
        job.error,
        job.provider_ref,
        job.created_at,
        job.updated_at,
        job.started_at,
        job.finished_at,
        job.deadline_at,
    )


def job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        automation=row["automation"],
        provider=row["provider"],
        conversation_id=row["conversation_id"],
        state=JobState(row["state"]),
        output_channel=row["output_channel"],
        inputs=json.loads(row["inputs"]),
        outputs=json.loads(row["outputs"]),
        progress=row["progress"],
        message=row["message"],
        error=row["error"],
        provider_ref=row["provider_ref"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        deadline_at=row["deadline_at"],
    )


def message_from_row(row: sqlite3.Row) -> OutboxMessage:
    """The message from a row of :data:`MESSAGE_COLUMNS`, by position: a claim
    reads dozens at a time, and names cost a lookup each."""
    (
        seq,
        conversation_id,
        job_id,
        kind,
        payload,
        attempts,
        next_attempt_at,
        last_error,
        created_at,
        in_doubt,
    ) = row
    return OutboxMessage(
        conversation_id=conversation_id,
        job_id=job_id,
        kind=kind,
        payload=json.loads(payload),
        seq=seq,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
        created_at=created_at,
        in_doubt=bool(in_doubt),
    )
