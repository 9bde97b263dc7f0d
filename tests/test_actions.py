"""The start, status and cancel actions, called the way Rasa calls them."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from rasa_rpa.actions import define_automation_actions
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.variables import job_ref
from tests.stores.test_contract import PG_URL
from tests.waiting import processes_with, wait_until

DOMAIN = {
    "responses": {
        "utter_rpa_job_started": [{"text": "started"}],
        "utter_rpa_status_failed": [{"text": "{rpa_title} failed: {rpa_error}"}],
    }
}


@pytest.fixture
def server(action_server, rasa_stand_in):
    return action_server(rasa_url=rasa_stand_in.url)


def test_start_returns_the_job_slot_and_uses_the_domain_response(server):
    sender = uuid.uuid4().hex
    result = server.run_action("action_start_rpa_job", sender, domain=DOMAIN)
    [slot] = result["events"]
    assert slot["event"] == "slot" and slot["name"] == "rpa_job_id"
    [reply] = result["responses"]
    assert reply["response"] == "utter_rpa_job_started"
    assert reply["rpa_automation"] == "collect_order_details"
    assert reply["rpa_job_ref"] == job_ref(slot["value"])
    assert slot["value"] not in str(reply)  # the user sees the reference only


def test_start_without_matching_automation_says_so(server):
    result = server.run_action("action_start_rpa_job", "s", intent="greet")
    assert result["events"] == []
    assert "don't know which task" in result["responses"][0]["text"]


def test_status_without_a_job(server):
    result = server.run_action("action_rpa_job_status", uuid.uuid4().hex)
    assert "not started any job" in result["responses"][0]["text"]


def test_status_of_a_finished_job_says_how_it_ended(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, entities=[{"entity": "customer", "value": "Nobody Inc"}]
    )
    server.wait_job(job_id, sender, "failed")
    result = server.run_action("action_rpa_job_status", sender, domain=DOMAIN)
    [reply] = result["responses"]
    assert reply["response"] == "utter_rpa_status_failed"
    assert reply["rpa_state"] == "failed"
    assert reply["rpa_error"].startswith("Unknown customer 'Nobody Inc'")


def test_cancel_of_a_finished_job_does_nothing(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender)
    server.wait_job(job_id, sender, "succeeded")
    result = server.run_action("action_cancel_rpa_job", sender)
    assert "has already ended" in result["responses"][0]["text"]
    assert server.job(job_id, sender)["state"] == "succeeded"


@pytest.fixture
def hooks() -> Iterator[FakeServer]:
    """A webhook endpoint that records the paths it is asked for.

    ``/run`` answers too, so a request that escaped its ``/hooks/...``
    prefix would start a job there instead of failing.
    """
    with FakeServer() as server:
        server.route("POST", r"/hooks/[^/]+/run", lambda r: (201, {}))
        server.route("POST", r"/run", lambda r: (201, {}))
        yield server


@pytest.fixture
def edgy_server(action_server, rasa_stand_in, hooks):
    """Automations that put the ``customer`` entity where it is hard to carry."""
    customer = {"customer": {"entity": "customer"}}
    return action_server(
        rasa_url=rasa_stand_in.url,
        providers={
            "hook_path": {
                "type": "webhook",
                "url": hooks.url + "/hooks/{inputs.customer}/run",
            },
            "hook_header": {
                "type": "webhook",
                "url": hooks.url + "/hooks/plain/run",
                "headers": {"X-Customer": "{inputs.customer}"},
            },
            # Nothing listens on port 9: the start fails naming this URL.
            "hook_down": {"type": "webhook", "url": "http://127.0.0.1:9/secret/path"},
        },
        automations={
            name: {
                "provider": provider,
                "task": "env" if provider == "testbots" else "x",
                "intent": name,
                "inputs": customer,
            }
            for name, provider in [
                ("argv", "testbots"),
                ("path", "hook_path"),
                ("header", "hook_header"),
                ("down", "hook_down"),
            ]
        },
    )


def assert_plain_words(reply: str, job_id: str, value: str) -> None:
    """What a user may read: no exception text, URL, id or echo of the input."""
    assert reply.startswith("Sorry, I couldn't start"), reply
    assert len(reply) < 300, reply
    for internal in ("Error", "Traceback", "://", "127.0.0.1", job_id, "\x00"):
        assert internal not in reply, reply
    assert value not in reply


#: Inputs each provider must refuse itself, and why.
UNSENDABLE = {
    "nul-in-argv": ("argv", "ACME\x00; rm -rf /"),  # a command line cannot carry NUL
    "non-ascii-header": ("header", "M\u00fcller GmbH"),  # nor can an HTTP header
    "100kb-in-url": ("path", "x" * 100_000),  # no server takes such a URL
    "dot-dot-segment": ("path", ".."),  # would make /hooks/../run, i.e. /run
}


def test_an_input_the_provider_cannot_send_fails_the_job_at_once(edgy_server, hooks):
    # One server for all cases: starting one per case would cost seconds each.
    for case, (intent, value) in UNSENDABLE.items():
        sender = uuid.uuid4().hex
        # run_action raises on anything but 200: no input may cost a 500.
        result = edgy_server.run_action(
            "action_start_rpa_job",
            sender,
            intent=intent,
            entities=[{"entity": "customer", "value": value}],
        )
        [slot] = [e for e in result["events"] if e.get("name") == "rpa_job_id"]
        job_id = slot["value"]
        [reply] = result["responses"]
        assert_plain_words(reply["text"], job_id, value)
        # Failed when the action answered, not 10 minutes later on expiry.
        job = edgy_server.job(job_id, sender)
        assert job["state"] == "failed", (case, job)
        assert "customer" in job["error"], (case, job)
        assert len(job["error"]) < 300, case  # the 100 KB value is not echoed
        assert f"job {job_id} could not start" in edgy_server.log(), case
    assert "/run" not in [request.path for request in hooks.requests]


def test_status_of_a_job_that_failed_at_start_names_no_internals(edgy_server):
    sender = uuid.uuid4().hex
    started = edgy_server.run_action("action_start_rpa_job", sender, intent="down")
    [slot] = [e for e in started["events"] if e.get("name") == "rpa_job_id"]
    job_id = slot["value"]
    status = edgy_server.run_action("action_rpa_job_status", sender)
    [reply] = status["responses"]
    text = reply["text"]
    assert "down job" in text and "failed after" in text, text
    for internal in ("://", "127.0.0.1", "/secret/path", job_id, "Error"):
        assert internal not in text, text
    # The operator still has the URL: in the job's event log and the log.
    assert "/secret/path" in edgy_server.log()


def test_status_and_cancel_answer_any_conversation_id(edgy_server):
    for sender in ["nul\x00sender", "n\u00e4me-\u4f1a\u8bdd", "s" * 100_000]:
        for action in ("action_rpa_job_status", "action_cancel_rpa_job"):
            result = edgy_server.run_action(action, sender)
            assert "not started any job" in result["responses"][0]["text"]
        edgy_server.run_action(
            "action_start_rpa_job",
            sender,
            intent="argv",
            entities=[{"entity": "customer", "value": "\x00"}],
        )
        status = edgy_server.run_action("action_rpa_job_status", sender)
        assert "argv job" in status["responses"][0]["text"]
        assert "failed after" in status["responses"][0]["text"]
        cancel = edgy_server.run_action("action_cancel_rpa_job", sender)
        assert "has already ended" in cancel["responses"][0]["text"]


def test_actions_answer_a_lone_surrogate_sender_in_plain_words(server):
    """SQLite's driver cannot encode a lone surrogate: that was a 500 for Rasa."""
    sender = "\ud800"
    for action in ("action_rpa_job_status", "action_cancel_rpa_job"):
        # run_action raises on anything but 200.
        [reply] = server.run_action(action, sender)["responses"]
        assert "job records are unavailable" in reply["text"], reply
    [reply] = server.run_action("action_start_rpa_job", sender)["responses"]
    assert "job records are unavailable" in reply["text"], reply
    assert "Traceback" not in server.log()
    assert "codec" not in reply["text"]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped afterwards."""
    schema = f"actions_{uuid.uuid4().hex[:12]}"
    yield schema

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_status_and_cancel_answer_when_the_store_refuses_the_id(
    action_server, pg_schema
):
    # PostgreSQL text cannot hold NUL: the store fails, the actions still answer.
    server = action_server(store={"url": f"{PG_URL}?schema={pg_schema}"})
    for action in ("action_rpa_job_status", "action_cancel_rpa_job"):
        result = server.run_action(action, "nul\x00sender")
        [reply] = result["responses"]
        assert "job records are unavailable" in reply["text"], reply
        assert "UTF8" not in reply["text"]


def test_per_automation_actions_are_named_from_config(make_config):
    config = make_config(
        automations={
            "idle": {
                "provider": "testbots",
                "task": "idle",
                "action": "action_wait_a_bit",
            }
        }
    )
    [cls] = define_automation_actions(config)
    assert cls().name() == "action_wait_a_bit"
    assert cls.automation == "idle"


@pytest.fixture
def control_room():
    """A Control Room whose bot stays queued long enough to be cancelled."""
    with FakeControlRoom(step_delay=3) as room:
        yield room


def aa_server(action_server, rasa_stand_in, room):
    return action_server(
        rasa_url=rasa_stand_in.url,
        providers={
            "aa": room.provider_options(stop_wait="2s")
        },
        automations={
            "aa_orders": {
                "provider": "aa",
                "task": "collect_order_details",
                "intent": "aa_orders",
                "inputs": {"customer": "ACME"},
            }
        },
    )


def test_cancel_a_vendor_refuses_is_not_reported_as_cancelled(
    action_server, rasa_stand_in, control_room
):
    control_room.refuse_stops = True
    server = aa_server(action_server, rasa_stand_in, control_room)
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="aa_orders")
    result = server.run_action("action_cancel_rpa_job", sender)
    [reply] = result["responses"]
    assert "could not stop" in reply["text"]
    assert "403" not in reply["text"]  # the reason is for the operator
    assert server.job(job_id, sender)["state"] in ("pending", "running")
    assert "refused to stop the bot" in server.log()
    assert "403" in server.log()
    # The bot was not stopped: it ends as it would have, and the job with it.
    server.wait_job(job_id, sender, "succeeded", timeout=15)


def test_cancel_a_vendor_accepts_stops_the_bot(
    action_server, rasa_stand_in, control_room
):
    server = aa_server(action_server, rasa_stand_in, control_room)
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="aa_orders")
    result = server.run_action("action_cancel_rpa_job", sender)
    assert "stopping" in result["responses"][0]["text"]
    assert server.job(job_id, sender)["state"] == "cancelled"
    [deployment] = control_room.deployments.values()
    deadline = time.monotonic() + 10
    while deployment.status != "RUN_ABORTED":
        assert time.monotonic() < deadline, deployment.status
        time.sleep(0.05)


# -- jobs per conversation (attack report, finding 4) ------------------------------


def robots_of(server) -> list[int]:
    """The robot processes this server started (their run folder is under its own)."""
    return processes_with(b"robot", str(server.tmp).encode())


@pytest.fixture
def waiting_server(action_server, rasa_stand_in):
    """Two automations whose robots run for a minute, each with the default limit."""
    waiting = {"provider": "testbots", "task": "idle"}
    return action_server(
        rasa_url=rasa_stand_in.url,
        automations={
            "wait_a": {**waiting, "intent": "wait_a"},
            "wait_b": {**waiting, "intent": "wait_b"},
        },
    )


def test_a_second_start_while_one_runs_starts_no_robot(waiting_server):
    server = waiting_server
    sender = uuid.uuid4().hex
    first = server.start_job(sender, intent="wait_a")
    server.wait_job(first, sender, "running")
    # Three more at once: as from impatient users, or several Rasa workers.
    with ThreadPoolExecutor(3) as pool:
        again = list(
            pool.map(
                lambda _: server.run_action(
                    "action_start_rpa_job", sender, intent="wait_a"
                ),
                range(3),
            )
        )
    assert len(robots_of(server)) == 1
    for result in again:
        [reply] = result["responses"]
        assert reply["text"] == (
            f"Your wait_a job ({job_ref(first)}) is still running, so I did not "
            "start another one. I'll keep you posted."
        )
        assert first[:8] not in reply["text"]  # plain words, no ids
        # The slot still names the job that runs, so status and cancel find it.
        [slot] = result["events"]
        assert (slot["event"], slot["name"], slot["value"]) == (
            "slot",
            "rpa_job_id",
            first,
        )
    # Another automation is not held back by this one's limit.
    other = server.start_job(sender, intent="wait_b")
    assert other != first
    wait_until(lambda: len(robots_of(server)) == 2, 10, "the second robot started")


def test_status_and_cancel_reach_every_unfinished_job(waiting_server):
    server = waiting_server
    sender = uuid.uuid4().hex
    jobs = [server.start_job(sender, intent=intent) for intent in ("wait_a", "wait_b")]
    for job_id in jobs:
        server.wait_job(job_id, sender, "running")
    status = server.run_action("action_rpa_job_status", sender)
    # One sentence per job, newest first, each from its state's response.
    texts = [reply["text"] for reply in status["responses"]]
    assert [text.split(" (")[0] for text in texts] == [
        "Your wait_b job",
        "Latest news: Started Idle",
        "Your wait_a job",
        "Latest news: Started Idle",
    ]
    running = re.compile(r"\) is (running|\d+% done) \(\d+ s so far\)\.$")
    assert all(running.search(text) for text in texts[::2]), texts
    cancel = server.run_action("action_cancel_rpa_job", sender)
    [reply] = cancel["responses"]
    assert reply["text"] == "OK, I'm stopping your 2 jobs (wait_a, wait_b).", reply
    assert [server.job(j, sender)["state"] for j in jobs] == ["cancelled"] * 2
    wait_until(lambda: not robots_of(server), 15, "every robot stopped")
    again = server.run_action("action_cancel_rpa_job", sender)
    assert "has already ended" in again["responses"][0]["text"]


def test_cancel_of_a_job_its_provider_cannot_stop_says_so(edgy_server):
    """A webhook automation (and SAP without a cancel API) cannot be stopped
    from here: the user is told so, and the job is not reported cancelled."""
    sender = uuid.uuid4().hex
    started = edgy_server.run_action(
        "action_start_rpa_job",
        sender,
        intent="path",
        entities=[{"entity": "customer", "value": "acme"}],
    )
    [slot] = [e for e in started["events"] if e.get("name") == "rpa_job_id"]
    result = edgy_server.run_action("action_cancel_rpa_job", sender)
    [reply] = result["responses"]
    assert "could not stop" in reply["text"], reply
    assert edgy_server.job(slot["value"], sender)["state"] in ("pending", "running")
    assert "has no way to stop a job" in edgy_server.log()
