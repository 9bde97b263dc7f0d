"""The SQLite store's outbox: claiming due messages and settling them.

A mixin of :class:`~rasa_rpa.stores.sqlite.SQLiteJobStore`: the messages are
queued by ``record_events`` in the same transaction as their event (the
store's own module); what the delivery dispatcher and the admin API do with
them afterwards is here. Every statement works on the store's one
connection, so these share its transactions and its error handling.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from rasa_rpa.models import OutboxMessage
from rasa_rpa.stores.common import (
    OUTBOX_STATUS,
    PROGRESS_INTENT,
    SUPERSEDED,
    outbox_condition,
)
from rasa_rpa.stores.sqlite_schema import (
    CLAIM_HEADS,
    MESSAGE_COLUMNS,
    SUPERSEDE_PROGRESS,
    message_from_row,
)

__all__ = ["SQLiteOutbox"]


def _seq(message: OutboxMessage) -> int:
    return message.seq or 0


class SQLiteOutbox:
    """Claims, settles, replays and discards outbox messages on the one connection.

    A claim is a write transaction of its own (``BEGIN IMMEDIATE``), so the
    heads it picks cannot be claimed by another process before it commits.
    """

    if TYPE_CHECKING:  # SQLiteJobStore defines them

        @property
        def db(self) -> sqlite3.Connection: ...

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _errors(self) -> AbstractContextManager[None]: ...

    async def claim_due(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        coalesce_progress: bool = False,
    ) -> list[OutboxMessage]:
        db = self.db
        with self._write():
            if coalesce_progress:
                db.execute(
                    SUPERSEDE_PROGRESS,
                    {"now": now, "name": PROGRESS_INTENT, "note": SUPERSEDED},
                )
            rows = db.execute(
                CLAIM_HEADS, {"now": now, "limit": limit, "until": now + lease}
            ).fetchall()
        # RETURNING hands rows out in no promised order; claims go oldest first.
        return sorted(map(message_from_row, rows), key=_seq)

    async def mark_delivered(self, seq: int, now: float) -> None:
        with self._errors():
            self.db.execute(
                "UPDATE outbox SET delivered_at = ?, lease_until = NULL,"
                " in_doubt = 0,"
                " attempts = attempts + 1 WHERE seq = ?",
                (now, seq),
            )

    async def mark_delivered_many(self, seqs: list[int], now: float) -> None:
        # One statement for the round, the seqs as one JSON array: half the
        # cost of an UPDATE per row, and no limit on bound parameters.
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET delivered_at = ?, lease_until = NULL,"
                " in_doubt = 0, attempts = attempts + 1"
                " WHERE seq IN (SELECT value FROM json_each(?))",
                (now, json.dumps(seqs)),
            )

    async def release(self, seqs: list[int], lease_until: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET lease_until = NULL"
                " WHERE seq IN (SELECT value FROM json_each(?)) AND lease_until = ?"
                " AND delivered_at IS NULL AND dead_at IS NULL",
                (json.dumps(seqs), lease_until),
            )

    async def mark_retry(
        self, seq: int, error: str, next_attempt_at: float, *, in_doubt: bool = False
    ) -> None:
        # OR, never a plain set: a failure says nothing about an earlier
        # attempt, so only a delivery settles a doubt.
        with self._errors():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ?, lease_until = NULL,"
                " in_doubt = (in_doubt OR ?) WHERE seq = ?",
                (error, next_attempt_at, in_doubt, seq),
            )

    async def mark_dead(self, seq: int, error: str, now: float) -> None:
        with self._errors():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                " dead_at = ?, lease_until = NULL WHERE seq = ?",
                (error, now, seq),
            )

    async def outbox_stats(self) -> dict[str, int]:
        with self._errors():
            row = self.db.execute(
                f"SELECT {', '.join(f'SUM({c})' for c in OUTBOX_STATUS.values())}"
                " FROM outbox"
            ).fetchone()
        return {status: row[n] or 0 for n, status in enumerate(OUTBOX_STATUS)}

    async def list_outbox(
        self, *, status: str = "dead", job_id: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        where = outbox_condition(status)
        args: list[Any] = []
        if job_id is not None:
            where += " AND job_id = ?"
            args.append(job_id)
        with self._errors():
            rows = self.db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {where}"
                " ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [message_from_row(r) for r in rows]

    async def replay(self, seq: int, now: float) -> bool:
        with self._errors():
            cursor = self.db.execute(
                # created_at too: a replay gets delivery.max_age afresh, or a
                # message that died of old age would die again unsent.
                "UPDATE outbox SET dead_at = NULL, delivered_at = NULL,"
                " lease_until = NULL, next_attempt_at = ?1, created_at = ?1,"
                " attempts = 0"
                " WHERE seq = ?2 AND (dead_at IS NOT NULL OR delivered_at IS NOT NULL)"
                " AND discarded_at IS NULL",
                (now, seq),
            )
        return cursor.rowcount == 1

    async def discard(self, seq: int, now: float) -> bool:
        with self._errors():
            cursor = self.db.execute(
                "UPDATE outbox SET discarded_at = ?"
                " WHERE seq = ? AND dead_at IS NOT NULL AND discarded_at IS NULL",
                (now, seq),
            )
        return cursor.rowcount == 1
