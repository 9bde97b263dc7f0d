"""One drain of the outbox: claim, send and settle until nothing is due.

The dispatcher (:mod:`rasa_rpa.delivery`) runs one whenever messages may be
waiting; how a message is sent and how a failure is recorded are its own.
What is here is the flow, which bounds the delivery rate to an instant Rasa:

* Up to ``concurrency`` workers send the claimed messages, oldest first
  (each claim starts more workers if it found more than those running can
  take). A worker that finds none left records the deliveries so far (one
  commit for many messages) and claims again, while the other workers'
  calls are still in flight: Rasa is not left idle while the store works,
  and a claim's walk over the waiting conversations and the recording
  commit are paid once for dozens of messages, not once for
  ``concurrency`` of them.
* Order per conversation: only a conversation's oldest undelivered message
  is ever claimed, and a message in flight or delivered but not yet recorded
  keeps its lease, so a claim passes its conversation over until it is
  recorded.
* Leases stay short however many messages a claim takes: a message not
  started within :data:`SLOT_WAIT` of its claim goes back unsent (and is
  claimed again with a fresh lease), and deliveries are recorded at the
  latest once the oldest of their claims is that old. A lease of
  ``SLOT_WAIT + send_time + 5`` seconds then covers the wait, the send and
  its record, so no other claimer takes a message while it is being sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from rasa_rpa.models import OutboxMessage
from rasa_rpa.stores.base import JobStore

__all__ = ["CLAIM_PER_SLOT", "SLOT_WAIT", "Drain"]

log = logging.getLogger(__name__)

#: Messages claimed at most per delivery slot (``delivery.concurrency``).
CLAIM_PER_SLOT = 8
#: Seconds a claimed message may wait for a slot before it goes back unsent.
SLOT_WAIT = 5.0
#: Seconds a lease leaves after the worst send, to record its outcome.
RECORD_TIME = 5.0
#: Seconds a stopping drain may spend giving back what it never started.
HAND_BACK_TIME = 2.0


class Drain:
    """Claims, sends (through ``deliver``) and settles; used once.

    ``deliver(message)`` sends one message and records a failure itself
    (retry, dead); it returns True when Rasa has the message, which this
    then records with the others. ``send_time`` bounds one ``deliver``.
    """

    def __init__(
        self,
        store: JobStore,
        deliver: Callable[[OutboxMessage], Awaitable[bool]],
        *,
        concurrency: int,
        send_time: float,
        coalesce_progress: bool,
    ) -> None:
        self.store = store
        self.deliver = deliver
        self.concurrency = concurrency
        self.capacity = concurrency * CLAIM_PER_SLOT
        self.lease = SLOT_WAIT + send_time + RECORD_TIME
        self.coalesce_progress = coalesce_progress
        #: Claimed, not yet taken by a worker: (message, time of its claim).
        self.waiting: collections.deque[tuple[OutboxMessage, float]] = (
            collections.deque()
        )
        #: Delivered, not yet recorded, and the claim time of the oldest.
        self.delivered: list[int] = []
        self.oldest_delivered = math.inf
        #: Claimed and never sent, by the lease their claim gave them.
        self.unsent: dict[float, list[int]] = {}
        self.in_flight = 0
        #: Messages done with (sent, failed, or handed back).
        self.done = 0
        #: ``done`` when a claim last found nothing: until it grows, no
        #: conversation can have a new head to claim.
        self.done_at_empty_claim = -1
        self.stopped = False
        self.claiming = asyncio.Lock()
        self.workers: set[asyncio.Task[None]] = set()
        #: What stopped the drain, raised once every worker is done.
        self.failure: Exception | None = None

    async def run(self) -> int:
        """Drain; return how many messages were done with."""
        if not await self._claim():
            return 0
        try:
            while self.workers:
                await asyncio.wait(list(self.workers))
        except BaseException:  # cancelled: the workers stop with the drain
            workers = list(self.workers)
            for task in workers:
                task.cancel()
            # The workers hand back what they never started; give it back to
            # the store now, or it waits out its lease (a restart would leave
            # those conversations silent that long, then in doubt).
            if workers:
                await asyncio.wait(workers)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._settle(), HAND_BACK_TIME)
            raise
        await self._settle()
        if self.failure is not None:
            raise self.failure
        return self.done

    def _staff(self) -> None:
        """Start workers for what was claimed, up to ``concurrency`` in all.

        After each claim, not once per drain: one that began with a single
        message must not send what arrives meanwhile one at a time.
        """
        for _ in range(min(self.concurrency - len(self.workers), len(self.waiting))):
            task = asyncio.create_task(self._worker())
            self.workers.add(task)
            task.add_done_callback(self.workers.discard)

    async def _worker(self) -> None:
        try:
            while self.waiting or await self._claim():
                if not self.waiting:
                    continue  # another worker took the last one first
                message, claimed_at = self.waiting.popleft()
                if time.time() > claimed_at + SLOT_WAIT:
                    self._hand_back(message, claimed_at)
                    continue
                self.in_flight += 1
                try:
                    delivered = await self.deliver(message)
                finally:
                    self.in_flight -= 1
                self.done += 1
                if delivered:
                    self.delivered.append(message.seq or 0)
                    self.oldest_delivered = min(self.oldest_delivered, claimed_at)
                if time.time() > self.oldest_delivered + SLOT_WAIT:
                    await self._settle()  # before those leases run out
        except BaseException as exc:
            # The drain stops: what no worker took goes back.
            self.stopped = True
            while self.waiting:
                self._hand_back(*self.waiting.popleft())
            if not isinstance(exc, Exception):
                raise  # cancelled
            self.failure = self.failure or exc

    def _hand_back(self, message: OutboxMessage, claimed_at: float) -> None:
        self.unsent.setdefault(claimed_at + self.lease, []).append(message.seq or 0)
        self.done += 1

    async def _claim(self) -> bool:
        """Settle, then claim more; False when nothing more is due."""
        async with self.claiming:
            if self.waiting:  # another worker claimed meanwhile
                return True
            if self.stopped or self.done == self.done_at_empty_claim:
                return False
            done = self.done
            await self._settle()
            now = time.time()
            due = await self.store.claim_due(
                now,
                limit=self.capacity - self.in_flight,
                lease=self.lease,
                coalesce_progress=self.coalesce_progress,
            )
            if due and time.time() > now + SLOT_WAIT:
                # Too slow to start any of them within its lease: give them
                # back and end the drain, so the dispatcher waits its poll
                # instead of claiming and releasing in a loop.
                log.warning(
                    "outbox: a claim took %.1f s (over %.0f s); sending nothing"
                    " until the store answers faster",
                    time.time() - now,
                    SLOT_WAIT,
                )
                self.stopped = True
                await self.store.release([m.seq or 0 for m in due], now + self.lease)
                return False
            self.waiting.extend((message, now) for message in due)
            if not due:
                self.done_at_empty_claim = done
            self._staff()
            return bool(due)

    async def _settle(self) -> None:
        """Record the deliveries (one commit for all), hand back the unsent."""
        delivered, self.delivered = self.delivered, []
        self.oldest_delivered = math.inf
        unsent, self.unsent = self.unsent, {}
        if delivered:
            # Should the process die before this, the leases run out and the
            # next claimer checks Rasa's tracker before sending again.
            await self.store.mark_delivered_many(delivered, time.time())
        for lease_until, seqs in unsent.items():
            await self.store.release(seqs, lease_until)
