"""Group commit: events that arrive together are written in one transaction.

Each caller of :meth:`GroupCommit.write` still gets its answer only after the
commit that holds its event, so acknowledged still means durable, at a
fraction of the cost of one transaction per event. How many batches are
written at once is the store's ``write_concurrency`` (one for SQLite's
single connection, two for PostgreSQL).

Kept apart from :mod:`rasa_rpa.service`, which decides *what* an event does
(scrubbing, holding a job's end while it is being stopped, what follows a
change); this decides only *how* events reach the store, for any
:class:`~rasa_rpa.stores.base.JobStore`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rasa_rpa.errors import RpaError, StoreError
from rasa_rpa.models import JobEvent
from rasa_rpa.stores.base import EventResult, Guard, JobStore

__all__ = ["MAX_BATCH", "GroupCommit"]

#: Most events written in one transaction.
MAX_BATCH = 256


class GroupCommit:
    """Batches concurrent writes of events into as few transactions as it can."""

    def __init__(
        self,
        store: JobStore,
        on_result: Callable[[JobEvent, EventResult], None],
    ) -> None:
        """Write to ``store``; call ``on_result`` for each event it recorded.

        ``on_result`` runs after the commit and before the caller is answered.
        """
        self.store = store
        self._on_result = on_result
        self._pending: list[
            tuple[JobEvent, Guard | None, asyncio.Future[EventResult | RpaError]]
        ] = []
        #: Batches being written; as many at once as the store can take.
        self._flushers: set[asyncio.Task[None]] = set()

    async def write(self, event: JobEvent, guard: Guard | None = None) -> EventResult:
        """Record ``event`` with the next batch; its refusal is raised."""
        future: asyncio.Future[EventResult | RpaError] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append((event, guard, future))
        # A finished flusher leaves the set only in its done callback, a step
        # later: count the running ones, or this event could wait forever.
        running = sum(1 for flusher in self._flushers if not flusher.done())
        if running < self.store.write_concurrency:
            flusher = asyncio.create_task(self._flush())
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        result = await future
        if isinstance(result, RpaError):
            raise result
        return result

    async def _flush(self) -> None:
        try:
            await self._flush_batches()
        finally:
            # Cancelled (shutdown) or broken: nobody may wait forever.
            for _, _, future in self._pending:
                if not future.done():
                    future.set_exception(StoreError("the job service stopped"))
            self._pending.clear()

    async def _flush_batches(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            try:
                results = await self.store.record_events([(e, g) for e, g, _ in batch])
            except BaseException as exc:  # the store failed: every caller hears it
                failure = exc if isinstance(exc, Exception) else StoreError("stopped")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (event, _, future), result in zip(batch, results, strict=True):
                if isinstance(result, EventResult):
                    self._on_result(event, result)
                if not future.done():
                    future.set_result(result)
