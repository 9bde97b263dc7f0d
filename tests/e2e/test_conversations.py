"""Whole conversations through the real Rasa server, action server and robots."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import requests

from rasa_rpa.security import JobKeys, sign_webhook
from rasa_rpa.variables import job_ref
from tests.e2e.stack import MASTER_KEY, Stack
from tests.waiting import knocks_on, processes_with, wait_until

pytestmark = pytest.mark.e2e

STARTED = r"OK, I started your order details report job \(reference \w{3}-\w{3}\)"
RUNNING = r"robot is now working on your order details report job"
DONE = r"Your order details report \(\w{3}-\w{3}\) is ready"
#: The robot's report, as a markdown link: the words, then where it leads.
REPORT = r"^\[Download the order report \(orders-(?P<who>[\w-]+)\.xlsx, \d+ KB\)\]"


def test_happy_path_started_progress_completed(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer ACME")
    stack.inbox.wait_text(sender, STARTED)
    stack.inbox.wait_text(sender, RUNNING)
    stack.inbox.wait_text(sender, r"Progress: 50% - Found 3 orders for ACME")
    done = stack.inbox.wait_text(sender, DONE)
    assert done.endswith("is ready: 3 orders.")
    texts = stack.inbox.texts(sender)
    # Everything arrives once and in the order it happened.
    order = [
        next(i for i, t in enumerate(texts) if p in t)
        for p in (
            "OK, I started",
            "now working",
            "Progress: 10%",
            "Progress: 50%",
            "Progress: 90%",
            "Download the order report (orders-ACME.xlsx",
            "is ready",
        )
    ]
    assert order == sorted(order)
    assert len(texts) == len(set(texts))


def test_the_finished_jobs_report_is_a_link_to_the_robots_own_bytes(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer Globex")
    stack.inbox.wait_text(sender, DONE + r": 2 orders")
    sent = stack.inbox.wait_text(sender, REPORT)
    link = re.fullmatch(r"\[[^\]]+\]\((?P<url>[^)\s]+)\)", sent)
    assert link, sent
    url = link["url"]
    # The chat shows the words; the link leads to the action server's file route.
    assert url.startswith(f"{stack.actions_url}/rpa/files/")
    written = stack.tmp / ".rasa-rpa" / "runs" / stack.job_id(sender)
    download = requests.get(url, timeout=30)
    assert download.status_code == 200
    assert download.content == (written / "orders-Globex.xlsx").read_bytes()
    assert "attachment" in download.headers["content-disposition"]
    # The server path of the report is nowhere in the conversation.
    assert not any(str(written) in text for text in stack.inbox.texts(sender))


def test_robot_failure_is_told_with_the_reason(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer Nobody Inc")
    stack.inbox.wait_text(sender, STARTED)
    failed = stack.inbox.wait_text(sender, r"failed")
    assert failed.startswith(
        f"Sorry, your order details report job ({job_ref(stack.job_id(sender))}) "
        "failed: Unknown customer 'Nobody Inc'"
    )
    # rpa.yml's handover: the failure is followed by the hand-over, in that order.
    handover = stack.inbox.wait_text(sender, r"passing this conversation to a")
    texts = stack.inbox.texts(sender)
    assert texts.index(failed) < texts.index(handover)


def test_status_question_while_running(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get my orders")
    stack.inbox.wait_text(sender, RUNNING)
    stack.say(sender, "what is the status of my job?")
    status = stack.inbox.wait_text(sender, r"Your order details report job \(")
    assert re.search(r"\) is (running|queued|\d+% done) \(\d+ s so far\)", status)
    stack.inbox.wait_text(sender, DONE + r": 10 orders")
    stack.say(sender, "is my job done?")
    stack.inbox.wait_text(sender, r"finished successfully after")


def test_cancel_stops_the_job(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get my orders")
    stack.inbox.wait_text(sender, RUNNING)
    job_id = stack.job_id(sender)
    stack.say(sender, "cancel my job")
    stack.inbox.wait_text(sender, r"OK, I'm stopping your order details report job")
    stack.inbox.wait_text(sender, r"\) was cancelled")
    # Once the robot is gone and the outbox is empty, nothing more can come.
    wait_until(lambda: not processes_with(b"robot", job_id.encode()), 30, "robot ended")
    wait_until(lambda: stack.outbox_pending() == 0, 30, "the outbox is empty")
    assert not any("is ready" in t for t in stack.inbox.texts(sender))


def test_forged_and_cross_job_callbacks_show_nothing(stack: Stack):
    victim, other = stack.new_sender(), stack.new_sender()
    stack.say(victim, "get my orders")
    stack.say(other, "get my orders")
    stack.inbox.wait_text(victim, RUNNING)
    stack.inbox.wait_text(other, RUNNING)
    victim_job, other_job = stack.job_id(victim), stack.job_id(other)
    keys = JobKeys(MASTER_KEY)
    url = f"{stack.actions_url}/rpa/v1/jobs/{victim_job}/events"
    body = {"id": uuid.uuid4().hex, "type": "message", "data": {"text": "FORGED"}}
    raw = json.dumps(body).encode()
    stamp = int(time.time())

    def signed(secret: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "webhook-id": body["id"],
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(secret, body["id"], stamp, raw),
        }

    attempts = [
        # signed with a key that is not ours
        signed(JobKeys("an-attackers-own-master-key").signing_secret(victim_job)),
        # signed with the other job's own secret
        signed(keys.signing_secret(other_job)),
        # the other job's bearer token
        {"Authorization": f"Bearer {keys.mint_token(other_job, other)}"},
        # a token for this job id but minted for another conversation
        {"Authorization": f"Bearer {keys.mint_token(victim_job, other)}"},
    ]
    statuses = [
        requests.post(
            url, data=raw, headers={"Content-Type": "application/json", **h}, timeout=10
        ).status_code
        for h in attempts
    ]
    assert statuses == [401, 401, 403, 403]
    stack.inbox.wait_text(victim, DONE)
    stack.inbox.wait_text(other, DONE)
    assert "FORGED" not in stack.inbox.texts(victim) + stack.inbox.texts(other)


def test_action_server_restart_while_the_robot_runs(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer Globex")
    stack.inbox.wait_text(sender, RUNNING)
    stack.actions.kill()  # kill -9: no goodbye, the robot keeps running
    # The robot's next report finds nobody (a dropped connection) and is retried.
    assert knocks_on(stack.actions_port, timeout=30), "the robot never called"
    stack.actions.start(timeout=60)
    done = stack.inbox.wait_text(sender, DONE, timeout=60)
    assert "2 orders" in done
    assert stack.inbox.texts(sender).count(done) == 1


def test_rasa_down_when_the_robot_calls_back(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer Initech")
    stack.inbox.wait_text(sender, RUNNING)
    job_id = stack.job_id(sender)
    # kill -9: a graceful stop would keep serving open keep-alive connections.
    stack.rasa.kill()
    # The robot finishes while Rasa is down: its callback is accepted and kept.
    deadline = time.monotonic() + 30
    while stack.job_state(job_id, sender) != "succeeded":
        assert time.monotonic() < deadline, "the robot did not finish"
        time.sleep(0.2)
    health = requests.get(f"{stack.actions_url}/rpa/health", timeout=5).json()
    assert health["outbox"]["pending"] >= 1, health
    stack.rasa.start(timeout=240)
    done = stack.inbox.wait_text(sender, DONE, timeout=60)
    assert "2 orders" in done
