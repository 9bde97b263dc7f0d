"""The operator API: admin token, job listing, dead letters and replay; rate limits.

Authentication, queries and rate limits are tested in process (``in_process``);
timelines and dead letters need robots and Rasa, so they use a real server.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import pytest
import requests

from tests.waiting import wait_until

ADMIN = "test-admin-token"


@pytest.fixture
def server(action_server, rasa_stand_in):
    return action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})


def admin_get(server, path, token=ADMIN, **params):
    return requests.get(
        f"{server.url}/rpa/v1{path}",
        params=params,
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )


# -- in process: who may ask, what a query may say ------------------------------


@pytest.fixture
async def app(in_process):
    return await in_process(
        admin={"token": ADMIN}, callbacks={"rate_limit": 2, "rate_burst": 5}
    )


async def admin_get_in(app, path, token=ADMIN, **params):
    return await app.client.get(
        f"/rpa/v1{path}", params=params, headers={"Authorization": f"Bearer {token}"}
    )


async def test_listing_needs_the_admin_token(app):
    assert (await admin_get_in(app, "/jobs", token="wrong")).status_code == 401
    assert (await app.client.get("/rpa/v1/jobs")).status_code == 401
    job = await app.new_job()
    assert (await admin_get_in(app, "/jobs", token=app.token(job))).status_code == 401


async def test_admin_api_is_off_without_a_token(in_process):
    app = await in_process()
    response = await app.client.get("/rpa/v1/jobs")
    assert response.status_code == 403
    assert "admin.token" in response.json()["error"]["message"]


async def test_jobs_are_listed_per_conversation(app):
    job = await app.new_job()
    await app.new_job(running=False)
    everything = (await admin_get_in(app, "/jobs")).json()["jobs"]
    assert len(everything) == 2
    mine = await admin_get_in(app, "/jobs", conversation_id=job.conversation_id)
    assert [j["id"] for j in mine.json()["jobs"]] == [job.id]
    assert mine.json()["jobs"][0]["state"] == "running"
    assert (await admin_get_in(app, "/jobs", limit="lots")).status_code == 400


async def test_empty_limit_is_400_not_the_default(app):
    for query in ("limit=", "limit"):
        response = await app.client.get(
            f"/rpa/v1/jobs?{query}", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["code"] == "bad_query"


@pytest.mark.parametrize("limit", ["\u0665", "\uff15", "5_0", " 5", "+5"])
async def test_limit_takes_ascii_digits_only(app, limit):
    """int() reads Arabic-Indic and full-width digits, underscores and spaces."""
    response = await admin_get_in(app, "/jobs", limit=limit)
    assert response.status_code == 400, (limit, response.text)
    assert response.json()["error"]["code"] == "bad_query"
    assert (await admin_get_in(app, "/jobs", limit="5")).status_code == 200


def strict_json(text):
    """JSON as RFC 8259 has it: NaN and Infinity are not numbers there."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def test_admin_api_writes_strict_json_even_for_a_stored_nan(app):
    """A NaN stored before the edges refused them must not break the monitor."""
    job = await app.new_job()
    database = sqlite3.connect(app.runtime.store.path)
    with database:
        database.execute(
            "UPDATE jobs SET outputs = ? WHERE id = ?", ('{"ratio": NaN}', job.id)
        )
        database.execute(
            "UPDATE job_events SET data = ? WHERE job_id = ?",
            ('{"progress": Infinity}', job.id),
        )
    database.close()
    for path in ("/jobs", f"/jobs/{job.id}/events"):
        response = await admin_get_in(app, path, conversation_id=job.conversation_id)
        assert response.status_code == 200, response.text
        body = strict_json(response.text)
    assert body["job"]["outputs"] == {"ratio": None}
    assert body["events"][0]["data"] == {"progress": None}


async def test_a_dead_message_is_discarded_for_good(app):
    store = app.runtime.store
    await app.runtime.dispatcher.stop()  # the messages are settled by hand here
    job = await app.new_job()
    [head] = await store.claim_due(time.time() + 1, limit=10, lease=30)
    await store.mark_dead(head.seq, "Rasa answered 400: bad", time.time())
    admin = {"Authorization": f"Bearer {ADMIN}"}
    url = f"/rpa/v1/outbox/{head.seq}/discard"
    assert (await app.client.post(url)).status_code == 401
    response = await app.client.post(url, headers=admin)
    assert response.status_code == 200
    assert response.json() == {"seq": head.seq, "discarded": True}
    # Once: it is not dead any more, so neither discarded again nor replayed.
    again = await app.client.post(url, headers=admin)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    replay = f"/rpa/v1/outbox/{head.seq}/replay"
    assert (await app.client.post(replay, headers=admin)).status_code == 404
    assert (await admin_get_in(app, "/outbox")).json()["messages"] == []
    kept = (await admin_get_in(app, "/outbox", status="discarded")).json()
    assert [m["seq"] for m in kept["messages"]] == [head.seq]
    timeline = (await admin_get_in(app, f"/jobs/{job.id}/events")).json()
    assert [m["seq"] for m in timeline["outbox"]["discarded"]] == [head.seq]
    assert timeline["outbox"]["dead"] == []
    health = (await app.client.get("/rpa/health")).json()["outbox"]
    assert (health["dead"], health["discarded"]) == (0, 1)


async def test_failing_messages_are_listed(app):
    store = app.runtime.store
    await app.runtime.dispatcher.stop()
    job = await app.new_job()
    [head] = await store.claim_due(time.time() + 1, limit=10, lease=30)
    await store.mark_retry(head.seq, "Rasa unreachable: ClientConnectorError", 0)
    listed = (await admin_get_in(app, "/outbox", status="failing")).json()
    assert listed["status"] == "failing"
    assert [(m["job_id"], m["attempts"]) for m in listed["messages"]] == [(job.id, 1)]
    wrong = await admin_get_in(app, "/outbox", status="lost")
    assert wrong.status_code == 400 and "failing" in wrong.json()["error"]["message"]


async def test_callback_flood_is_rate_limited_per_job(app):
    job = await app.new_job()
    token = app.token(job)
    statuses = [
        await app.send_with_token(
            job.id,
            {"id": uuid.uuid4().hex, "type": "message", "data": {"text": f"n{n}"}},
            token,
        )
        for n in range(12)
    ]
    codes = [r.status_code for r in statuses]
    assert codes.count(202) < 12
    limited = next(r for r in statuses if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    # Another job has its own bucket.
    other = await app.new_job()
    fresh = await app.send_with_token(
        other.id,
        {"id": "x", "type": "message", "data": {"text": "hi"}},
        app.token(other),
    )
    assert fresh.status_code == 202


# -- real HTTP: robots run and Rasa (a stand-in) is called ------------------------


def test_job_timeline_shows_events_and_deliveries(server, rasa_stand_in):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="chat")
    server.wait_job(job_id, sender, "succeeded")
    rasa_stand_in.wait_for(
        lambda calls: any(
            c.body.get("name") == "EXTERNAL_rpa_job_succeeded"
            for c in calls
            if isinstance(c.body, dict)
        )
    )

    # Then the exit code's event and the last deliveries are recorded.
    def settled(timeline):
        types = [e["type"] for e in timeline["events"]]
        done = types[-2:] == ["job.succeeded", "job.succeeded"]
        return timeline if done and len(timeline["outbox"]["delivered"]) >= 5 else None

    timeline = wait_until(
        lambda: settled(admin_get(server, f"/jobs/{job_id}/events").json()),
        10,
        "the exit code's event and five deliveries are recorded",
    )
    types = [e["type"] for e in timeline["events"]]
    assert types[0] == "job.started"
    assert "message" in types and "slots" in types
    assert types[-2:] == ["job.succeeded", "job.succeeded"]  # listener, then exit code
    assert timeline["events"][-1]["applied"] is False
    assert len(timeline["outbox"]["delivered"]) >= 5
    assert timeline["outbox"]["dead"] == []


def test_message_rasa_refuses_is_dead_and_can_be_replayed(action_server, rasa_stand_in):
    # Rasa refuses intents missing from its domain for good (404).
    rasa_stand_in.known_intents = {"EXTERNAL_rpa_job_running"}
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="chat")
    server.wait_job(job_id, sender, "succeeded")
    dead = wait_until(
        lambda: admin_get(server, "/outbox", status="dead").json()["messages"],
        10,
        "a message set aside as dead",
    )
    assert "does not exist in the domain" in dead[0]["last_error"]
    assert dead[0]["job_id"] == job_id
    seq = dead[0]["seq"]
    headers = {"Authorization": f"Bearer {ADMIN}"}
    replay = requests.post(
        f"{server.url}/rpa/v1/outbox/{seq}/replay", timeout=5, headers=headers
    )
    assert replay.status_code == 202
    missing = requests.post(
        f"{server.url}/rpa/v1/outbox/999999/replay", timeout=5, headers=headers
    )
    assert missing.status_code == 404
