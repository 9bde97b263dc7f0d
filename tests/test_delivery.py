"""The outbox dispatcher against a Rasa stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from rasa_rpa.delivery import OutboxDispatcher, RasaClient
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.stores.sqlite import SQLiteJobStore
from tests.waiting import async_wait_until


@pytest.fixture
async def setup(tmp_path, make_config, rasa_stand_in):
    config = make_config(rasa={"url": rasa_stand_in.url})
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    rasa = RasaClient(config.rasa)
    dispatcher = OutboxDispatcher(store, rasa, config.delivery)
    yield store, dispatcher, rasa_stand_in
    await rasa.aclose()
    await store.close()


async def queue(store, job_id, conversation, kinds):
    await store.create_job(
        Job(
            id=job_id,
            automation="orders",
            provider="local",
            conversation_id=conversation,
        )
    )
    for n, (kind, data) in enumerate(kinds):
        await store.record_event(JobEvent(f"{job_id}-{n}", job_id, kind, data))


async def drain(dispatcher, rounds=20):
    for _ in range(rounds):
        if not await dispatcher.drain_once():
            return


async def test_status_goes_to_trigger_intent_with_token_and_latest_channel(setup):
    store, dispatcher, rasa = setup
    await queue(store, "j1", "conv/1", [(EventType.STARTED, {})])
    await drain(dispatcher)
    [call] = rasa.calls
    assert call.conversation_id == "conv/1"
    assert call.endpoint == "trigger_intent"
    assert call.params["output_channel"] == "latest"
    assert call.body["name"] == "EXTERNAL_rpa_job_running"
    assert call.body["entities"]["rpa_job_id"] == "j1"
    assert (await store.outbox_stats()) == {
        "pending": 0,
        "delivered": 1,
        "dead": 0,
        "discarded": 0,
    }


async def test_messages_and_slots_go_to_tracker_events(setup):
    store, dispatcher, rasa = setup
    await queue(
        store,
        "j1",
        "c1",
        [
            (EventType.MESSAGE, {"text": "Found 3 orders"}),
            (EventType.SLOTS, {"slots": {"customer": "ACME"}}),
        ],
    )
    await drain(dispatcher)
    bot, slot = rasa.calls
    assert bot.endpoint == "tracker/events"
    assert bot.params["execute_side_effects"] == "true"
    assert bot.body[0] == {
        "event": "bot",
        "text": "Found 3 orders",
        "metadata": {"rpa_job_id": "j1", "rpa_delivery_id": "j1:1"},
    }
    assert "execute_side_effects" not in slot.params
    assert slot.body == [
        {
            "event": "slot",
            "name": "customer",
            "value": "ACME",
            "metadata": {"rpa_delivery_id": "j1:2"},
        }
    ]


async def test_order_is_kept_per_conversation(setup):
    store, dispatcher, rasa = setup
    dispatcher.settings = dispatcher.settings.model_copy(
        update={"coalesce_progress": False}
    )
    steps = [(EventType.PROGRESS, {"progress": n}) for n in range(1, 11)]
    await queue(store, "a", "c1", steps)
    await queue(store, "b", "c2", steps)
    await drain(dispatcher, rounds=50)
    for conversation in ("c1", "c2"):
        seen = [
            c.body["entities"]["rpa_progress"] for c in rasa.calls_for(conversation)
        ]
        assert seen == list(range(1, 11))


async def test_a_progress_backlog_reaches_the_user_as_its_newest_figure(setup):
    """By default, progress that piled up while Rasa lagged is coalesced:
    the user hears 'started', the message, the latest figure, the result."""
    store, dispatcher, rasa = setup
    steps = [
        (EventType.STARTED, {}),
        *[(EventType.PROGRESS, {"progress": n}) for n in range(1, 6)],
        (EventType.MESSAGE, {"text": "half way"}),
        *[(EventType.PROGRESS, {"progress": n}) for n in range(6, 11)],
        (EventType.SUCCEEDED, {}),
    ]
    await queue(store, "a", "c1", steps)
    await drain(dispatcher, rounds=50)
    seen = [
        c.body["name"].removeprefix("EXTERNAL_rpa_job_")
        + (
            f" {c.body['entities']['rpa_progress']:g}"
            if "progress" in c.body["name"]
            else ""
        )
        if c.endpoint == "trigger_intent"
        else c.body[0]["text"]
        for c in rasa.calls_for("c1")
    ]
    assert seen == ["running", "half way", "progress 10", "succeeded"]
    stats = await store.outbox_stats()
    assert (stats["pending"], stats["delivered"]) == (0, len(steps))


async def test_rasa_down_then_back_delivers_everything_in_order(setup):
    store, dispatcher, rasa = setup
    rasa.status = 503
    await queue(
        store,
        "j1",
        "c1",
        [(EventType.STARTED, {}), (EventType.PROGRESS, {"progress": 50})],
    )
    await drain(dispatcher)
    assert rasa.calls == []
    stats = await store.outbox_stats()
    assert stats["pending"] == 2
    rasa.status = 200
    dispatcher.start()
    try:
        await asyncio.to_thread(rasa.wait_for, lambda calls: len(calls) == 2, 10)
    finally:
        await dispatcher.stop()
    assert [c.body["name"] for c in rasa.calls] == [
        "EXTERNAL_rpa_job_running",
        "EXTERNAL_rpa_job_progress",
    ]


async def test_wrong_token_is_retried_not_dropped(setup, make_config):
    store, dispatcher, rasa = setup
    rasa.token = "a-different-token"
    await queue(store, "j1", "c1", [(EventType.STARTED, {})])
    await drain(dispatcher)
    stats = await store.outbox_stats()
    assert stats == {"pending": 1, "delivered": 0, "dead": 0, "discarded": 0}


async def test_unknown_intent_is_set_aside_as_dead(setup):
    store, dispatcher, rasa = setup
    rasa.known_intents = {"EXTERNAL_rpa_job_progress"}
    await queue(
        store,
        "j1",
        "c1",
        [(EventType.STARTED, {}), (EventType.PROGRESS, {"progress": 1})],
    )
    await drain(dispatcher)
    [dead] = await store.list_outbox(status="dead")
    assert "does not exist in the domain" in dead.last_error
    assert [c.body["name"] for c in rasa.calls] == ["EXTERNAL_rpa_job_progress"]


async def test_wrong_rasa_url_is_retried_not_dropped(tmp_path, make_config):
    from rasa_rpa.testing import RasaStandIn

    with RasaStandIn() as rasa:
        config = make_config(rasa={"url": rasa.url + "/missing-prefix"})
        store = SQLiteJobStore(tmp_path / "wrong.db")
        await store.open()
        client = RasaClient(config.rasa)
        dispatcher = OutboxDispatcher(store, client, config.delivery)
        await queue(store, "j1", "c1", [(EventType.STARTED, {})])
        await drain(dispatcher)
        [pending] = await store.list_outbox(status="pending")
        assert "--enable-api" in pending.last_error
        await client.aclose()
        await store.close()


async def test_message_older_than_max_age_is_set_aside(tmp_path, make_config):
    from rasa_rpa.testing import RasaStandIn

    with RasaStandIn() as rasa:
        rasa.status = 503
        config = make_config(rasa={"url": rasa.url}, delivery={"max_age": "1s"})
        store = SQLiteJobStore(tmp_path / "old.db")
        await store.open()
        client = RasaClient(config.rasa)
        dispatcher = OutboxDispatcher(store, client, config.delivery)
        await store.create_job(
            Job(id="j1", automation="a", provider="local", conversation_id="c1")
        )
        await store.record_event(
            JobEvent("e1", "j1", EventType.STARTED, {}, received_at=0.0)
        )
        await drain(dispatcher)
        [dead] = await store.list_outbox(status="dead")
        assert "delivery.max_age" in dead.last_error
        assert await store.replay(dead.seq, now=1.0)
        assert (await store.outbox_stats())["pending"] == 1
        await client.aclose()
        await store.close()


async def test_a_message_that_died_of_old_age_is_delivered_when_replayed(
    tmp_path, make_config
):
    """Replaying gives delivery.max_age afresh: the old message is sent, not
    set aside again at once (which is what an operator replaying after a long
    Rasa outage would otherwise get, silently)."""
    from rasa_rpa.testing import RasaStandIn

    with RasaStandIn() as rasa:
        rasa.status = 503
        config = make_config(rasa={"url": rasa.url}, delivery={"max_age": "1h"})
        store = SQLiteJobStore(tmp_path / "old.db")
        await store.open()
        client = RasaClient(config.rasa)
        dispatcher = OutboxDispatcher(store, client, config.delivery)
        await store.create_job(
            Job(id="j1", automation="a", provider="local", conversation_id="c1")
        )
        # Queued two hours ago: older than max_age, so it dies unsent.
        await store.record_event(
            JobEvent("e1", "j1", EventType.STARTED, {}, received_at=time.time() - 7200)
        )
        await drain(dispatcher)
        [dead] = await store.list_outbox(status="dead")
        assert "delivery.max_age" in dead.last_error
        rasa.status = 200  # Rasa is back; the operator replays
        assert await store.replay(dead.seq, now=time.time())
        await drain(dispatcher)
        assert await store.list_outbox(status="dead") == []
        [delivered] = await store.list_outbox(status="delivered")
        assert delivered.seq == dead.seq
        assert [c.endpoint for c in rasa.calls] == ["trigger_intent"]
        await client.aclose()
        await store.close()


async def test_message_in_doubt_is_not_sent_twice(setup):
    # A dispatcher sent the message, then died before recording it.
    store, dispatcher, rasa = setup
    await queue(
        store,
        "j1",
        "c1",
        [(EventType.STARTED, {}), (EventType.MESSAGE, {"text": "once"})],
    )
    [started] = await store.claim_due(100.0, limit=10, lease=5)
    await dispatcher.rasa.trigger_intent(
        "c1",
        started.payload["name"],
        {**started.payload["entities"], "rpa_delivery_id": started.delivery_id},
    )
    # The lease runs out; the next dispatcher finds the message in doubt.
    [again] = await store.claim_due(200.0, limit=10, lease=5)
    assert again.seq == started.seq and again.in_doubt
    await drain(dispatcher)
    await drain(dispatcher)
    names = [
        c.body["name"] if c.endpoint == "trigger_intent" else c.body[0]["text"]
        for c in rasa.calls
    ]
    assert names == ["EXTERNAL_rpa_job_running", "once"]


async def test_message_in_doubt_that_never_arrived_is_sent(setup):
    store, dispatcher, rasa = setup
    await queue(store, "j1", "c1", [(EventType.STARTED, {})])
    await store.claim_due(100.0, limit=10, lease=5)  # claimed, never sent
    [again] = await store.claim_due(200.0, limit=10, lease=5)
    assert again.in_doubt
    await drain(dispatcher)
    assert [c.body["name"] for c in rasa.calls] == ["EXTERNAL_rpa_job_running"]


async def test_message_in_doubt_set_aside_as_dead_is_checked_when_replayed(
    setup, make_config
):
    # Rasa takes the message and dies before answering; while it is away the
    # message grows too old and is set aside; an operator replays it later.
    store, dispatcher, rasa = setup
    await store.create_job(
        Job(id="j1", automation="orders", provider="local", conversation_id="c1")
    )
    hour_ago = time.time() - 3600
    await store.record_event(
        JobEvent("e1", "j1", EventType.STARTED, {}, received_at=hour_ago)
    )
    rasa.crash_after_next_call()
    await drain(dispatcher)
    assert rasa.offline and len(rasa.calls) == 1
    strict = OutboxDispatcher(
        store, dispatcher.rasa, make_config(delivery={"max_age": "30m"}).delivery
    )

    async def set_aside() -> bool:
        await strict.drain_once()
        return bool(await store.list_outbox(status="dead"))

    await async_wait_until(set_aside, 5, "the message set aside as dead")
    [dead] = await store.list_outbox(status="dead")
    rasa.come_back()
    assert await store.replay(dead.seq, time.time())
    await drain(dispatcher)
    assert await store.outbox_stats() == {
        "pending": 0,
        "delivered": 1,
        "dead": 0,
        "discarded": 0,
    }
    assert [c.body["name"] for c in rasa.calls] == ["EXTERNAL_rpa_job_running"]


async def test_rasa_is_called_with_an_admin_jwt_when_configured(tmp_path, make_config):
    import jwt

    from rasa_rpa.testing import RasaStandIn

    with RasaStandIn() as rasa:
        config = make_config(
            rasa={
                "url": rasa.url,
                "token": None,
                "jwt_secret": "rasa-jwt-secret-for-tests-32-bytes-long",
            }
        )
        store = SQLiteJobStore(tmp_path / "jwt.db")
        await store.open()
        client = RasaClient(config.rasa)
        dispatcher = OutboxDispatcher(store, client, config.delivery)
        await queue(store, "j1", "c1", [(EventType.STARTED, {})])
        await drain(dispatcher)
        [call] = rasa.calls
        scheme, _, token = call.headers["authorization"].partition(" ")
        assert scheme == "Bearer"
        claims = jwt.decode(
            token, "rasa-jwt-secret-for-tests-32-bytes-long", algorithms=["HS256"]
        )
        assert claims["user"]["role"] == "admin"
        assert "token" not in call.params
        await client.aclose()
        await store.close()


def strict(value):
    """Re-encode ``value`` the way RFC 8259 allows: NaN/Infinity raise."""
    return json.dumps(value, allow_nan=False)


async def test_rasa_never_gets_nan_or_infinity(setup):
    """Whatever reached the store, what goes to Rasa is strict JSON."""
    store, dispatcher, rasa = setup
    await queue(
        store,
        "j1",
        "c1",
        [
            (EventType.STARTED, {}),
            (EventType.MESSAGE, {"text": "hi", "custom": {"r": float("nan")}}),
            (EventType.SUCCEEDED, {"outputs": {"ratio": float("inf")}}),
        ],
    )
    await drain(dispatcher)
    assert len(rasa.calls) == 3
    for call in rasa.calls:
        strict(call.body)


@pytest.mark.parametrize(
    "answer",
    [
        b"<html>502 Bad Gateway</html>",  # a proxy's page, not JSON
        b'"not an object"',
        b'{"events": {"not": "a list"}}',
        b'{"events": [42, {"metadata": "x", "parse_data": {"entities": [1]}}]}',
    ],
)
async def test_a_tracker_answer_rasa_would_not_give_is_a_retry_not_a_crash(answer):
    """The tracker check of a message in doubt reads whatever answers: a
    strange answer leaves the question open (a retry), it never raises
    anything but DeliveryError into the dispatcher's round."""
    from aiohttp import web

    from rasa_rpa.config import RasaSettings
    from rasa_rpa.errors import DeliveryError

    async def tracker(request: web.Request) -> web.Response:
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_get("/conversations/{conversation}/tracker", tracker)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = RasaClient(RasaSettings(url=f"http://127.0.0.1:{port}"))
    try:
        if answer.startswith(b'{"events": ['):
            # Odd events are skipped, not fatal: the message is simply not there.
            assert await client.has_delivery("c1", "d1") is False
        else:
            with pytest.raises(DeliveryError):
                await client.has_delivery("c1", "d1")
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_a_message_that_breaks_sending_is_retried_and_blocks_no_one(setup):
    """A bug or an unexpected payload: the others still go, it comes back later."""
    store, dispatcher, rasa = setup
    await queue(store, "a", "broken", [(EventType.STARTED, {})])
    await queue(store, "b", "fine", [(EventType.STARTED, {})])
    send = dispatcher._send

    async def send_or_break(message):
        if message.conversation_id == "broken":
            raise KeyError("name")
        await send(message)

    dispatcher._send = send_or_break
    assert await dispatcher.drain_once() == 2  # no exception stops the drain
    assert [c.conversation_id for c in rasa.calls] == ["fine"]
    [retrying] = await store.list_outbox(status="failing")
    assert retrying.conversation_id == "broken"
    assert "KeyError" in (retrying.last_error or "") and retrying.in_doubt


async def test_a_wake_during_a_drain_that_sent_nothing_is_not_lost(setup):
    store, dispatcher, rasa = setup
    drained = asyncio.Event()
    drain_once = dispatcher.drain_once

    async def drain_then_wake():
        result = await drain_once()
        if not drained.is_set():
            await queue(store, "late", "c", [(EventType.STARTED, {})])
            dispatcher.wake()  # queued while the empty drain ran
            drained.set()
        return result

    dispatcher.drain_once = drain_then_wake
    dispatcher.settings = dispatcher.settings.model_copy(update={"poll_interval": 60})
    task = asyncio.create_task(dispatcher._run())
    try:
        await async_wait_until(lambda: rasa.calls_for("c"), 10, "the late message sent")
    finally:
        task.cancel()
