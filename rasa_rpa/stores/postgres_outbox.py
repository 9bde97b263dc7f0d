"""The PostgreSQL store's outbox: claiming due messages and settling them.

A mixin of :class:`~rasa_rpa.stores.postgres.PostgresJobStore`: the messages
are queued by ``record_events`` in the same transaction as their event (the
store's own module); what the delivery dispatcher and the admin API do with
them afterwards is here. Each operation is one statement from
:mod:`rasa_rpa.stores.postgres_schema` run on the store's pool, so a claim's
row locks last that one statement (the lease does the rest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rasa_rpa.models import OutboxMessage
from rasa_rpa.stores.common import PROGRESS_INTENT, SUPERSEDED, outbox_condition
from rasa_rpa.stores.postgres_schema import (
    CLAIM,
    DISCARD,
    MARK_DEAD,
    MARK_DELIVERED,
    MARK_RETRY,
    MESSAGE_COLUMNS,
    OUTBOX_STATUS,
    RELEASE,
    REPLAY,
    SUPERSEDE_PROGRESS,
    message_from_row,
)

__all__ = ["PostgresOutbox"]


class PostgresOutbox:
    """Claims, settles, replays and discards outbox messages, one statement each."""

    if TYPE_CHECKING:  # PostgresJobStore defines it, with its error mapping

        async def _call(self, method: str, query: str, *args: Any) -> Any: ...

    async def claim_due(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        coalesce_progress: bool = False,
    ) -> list[OutboxMessage]:
        # Two statements, not one: a data-modifying CTE's changes are not
        # visible to the rest of its statement, so the claim would still see
        # the superseded heads as pending.
        if coalesce_progress:
            await self._call(
                "execute", SUPERSEDE_PROGRESS, now, PROGRESS_INTENT, SUPERSEDED
            )
        rows = await self._call("fetch", CLAIM, now, limit, now + lease)
        return sorted(map(message_from_row, rows), key=lambda m: m.seq or 0)

    async def mark_delivered(self, seq: int, now: float) -> None:
        await self._call("execute", MARK_DELIVERED, [seq], now)

    async def mark_delivered_many(self, seqs: list[int], now: float) -> None:
        await self._call("execute", MARK_DELIVERED, seqs, now)

    async def release(self, seqs: list[int], lease_until: float) -> None:
        await self._call("execute", RELEASE, seqs, lease_until)

    async def mark_retry(
        self, seq: int, error: str, next_attempt_at: float, *, in_doubt: bool = False
    ) -> None:
        await self._call("execute", MARK_RETRY, seq, error, next_attempt_at, in_doubt)

    async def mark_dead(self, seq: int, error: str, now: float) -> None:
        await self._call("execute", MARK_DEAD, seq, error, now)

    async def outbox_stats(self) -> dict[str, int]:
        counts = ", ".join(
            f"COUNT(*) FILTER (WHERE {OUTBOX_STATUS[s]})" for s in OUTBOX_STATUS
        )
        row = await self._call("fetchrow", f"SELECT {counts} FROM outbox")
        return {status: int(row[n]) for n, status in enumerate(OUTBOX_STATUS)}

    async def list_outbox(
        self, *, status: str = "dead", job_id: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        where = outbox_condition(status)
        args: list[Any] = [limit]
        if job_id is not None:
            where += " AND job_id = $2"
            args.append(job_id)
        query = (
            f"SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {where}"
            " ORDER BY seq DESC LIMIT $1"
        )
        return [message_from_row(r) for r in await self._call("fetch", query, *args)]

    async def replay(self, seq: int, now: float) -> bool:
        return str(await self._call("execute", REPLAY, seq, now)) == "UPDATE 1"

    async def discard(self, seq: int, now: float) -> bool:
        return str(await self._call("execute", DISCARD, seq, now)) == "UPDATE 1"
