"""Fault tests: crashes and outages lose nothing and duplicate nothing.

Each prints its figures (run `make test` and read them in the output).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import Counter

import pytest

from rasa_rpa_robot.client import RobotClient
from tests.waiting import delivery_retries, knocks_on, outbox_counts, wait_until

BURST = 1000
SENDERS = 4


def report(capsys, title: str, figures: dict[str, object]) -> None:
    with capsys.disabled():
        print(f"\n[figures] {title}")
        for key, value in figures.items():
            print(f"  {key}: {value}")


def bot_texts(rasa, sender):
    return [
        e.get("text")
        for c in rasa.calls_for(sender)
        if c.endpoint == "tracker/events"
        for e in c.body
        if e["event"] == "bot"
    ]


@pytest.fixture
def burst_server(action_server, rasa_stand_in):
    return action_server(
        rasa_url=rasa_stand_in.url,
        callbacks={"rate_limit": 100000, "rate_burst": 100000},
    )


def test_kill_9_during_a_burst_loses_nothing_and_repeats_nothing(
    burst_server, rasa_stand_in, capsys
):
    server = burst_server
    jobs = []
    for _ in range(SENDERS):
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, intent="wait")
        server.wait_job(job_id, sender, "running")
        jobs.append((job_id, sender))
    acknowledged = Counter()
    duplicates = Counter()
    per_sender = BURST // SENDERS

    def send(job_id: str, sender: str) -> None:
        client = RobotClient(
            server.events_url(job_id),
            token=server.keys.mint_token(job_id, sender),
            retry_for=90,
            timeout=5,
        )
        for n in range(per_sender):
            answer = client.send("message", {"text": f"{sender[:6]}-{n}"})
            acknowledged[sender] += 1
            duplicates[sender] += int(answer["duplicate"])

    threads = [threading.Thread(target=send, args=job) for job in jobs]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    wait_until(
        lambda: sum(acknowledged.values()) >= BURST * 0.4, 60, "40 % acked", 0.005
    )
    acked_before_kill = sum(acknowledged.values())
    server.kill()
    killed_at = time.monotonic()
    # Down until a robot has called and been dropped, as by a dead server.
    assert knocks_on(server.port, timeout=30), "no robot called the dead server"
    server.start()
    downtime = time.monotonic() - killed_at
    for thread in threads:
        thread.join(120)
    all_acked = time.monotonic()
    expected = {s: [f"{s[:6]}-{n}" for n in range(per_sender)] for _, s in jobs}
    rasa_stand_in.wait_for(
        lambda _: all(len(bot_texts(rasa_stand_in, s)) >= per_sender for s in expected),
        120,
    )
    drained = time.monotonic()
    # Nothing left to deliver: anything sent twice has arrived by now.
    wait_until(lambda: not outbox_counts(server.url)["pending"], 30, "outbox empty")
    delivered = {s: bot_texts(rasa_stand_in, s) for s in expected}
    repeated = sum(len(t) - len(set(t)) for t in delivered.values())
    report(
        capsys,
        "kill -9 during a 1,000-event burst",
        {
            "events sent": BURST,
            "acknowledged before kill -9": acked_before_kill,
            "acknowledged in all": sum(acknowledged.values()),
            "retries answered 'duplicate' (recorded before the kill)": sum(
                duplicates.values()
            ),
            "action server down for (s)": round(downtime, 2),
            "burst duration incl. restart (s)": round(all_acked - started, 2),
            "all delivered to Rasa after (s)": round(drained - started, 2),
            "delivered": sum(len(t) for t in delivered.values()),
            "delivered twice": repeated,
        },
    )
    assert sum(acknowledged.values()) == BURST
    for sender, texts in delivered.items():
        assert texts == expected[sender]  # every one, once, in order
    for _job_id, sender in jobs:
        server.run_action("action_cancel_rpa_job", sender)


def test_rasa_down_for_a_while_then_everything_arrives_in_order(
    burst_server, rasa_stand_in, capsys
):
    server = burst_server
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    rasa_stand_in.status = 503
    outage_started = time.monotonic()
    token = server.keys.mint_token(job_id, sender)
    client = RobotClient(server.events_url(job_id), token=token)
    for n in range(50):
        client.send("message", {"text": f"m{n}"})
    # The outage lasts until Rasa has refused the outbox's head twice.
    wait_until(lambda: delivery_retries(server.url) >= 2, 30, "Rasa refused twice")
    pending = outbox_counts(server.url)
    rasa_stand_in.status = 200
    back = time.monotonic()
    rasa_stand_in.wait_for(lambda _: len(bot_texts(rasa_stand_in, sender)) >= 50, 60)
    caught_up = time.monotonic()
    texts = bot_texts(rasa_stand_in, sender)
    report(
        capsys,
        "Rasa down, then back",
        {
            "outage (s)": round(back - outage_started, 2),
            "events acknowledged during the outage": 50,
            "outbox pending when Rasa came back": pending["pending"],
            "caught up after Rasa came back (s)": round(caught_up - back, 2),
            "delivered": len(texts),
            "in order": texts == [f"m{n}" for n in range(50)],
        },
    )
    assert texts == [f"m{n}" for n in range(50)]
    server.run_action("action_cancel_rpa_job", sender)


def test_message_in_doubt_stays_in_doubt_while_rasa_refuses_connections(
    burst_server, rasa_stand_in, capsys
):
    """Rasa takes the call and dies before answering, then refuses connections.

    The dispatcher cannot know whether the message arrived, and its tracker
    check fails too while Rasa is away; that second failure must not make it
    forget the doubt, or it sends the message again once Rasa is back.
    """
    server = burst_server
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    wait_until(
        lambda: not outbox_counts(server.url)["pending"],
        20,
        "the start to be delivered",
    )
    rasa_stand_in.crash_after_next_call()
    robot = RobotClient(
        server.events_url(job_id), token=server.keys.mint_token(job_id, sender)
    )
    robot.send("message", {"text": "only once"})
    robot.close()
    wait_until(lambda: rasa_stand_in.offline, 20, "the stand-in to crash")
    crashed = time.monotonic()
    # Tried again while Rasa refuses connections: the tracker check failed.
    wait_until(
        lambda: server.log().count("Rasa unreachable") >= 2, 20, "failed retries"
    )
    refused = server.log().count("Rasa unreachable")
    rasa_stand_in.come_back()
    back = time.monotonic()
    wait_until(
        lambda: not outbox_counts(server.url)["pending"], 20, "the outbox to drain"
    )
    texts = bot_texts(rasa_stand_in, sender)
    report(
        capsys,
        "Rasa dies after taking a message, then refuses connections",
        {
            "Rasa away for (s)": round(back - crashed, 2),
            "attempts refused meanwhile": refused,
            "times the message is in the tracker": texts.count("only once"),
        },
    )
    assert texts == ["only once"]
    server.run_action("action_cancel_rpa_job", sender)


def test_provider_unreachable_at_start_fails_the_job_with_the_reason(
    action_server, capsys
):
    server = action_server(
        providers={
            "hook": {"type": "webhook", "url": "http://127.0.0.1:1/start", "timeout": 2}
        },
        automations={"remote": {"provider": "hook", "task": "x", "intent": "remote"}},
    )
    sender = uuid.uuid4().hex
    started = time.monotonic()
    result = server.run_action("action_start_rpa_job", sender, intent="remote")
    answered = time.monotonic() - started
    reply = result["responses"][0]["text"]
    assert result["events"], (result, server.log()[-2000:])
    job_id = result["events"][0]["value"]
    job = server.job(job_id, sender)
    report(
        capsys,
        "provider unreachable at start",
        {
            "user was told": reply,
            "job state": job["state"],
            "recorded reason": job["error"],
            "answer time (s)": round(answered, 2),
        },
    )
    assert reply.startswith("Sorry, I couldn't start your remote job:")
    assert "not answering right now" in reply
    assert "127.0.0.1" not in reply  # the URL is for the log, not the chat
    assert job["state"] == "failed"
    assert "127.0.0.1" not in job["error"]  # the status action shows it too
    assert "cannot reach" in server.log()  # the operator's detail


def test_store_unavailable_gives_503_and_the_robots_retry_succeeds(
    action_server, capsys
):
    server = action_server()
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    token = server.keys.mint_token(job_id, sender)
    db_path = server.tmp.parent / "jobs.db"
    blocker = sqlite3.connect(
        db_path, isolation_level=None, timeout=1, check_same_thread=False
    )
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    body = {"id": uuid.uuid4().hex, "type": "job.progress", "data": {"progress": 42}}
    refused = server.send_with_token(job_id, body, token)
    release = threading.Timer(2.0, lambda: blocker.execute("ROLLBACK"))
    release.start()
    started = time.monotonic()
    answer = RobotClient(server.events_url(job_id), token=token, retry_for=60).send(
        "job.progress", body["data"], event_id=body["id"]
    )
    took = time.monotonic() - started
    release.join()
    blocker.close()
    job = server.job(job_id, sender)
    report(
        capsys,
        "store unavailable",
        {
            "first answer": f"{refused.status_code} {refused.json()['error']['code']}",
            "robot's retry accepted after (s)": round(took, 2),
            "retry answer": answer,
            "job progress": job["progress"],
        },
    )
    assert refused.status_code == 503
    assert answer["duplicate"] is False
    assert job["progress"] == 42
    server.run_action("action_cancel_rpa_job", sender)
