"""One drain of the outbox (rasa_rpa.drain), with a fake ``deliver`` on a real
SQLite store: order per conversation, claims shared by many messages, and
leases that cover every send however long a claimed message waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rasa_rpa import drain as drain_module
from rasa_rpa.drain import SLOT_WAIT, Drain
from rasa_rpa.models import EventType, Job, JobEvent, OutboxMessage
from rasa_rpa.stores.sqlite import SQLiteJobStore
from tests.waiting import async_wait_until


class Clock:
    """Stands in for ``time`` in rasa_rpa.drain: the tests move it on."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(drain_module, "time", fake)
    return fake


@pytest.fixture
async def store(tmp_path: Any) -> Any:
    opened = SQLiteJobStore(tmp_path / "jobs.db")
    await opened.open()
    yield opened
    await opened.close()


async def queue(store: SQLiteJobStore, conversation: str, count: int = 1) -> None:
    job_id = f"job-{conversation}"
    await store.create_job(
        Job(id=job_id, automation="a", provider="p", conversation_id=conversation)
    )
    for n in range(count):
        await store.record_event(
            JobEvent(f"{job_id}-{n}", job_id, EventType.PROGRESS, {"progress": n})
        )


def claims_of(store: SQLiteJobStore) -> list[list[OutboxMessage]]:
    """Record what each claim hands out."""
    made: list[list[OutboxMessage]] = []
    claim = store.claim_due

    async def counting(*args: Any, **kwargs: Any) -> list[OutboxMessage]:
        due = await claim(*args, **kwargs)
        made.append(due)
        return due

    store.claim_due = counting  # type: ignore[method-assign]
    return made


def drain(
    store: SQLiteJobStore,
    deliver: Callable[[OutboxMessage], Awaitable[bool]],
    concurrency: int,
) -> Drain:
    return Drain(
        store,
        deliver,
        concurrency=concurrency,
        send_time=20.0,
        coalesce_progress=False,
    )


def progress(message: OutboxMessage) -> int:
    return int(message.payload["entities"]["rpa_progress"])


async def test_one_drain_sends_a_backlog_in_order_sharing_each_claim(
    store: SQLiteJobStore,
) -> None:
    for c in range(6):
        await queue(store, f"c{c}", 5)
    claims = claims_of(store)
    sent: list[tuple[str, int]] = []

    async def deliver(message: OutboxMessage) -> bool:
        # Every earlier message of the conversation is recorded as delivered
        # before this one is handed out: never two in flight, never overtaken.
        pending = await store.list_outbox(status="pending", limit=1000)
        assert not [
            p
            for p in pending
            if p.conversation_id == message.conversation_id
            and (p.seq or 0) < (message.seq or 0)
        ]
        await asyncio.sleep(0)  # a call in flight: let the others run
        sent.append((message.conversation_id, progress(message)))
        return True

    assert await drain(store, deliver, concurrency=1).run() == 30
    for c in range(6):
        assert [n for conv, n in sent if conv == f"c{c}"] == [0, 1, 2, 3, 4]
    assert (await store.outbox_stats())["delivered"] == 30
    # One claim (and one recording commit) per six messages, not per message.
    assert [len(due) for due in claims] == [6, 6, 6, 6, 6, 0]


async def test_a_claimed_message_without_a_slot_for_too_long_goes_back_unsent(
    store: SQLiteJobStore, clock: Clock
) -> None:
    for conversation in ("a", "b", "c"):
        await queue(store, conversation)
    claims = claims_of(store)
    sent: list[str] = []

    async def deliver(message: OutboxMessage) -> bool:
        sent.append(message.conversation_id)
        if message.conversation_id == "a":
            clock.now += SLOT_WAIT + 1  # Rasa took its time answering
        return True

    assert await drain(store, deliver, concurrency=1).run() == 5
    assert sent == ["a", "b", "c"]
    # b and c were handed back, not left to their leases: claimed again at
    # once, with a fresh lease, and not in doubt (they were never sent).
    assert [[m.conversation_id for m in due] for due in claims] == [
        ["a", "b", "c"],
        ["b", "c"],
        [],
    ]
    assert not any(m.in_doubt for m in claims[1])
    assert (await store.outbox_stats())["delivered"] == 3


async def test_deliveries_are_recorded_before_their_lease_can_run_out(
    store: SQLiteJobStore, clock: Clock
) -> None:
    for conversation in ("a", "b"):
        await queue(store, conversation)
    claims = claims_of(store)
    claimed_a = clock.now
    a_answered = asyncio.Event()

    async def a_recorded() -> bool:
        delivered = await store.list_outbox(status="delivered")
        return "a" in {m.conversation_id for m in delivered}

    async def deliver(message: OutboxMessage) -> bool:
        if message.conversation_id == "b":
            clock.now += 3  # more callbacks come in, claimed 3 s after a
            for n in range(3):
                await queue(store, f"d{n}")
        elif message.conversation_id == "a":
            # Slow: Rasa answers once the d messages are claimed, after a's
            # claim is older than SLOT_WAIT (theirs is not).
            await async_wait_until(lambda: len(claims) > 1, 5, "d claimed")
            clock.now = claimed_a + SLOT_WAIT + 1
            a_answered.set()
        else:
            if message.conversation_id == "d0":
                await a_answered.wait()
            # The queue still holds messages in their time: the drain has no
            # reason to claim (and record) soon. a is recorded all the same,
            # its lease (SLOT_WAIT + one send + RECORD_TIME) nearly spent.
            assert await a_recorded()
        return True

    assert await drain(store, deliver, concurrency=2).run() == 5
    assert [[m.conversation_id for m in due] for due in claims][:2] == [
        ["a", "b"],
        ["d0", "d1", "d2"],
    ]


async def test_a_failed_drain_records_what_was_delivered_and_hands_back_the_rest(
    store: SQLiteJobStore,
) -> None:
    for conversation in ("a", "b", "c"):
        await queue(store, conversation)

    async def deliver(message: OutboxMessage) -> bool:
        if message.conversation_id == "b":
            raise RuntimeError("the store went away")
        return True

    with pytest.raises(RuntimeError, match="went away"):
        await drain(store, deliver, concurrency=1).run()
    assert (await store.outbox_stats())["delivered"] == 1
    # c was never sent: due again at once, not in doubt. b's fate is unknown,
    # so it keeps its lease (and is claimed in doubt once that runs out).
    [c] = await store.claim_due(time.time(), limit=10, lease=30)
    assert c.conversation_id == "c" and not c.in_doubt
    [b] = await store.claim_due(time.time() + 3600, limit=1, lease=30)
    assert b.conversation_id == "b" and b.in_doubt


async def test_a_drain_that_began_with_one_message_sends_what_comes_in_parallel(
    store: SQLiteJobStore,
) -> None:
    await queue(store, "first")
    in_flight = 0
    all_in_flight = asyncio.Event()

    async def deliver(message: OutboxMessage) -> bool:
        nonlocal in_flight
        if message.conversation_id == "first":
            for n in range(4):  # callbacks arrive while the first call is out
                await queue(store, f"later{n}")
            return True
        in_flight += 1
        if in_flight == 4:
            all_in_flight.set()
        # Each waits for the others to be in flight too: one worker alone
        # would never get there.
        await asyncio.wait_for(all_in_flight.wait(), 5)
        return True

    assert await drain(store, deliver, concurrency=4).run() == 5


async def test_a_claim_slower_than_the_slot_wait_neither_stalls_nor_spins(
    store: SQLiteJobStore, clock: Clock
) -> None:
    """A store that answers a claim after SLOT_WAIT (pool exhausted, lock
    waits, a loaded machine) made every claimed message too old to start:
    handed back and claimed again at once, forever, nothing sent."""
    for conversation in ("a", "b", "c"):
        await queue(store, conversation)
    claim = store.claim_due
    claims = 0

    async def slow_claim(*args: Any, **kwargs: Any) -> list[OutboxMessage]:
        nonlocal claims
        claims += 1
        if claims > 5:
            raise AssertionError(f"spinning: {claims} claims, sent {sent}")
        due = await claim(*args, **kwargs)
        clock.now += SLOT_WAIT + 1  # the answer came late
        return due

    store.claim_due = slow_claim  # type: ignore[method-assign]
    sent: list[str] = []

    async def deliver(message: OutboxMessage) -> bool:
        sent.append(message.conversation_id)
        return True

    # Either outcome would do: the messages go out, or the drain gives up
    # (and the dispatcher waits a poll) instead of claiming in a loop.
    try:
        await drain(store, deliver, concurrency=1).run()
    except AssertionError:
        raise
    except Exception:
        pass
    assert sent or claims <= 2


async def test_a_cancelled_drain_hands_back_the_messages_it_never_started(
    store: SQLiteJobStore,
) -> None:
    """Stopping the dispatcher (SIGTERM, a rolling restart) cancels the drain.

    Found by the round-5 attack: the workers put their unstarted claims in
    ``unsent`` but nobody settles after a cancel, so up to 8 x concurrency
    messages keep a lease of 2 x rasa.timeout + 10 s (30 s by default) and
    come back in doubt: the next server waits that long for each of those
    conversations and reads each one's whole tracker before sending.
    """
    for conversation in ("a", "b", "c", "d"):
        await queue(store, conversation)
    started = asyncio.Event()

    async def deliver(message: OutboxMessage) -> bool:
        started.set()
        await asyncio.Event().wait()  # Rasa never answers: in flight at the stop
        return True

    task = asyncio.create_task(drain(store, deliver, concurrency=1).run())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The one in flight keeps its lease (Rasa may have it); the three never
    # started are due again at once, and not in doubt.
    due = await store.claim_due(time.time(), limit=10, lease=30)
    assert sorted(m.conversation_id for m in due) == ["b", "c", "d"]
    assert not any(m.in_doubt for m in due)
