"""The start, status and cancel actions, called the way Rasa calls them."""

from __future__ import annotations

import uuid

import pytest

from rasa_rpa.actions import define_automation_actions, describe_job
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
