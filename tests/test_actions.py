"""The start, status and cancel actions, called the way Rasa calls them."""

from __future__ import annotations

import time
import uuid

import pytest

from rasa_rpa.actions import define_automation_actions, describe_job
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.models import Job, JobState

DOMAIN = {
    "responses": {
        "utter_rpa_job_started": [{"text": "started"}],
        "utter_rpa_job_status": [{"text": "{rpa_status}"}],
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
    assert reply["rpa_job_id"] == slot["value"]


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
    assert reply["response"] == "utter_rpa_job_status"
    assert "collect_order_details job failed" in reply["rpa_status"]
    assert "Unknown customer 'Nobody Inc'" in reply["rpa_status"]


def test_cancel_of_a_finished_job_does_nothing(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender)
    server.wait_job(job_id, sender, "succeeded")
    result = server.run_action("action_cancel_rpa_job", sender)
    assert "already ended (succeeded)" in result["responses"][0]["text"]
    assert server.job(job_id, sender)["state"] == "succeeded"


def test_describe_running_job():
    job = Job(
        id="j",
        automation="orders",
        provider="local",
        conversation_id="c",
        state=JobState.RUNNING,
        progress=40,
        message="Reading",
        created_at=100,
    )
    assert describe_job(job, now=112) == (
        "Your orders job is running, 40% done (12 s). Latest: Reading."
    )


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
            "aa": {
                "type": "automation_anywhere",
                "url": room.url,
                "username": "rasa-bot",
                "api_key": "fake-api-key",
                "run_as_user_ids": [7],
                "bots": room.bot_ids,
                "stop_wait": "2s",
            }
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
