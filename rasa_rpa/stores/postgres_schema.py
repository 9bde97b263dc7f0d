"""The PostgreSQL store's schema, its statements and the row <-> model mapping.

Kept apart from :mod:`rasa_rpa.stores.postgres` so the store reads as what it
does (transactions, locks, claims) rather than as SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rasa_rpa.models import Job, JobState, OutboxMessage
from rasa_rpa.stores.common import OUTBOX_STATUS, UNFINISHED, UPDATABLE, dump

__all__ = [
    "CLAIM",
    "DISCARD",
    "INSERT_JOB",
    "JOB_COLUMNS",
    "JOB_FIELDS",
    "JOB_LIMIT_LOCK",
    "JOB_LIMIT_LOCK_CLASS",
    "MARK_DEAD",
    "MARK_DELIVERED",
    "MARK_RETRY",
    "MESSAGE_COLUMNS",
    "MIGRATIONS",
    "OUTBOX_STATUS",
    "RELEASE",
    "REPLAY",
    "SCHEMA_VERSION",
    "SUPERSEDE_PROGRESS",
    "UNFINISHED_OF",
    "UPDATABLE",
    "dump",
    "job_from_row",
    "job_row",
    "message_from_row",
]

MIGRATIONS = [
    # 1: jobs, the event log and the outbox. ``jobs.seq`` stands in for
    # SQLite's implicit rowid: the tie-break between jobs created at once.
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        automation TEXT NOT NULL, provider TEXT NOT NULL,
        conversation_id TEXT NOT NULL, state TEXT NOT NULL, output_channel TEXT,
        inputs TEXT NOT NULL, outputs TEXT NOT NULL, progress DOUBLE PRECISION,
        message TEXT, error TEXT, provider_ref TEXT,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION,
        deadline_at DOUBLE PRECISION
    );
    CREATE INDEX jobs_by_conversation ON jobs (conversation_id, created_at);
    CREATE INDEX jobs_unfinished ON jobs (deadline_at NULLS FIRST)
        WHERE state IN ('pending', 'running');
    CREATE TABLE job_events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        event_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
        source TEXT NOT NULL, applied BOOLEAN NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        UNIQUE (job_id, event_id)
    );
    CREATE TABLE outbox (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        conversation_id TEXT NOT NULL, job_id TEXT NOT NULL, kind TEXT NOT NULL,
        payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        lease_until DOUBLE PRECISION, last_error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        delivered_at DOUBLE PRECISION, dead_at DOUBLE PRECISION
    );
    CREATE INDEX outbox_pending ON outbox (conversation_id, seq)
        WHERE delivered_at IS NULL AND dead_at IS NULL;
    """,
    # 2: vendor webhooks name jobs by the vendor's id.
    """
    CREATE INDEX jobs_by_provider_ref ON jobs (provider, provider_ref);
    """,
    # 3: doubt ("Rasa may already have it") as a flag of its own. It used to
    # ride on the lease, which the next failure cleared; pending rows with a
    # lease were in doubt under that encoding (or are in flight: checking the
    # tracker once more for those costs a read, never a duplicate).
    """
    ALTER TABLE outbox ADD COLUMN in_doubt BOOLEAN NOT NULL DEFAULT false;
    UPDATE outbox SET in_doubt = true
        WHERE lease_until IS NOT NULL AND delivered_at IS NULL AND dead_at IS NULL;
    """,
    # 4: an operator can set a dead message aside for good (``jobs discard``);
    # it keeps its dead_at, so it stays out of every pending query.
    """
    ALTER TABLE outbox ADD COLUMN discarded_at DOUBLE PRECISION;
    """,
    # 5: questions robots ask in the chat, and their answers
    # (rasa_rpa.questions). Open ones are found by conversation (the status
    # answer, the answering action) and by expiry (the reconciler). IF NOT
    # EXISTS: self-contained, so it can be renumbered among other migrations.
    """
    CREATE TABLE IF NOT EXISTS questions (
        job_id TEXT NOT NULL REFERENCES jobs (id),
        question_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        text TEXT NOT NULL, choices TEXT NOT NULL, free_text BOOLEAN NOT NULL,
        asked_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        answer TEXT, answered_at DOUBLE PRECISION, expired_at DOUBLE PRECISION,
        PRIMARY KEY (job_id, question_id)
    );
    CREATE INDEX IF NOT EXISTS questions_by_conversation
        ON questions (conversation_id, question_id);
    CREATE INDEX IF NOT EXISTS questions_open ON questions (expires_at)
        WHERE answer IS NULL AND expired_at IS NULL;
    """,
    # 6: files robots send, in chunks (see postgres_files), and the indexes
    # retention prunes by. ``stored_at`` stays NULL while an upload is on its
    # way; an upload id is unique per job once stored.
    """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        upload_id TEXT NOT NULL, name TEXT NOT NULL, title TEXT NOT NULL,
        content_type TEXT NOT NULL, size BIGINT NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL DEFAULT '',
        created_at DOUBLE PRECISION NOT NULL, stored_at DOUBLE PRECISION
    );
    CREATE INDEX files_by_job ON files (job_id);
    CREATE UNIQUE INDEX files_by_upload ON files (job_id, upload_id)
        WHERE stored_at IS NOT NULL;
    CREATE INDEX files_by_age ON files (created_at);
    CREATE TABLE file_chunks (
        file_id TEXT NOT NULL REFERENCES files (id),
        n INTEGER NOT NULL, data BYTEA NOT NULL,
        PRIMARY KEY (file_id, n)
    );
    CREATE INDEX job_events_by_time ON job_events (received_at);
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX outbox_by_job ON outbox (job_id);
    CREATE INDEX outbox_delivered ON outbox (delivered_at)
        WHERE delivered_at IS NOT NULL;
    CREATE INDEX outbox_discarded ON outbox (discarded_at)
        WHERE discarded_at IS NOT NULL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
JOB_FIELDS = [
    "id", "automation", "provider", "conversation_id", "state", "output_channel",
    "inputs", "outputs", "progress", "message", "error", "provider_ref",
    "created_at", "updated_at", "started_at", "finished_at", "deadline_at",
]  # fmt: skip
JOB_COLUMNS = ", ".join(JOB_FIELDS)
INSERT_JOB = (
    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES "
    f"({', '.join(f'${n}' for n in range(1, len(JOB_FIELDS) + 1))})"
    " RETURNING xmin::text"  # the row version (see postgres_record)
)
#: First key of the advisory lock a create_job with a limit takes.
JOB_LIMIT_LOCK_CLASS = 0x524C
# Keyed by conversation and automation: another pair only waits on a hash
# collision. Taken for the transaction, so it is released at commit.
JOB_LIMIT_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))"
#: A conversation's unfinished jobs of one automation, newest first.
UNFINISHED_OF = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE conversation_id = $1 AND automation = $2"
    f" AND {UNFINISHED} ORDER BY created_at DESC, seq DESC"
)
MESSAGE_COLUMNS = (
    "seq, conversation_id, job_id, kind, payload, attempts, next_attempt_at,"
    " last_error, created_at, in_doubt"
)
# The head of each conversation, if it is due and not leased, locked so that a
# concurrent claimer skips it. The outer WHERE repeats the pending test: after
# waiting for a row lock, PostgreSQL re-checks the locked row's conditions but
# not the CTE, so a head delivered meanwhile is dropped instead of re-sent.
_PENDING = "delivered_at IS NULL AND dead_at IS NULL"
# The conversations with a pending message, hopping from one to the next
# along outbox_pending (a loose index scan): the cost follows the
# conversations waiting, not the backlog. Shared by the claim and coalescing.
_WAITING = f"""WITH RECURSIVE waiting AS (
    (SELECT conversation_id FROM outbox WHERE {_PENDING}
     ORDER BY conversation_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT o.conversation_id FROM outbox o
        WHERE o.{_PENDING.replace(" AND ", " AND o.")}
          AND o.conversation_id > w.conversation_id
        ORDER BY o.conversation_id LIMIT 1
    ) FROM waiting w WHERE w.conversation_id IS NOT NULL
)"""
CLAIM = f"""
{_WAITING}, heads AS (
    SELECT (
        SELECT o.seq FROM outbox o
        WHERE o.{_PENDING.replace(" AND ", " AND o.")}
          AND o.conversation_id = w.conversation_id
        ORDER BY o.seq LIMIT 1
    ) AS seq FROM waiting w WHERE w.conversation_id IS NOT NULL
), due AS (
    -- In doubt: an attempt failed without an answer, or a claimer's lease
    -- ran out before it reported. Written down here, since the new lease
    -- hides an expired one and this claimer may fail in turn.
    SELECT o.seq, o.in_doubt OR o.lease_until IS NOT NULL AS in_doubt
    FROM outbox o JOIN heads h ON o.seq = h.seq
    WHERE o.delivered_at IS NULL AND o.dead_at IS NULL
      AND o.next_attempt_at <= $1 AND (o.lease_until IS NULL OR o.lease_until < $1)
    ORDER BY o.seq LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET lease_until = $3, in_doubt = due.in_doubt
FROM due WHERE outbox.seq = due.seq
RETURNING {", ".join(f"outbox.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))}
"""
_PROGRESS = "kind = 'intent' AND payload::jsonb ->> 'name' = $2"
# Progress coalescing, run just before CLAIM: where a conversation's due head
# is a progress update and a newer one of the same job waits behind it, every
# older pending progress update of that job in that conversation is set
# aside ($1 now, $2 the progress intent, $3 the note), so the newest is the one
# sent. A row another claimer leased meanwhile fails the re-checked lease test
# and stays its claimer's.
SUPERSEDE_PROGRESS = f"""
{_WAITING}, stale AS MATERIALIZED (
    -- Each due, unleased head that is a progress update, with the newest
    -- pending progress update of its job in its conversation. MATERIALIZED
    -- and index-driven throughout: a nested-loop plan over the whole outbox
    -- (estimates go wrong on a young table) took seconds.
    SELECT o.conversation_id, o.job_id, (
        SELECT n.seq FROM outbox n
        WHERE n.{_PENDING.replace(" AND ", " AND n.")}
          AND n.conversation_id = o.conversation_id AND n.job_id = o.job_id
          AND n.{_PROGRESS.replace(" AND ", " AND n.")}
        ORDER BY n.seq DESC LIMIT 1
    ) AS newest
    FROM waiting w CROSS JOIN LATERAL (
        SELECT h.* FROM outbox h
        WHERE h.{_PENDING.replace(" AND ", " AND h.")}
          AND h.conversation_id = w.conversation_id
        ORDER BY h.seq LIMIT 1
    ) o
    WHERE w.conversation_id IS NOT NULL
      AND o.{_PROGRESS.replace(" AND ", " AND o.")} AND o.next_attempt_at <= $1
      AND (o.lease_until IS NULL OR o.lease_until < $1)
), doomed AS MATERIALIZED (
    SELECT d.seq FROM stale s CROSS JOIN LATERAL (
        SELECT o.seq FROM outbox o
        WHERE o.{_PENDING.replace(" AND ", " AND o.")}
          AND o.conversation_id = s.conversation_id AND o.seq < s.newest
          AND o.job_id = s.job_id AND o.{_PROGRESS.replace(" AND ", " AND o.")}
    ) d
)
UPDATE outbox SET delivered_at = $1, last_error = $3, lease_until = NULL
WHERE seq = ANY(ARRAY(SELECT seq FROM doomed))
  AND {_PENDING} AND (lease_until IS NULL OR lease_until < $1)
"""
MARK_DELIVERED = (
    "UPDATE outbox SET delivered_at = $2, lease_until = NULL, in_doubt = false,"
    " attempts = attempts + 1 WHERE seq = ANY($1::bigint[])"
)
# Claimed messages going back unsent; the lease they were given ($2) tells
# them from ones another claimer took after it ran out.
RELEASE = (
    "UPDATE outbox SET lease_until = NULL WHERE seq = ANY($1::bigint[])"
    " AND lease_until = $2 AND delivered_at IS NULL AND dead_at IS NULL"
)
# OR, never a plain set: a failure says nothing about an earlier attempt, so
# only a delivery settles a doubt.
MARK_RETRY = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = $3, lease_until = NULL, in_doubt = in_doubt OR $4"
    " WHERE seq = $1"
)
MARK_DEAD = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
    " dead_at = $3, lease_until = NULL WHERE seq = $1"
)
REPLAY = (
    "UPDATE outbox SET dead_at = NULL, delivered_at = NULL, lease_until = NULL,"
    # created_at too: a replay gets delivery.max_age afresh, or a message
    # that died of old age would die again unsent.
    " next_attempt_at = $2, created_at = $2, attempts = 0"
    " WHERE seq = $1 AND (dead_at IS NOT NULL OR delivered_at IS NOT NULL)"
    " AND discarded_at IS NULL"
)
DISCARD = (
    "UPDATE outbox SET discarded_at = $2"
    " WHERE seq = $1 AND dead_at IS NOT NULL AND discarded_at IS NULL"
)


def job_row(job: Job) -> tuple[Any, ...]:
    values = {name: getattr(job, name) for name in JOB_FIELDS}
    values["state"] = job.state.value
    values["inputs"] = dump(job.inputs)
    values["outputs"] = dump(job.outputs)
    return tuple(values.values())


def job_from_row(row: Mapping[str, Any]) -> Job:
    fields = dict(row)
    fields["state"] = JobState(row["state"])
    fields["inputs"] = json.loads(row["inputs"])
    fields["outputs"] = json.loads(row["outputs"])
    return Job(**fields)


def message_from_row(row: Mapping[str, Any]) -> OutboxMessage:
    return OutboxMessage(**{**dict(row), "payload": json.loads(row["payload"])})
