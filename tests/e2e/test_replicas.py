"""Two action servers on one PostgreSQL, callbacks spread over both, real Rasa."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest

from rasa_rpa_robot.client import RobotClient
from tests.e2e.stack import RASA_TOKEN, Stack

pytestmark = pytest.mark.e2e
EVENTS = 60


@pytest.fixture
async def pg_schema():
    name = f"rpa_replicas_{uuid.uuid4().hex[:10]}"
    yield f"postgresql://postgres@127.0.0.1:5432/test?schema={name}"
    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    await connection.close()


def test_replicas_deliver_every_event_once_and_in_order(
    stack: Stack, action_server, pg_schema, capsys
):
    # Every event, progress included: coalescing (on by default) would rightly
    # drop progress superseded in the backlog, which is not what this counts.
    overrides = {"store": {"url": pg_schema}, "rasa": {"token": RASA_TOKEN},
                 "callbacks": {"rate_limit": 10000, "rate_burst": 10000},
                 "delivery": {"coalesce_progress": False}}
    first = action_server(rasa_url=stack.rasa_url, **overrides)
    second = action_server(rasa_url=stack.rasa_url, **overrides)
    sender = stack.new_sender()
    job_id = first.start_job(sender, intent="wait")
    first.wait_job(job_id, sender, "running")
    token = first.keys.mint_token(job_id, sender)
    clients = [RobotClient(server.events_url(job_id), token=token)
               for server in (first, second)]
    started = time.monotonic()
    for n in range(EVENTS):
        # A load balancer alternates; each event is acknowledged before the next.
        if n % 10 == 9:
            clients[n % 2].send("job.progress", {"progress": n, "message": f"r{n}"})
        else:
            clients[n % 2].send("message", {"text": f"r{n}"})
    expected = [f"Progress: {n}% - r{n}" if n % 10 == 9 else f"r{n}"
                for n in range(EVENTS)]

    def bot_texts() -> list[str]:
        events = stack.tracker(sender)["events"]
        return [e["text"] for e in events if e["event"] == "bot"
                and (e.get("text") or "").startswith(("r", "Progress: "))]

    deadline = time.monotonic() + 90
    while len(bot_texts()) < EVENTS and time.monotonic() < deadline:
        time.sleep(0.5)
    delivered = bot_texts()
    with capsys.disabled():
        print(f"\n[figures] replicas: {EVENTS} events over 2 action servers on "
              f"PostgreSQL reached Rasa in {time.monotonic() - started:.1f}s; "
              f"delivered {len(delivered)}, repeated "
              f"{len(delivered) - len(set(delivered))}")
    assert delivered == expected
    first.run_action("action_cancel_rpa_job", sender)
