"""The callback API: who gets in, what bad input gets.

Most tests serve the routes in process (``in_process``): the request goes
through the route into the job service and store, and the test reads the
store back. Real HTTP is kept where it matters: a job started through Rasa's
/webhook, header bytes no HTTP client would send, and the body size limit.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from rasa_rpa.models import JobState
from rasa_rpa.security import JobKeys, sign_webhook
from tests.conftest import running_action_server
from tests.rawhttp import post_bytes


def event(kind="message", **data):
    return {"id": uuid.uuid4().hex, "type": kind, "data": data or {"text": "hi"}}


@pytest.fixture
async def app(in_process):
    return await in_process()


async def state_of(app, job):
    return (await app.runtime.store.get_job(job.id)).state


# -- in process: authentication -------------------------------------------------


async def test_signed_event_is_accepted(app):
    job = await app.new_job()
    response = await app.send_signed(job.id, event("job.progress", progress=30))
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "running"
    assert (await app.runtime.store.get_job(job.id)).progress == 30


async def test_duplicate_is_acknowledged_once(app):
    job = await app.new_job()
    body = event("job.progress", progress=30)
    assert (await app.send_signed(job.id, body)).status_code == 202
    again = await app.send_signed(job.id, body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


async def test_bearer_token_is_accepted(app):
    job = await app.new_job()
    response = await app.send_with_token(job.id, event(), app.token(job))
    assert response.status_code == 202, response.text


async def test_no_credential_is_401_with_json(app):
    job = await app.new_job()
    response = await app.client.post(f"/rpa/v1/jobs/{job.id}/events", json=event())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_forged_signature_is_401(app):
    job = await app.new_job()
    forged = JobKeys("some-other-master-key-xxxx").signing_secret(job.id)
    response = await app.send_signed(job.id, event(), secret=forged)
    assert response.status_code == 401


async def test_other_jobs_signature_is_401(app):
    job, other = await app.new_job(), await app.new_job()
    secret = app.runtime.keys.signing_secret(other.id)
    response = await app.send_signed(job.id, event(), secret=secret)
    assert response.status_code == 401


async def test_stale_signature_is_401(app):
    job = await app.new_job()
    stale = int(time.time()) - 600
    response = await app.send_signed(job.id, event(), timestamp=stale)
    assert response.status_code == 401
    assert "window" in response.json()["error"]["message"]


async def test_token_of_another_job_is_403(app):
    job, other = await app.new_job(), await app.new_job()
    response = await app.send_with_token(job.id, event(), app.token(other))
    assert response.status_code == 403


async def test_token_for_another_conversation_is_403(app):
    job = await app.new_job()
    token = app.token(job, "someone-else")
    response = await app.send_with_token(job.id, event(), token)
    assert response.status_code == 403
    assert "conversation" in response.json()["error"]["message"]


async def test_refused_calls_store_nothing(app):
    job = await app.new_job()
    token = app.token(job, "someone-else")
    await app.send_with_token(job.id, event("job.succeeded"), token)
    assert await state_of(app, job) is JobState.RUNNING
    assert [e["type"] for e in await app.runtime.store.job_events(job.id)] == [
        "job.started"
    ]


async def test_unknown_job_is_404(app):
    response = await app.send_signed(uuid.uuid4().hex, event())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


async def test_get_job_needs_credentials(app):
    job = await app.new_job()
    anonymous = await app.client.get(f"/rpa/v1/jobs/{job.id}")
    assert anonymous.status_code == 401
    mine = await app.client.get(
        f"/rpa/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {app.token(job)}"}
    )
    assert mine.json()["id"] == job.id


async def test_credentials_stop_working_after_the_grace_period(in_process):
    app = await in_process(callbacks={"grace": 0})
    job = await app.new_job()
    await app.send_with_token(job.id, event("job.failed", error="x"), app.token(job))
    late = await app.send_with_token(job.id, event(), app.token(job))
    assert late.status_code == 401
    assert "has ended" in late.json()["error"]["message"]
    signed = await app.send_signed(job.id, event())
    assert signed.status_code == 401


# -- in process: validation -----------------------------------------------------


async def test_duplicate_keys_are_422_naming_the_key(app):
    """{"type": "job.progress", "type": "job.succeeded"} once finished a job."""
    job = await app.new_job()
    body = b'{"id": "dup", "type": "job.progress", "type": "job.succeeded"}'
    response = await app.send_with_token(job.id, body, app.token(job))
    assert response.status_code == 422, response.text
    assert "'type'" in response.json()["error"]["message"]
    assert await state_of(app, job) is JobState.RUNNING


async def test_bad_event_is_422_and_says_why(app):
    job = await app.new_job()
    response = await app.send_signed(job.id, event("job.progress", progress=300))
    assert response.status_code == 422
    assert "between 0 and 100" in response.json()["error"]["message"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_non_finite_number_is_422(app, number):
    """JSON has no NaN or Infinity; accepting them broke the admin API and Rasa."""
    job = await app.new_job()
    body = (
        b'{"id": "nf", "type": "job.progress", "data": {"progress": 5, '
        b'"extra": {"ratio": ' + number + b"}}}"
    )
    response = await app.send_with_token(job.id, body, app.token(job))
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["error"]["message"]


async def test_wrong_content_type_is_415(app):
    job = await app.new_job()
    response = await app.send_with_token(
        job.id, b"id=1", app.token(job), **{"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_media_type_is_case_insensitive(app):
    # RFC 9110 8.3.1: type, subtype and parameter names are case-insensitive.
    job = await app.new_job()
    response = await app.send_with_token(
        job.id,
        event(),
        app.token(job),
        **{"Content-Type": "APPLICATION/JSON; Charset=UTF-8"},
    )
    assert response.status_code == 202, response.text


async def test_health(app):
    response = await app.client.get("/rpa/health")
    assert response.json()["status"] == "ok"


# -- real HTTP: an action server as a child process -----------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One server for the module: these tests only send callbacks.
    folder = tmp_path_factory.mktemp("routes")
    with running_action_server(folder, callbacks={"max_body_bytes": 4096}) as running:
        yield running


def new_job(server, sender=None):
    """A job whose provider refuses (unknown task): it exists and is final."""
    sender = sender or uuid.uuid4().hex
    return server.start_job(sender, intent="missing"), sender


def test_start_failure_is_recorded_with_the_reason(server):
    job_id, sender = new_job(server)
    job = server.job(job_id, sender)
    assert job["state"] == "failed"
    # The error is the plain reason the chat may show; the detail is logged.
    assert job["error"] == "its robot is not installed here"
    assert "unknown task 'does_not_exist'" in server.log()


@pytest.mark.parametrize("broken", ["webhook-id", "webhook-signature", "authorization"])
def test_credential_headers_that_are_not_utf8_are_401(server, broken):
    """Sanic hands undecodable header bytes on as surrogates: signing them was a 500."""
    job_id, sender = new_job(server)  # final, but its credentials still work
    body = json.dumps(event()).encode()
    stamp = str(int(time.time())).encode()
    msg_id = b"id-\xff\xfe"
    # Signed over the very bytes sent: only the encoding is wrong.
    secret = server.keys.signing_secret(job_id)
    signature = sign_webhook(secret, "id-", int(stamp), body).encode()
    headers = {
        "webhook-id": [
            (b"webhook-id", msg_id),
            (b"webhook-timestamp", stamp),
            (b"webhook-signature", b"v1,AAAA"),
        ],
        "webhook-signature": [
            (b"webhook-id", b"id-"),
            (b"webhook-timestamp", stamp),
            (b"webhook-signature", signature + b"\xff"),
        ],
        "authorization": [
            (
                b"Authorization",
                b"Bearer " + server.keys.mint_token(job_id, sender).encode() + b"\xfe",
            )
        ],
    }[broken]
    logged = len(server.log())  # one server for the module: read only this test's
    answer = post_bytes(
        server.url,
        f"/rpa/v1/jobs/{job_id}/events",
        [(b"Content-Type", b"application/json"), *headers],
        body,
    )
    assert answer.status == 401, answer.body
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert "Traceback" not in server.log()[logged:]


def test_oversized_body_is_413(server):
    job_id, sender = new_job(server)
    token = server.keys.mint_token(job_id, sender)
    body = event(text="x" * 5000)
    response = server.send_with_token(job_id, body, token)
    assert response.status_code == 413


async def test_an_unexpected_failure_is_a_plain_500_that_shows_no_internals(
    app, monkeypatch, caplog
):
    """Found by the round-5 attack: rasa-sdk's handler answered with the
    exception's text and the whole request body echoed back."""
    job = await app.new_job()

    async def broken(*args, **kwargs):
        raise RuntimeError("cannot switch to state 12; secret internals")

    monkeypatch.setattr(app.runtime.service, "record", broken)
    response = await app.send_signed(job.id, event("job.progress", progress=30))
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "the action server failed; see its log",
        }
    }
    assert "secret internals" in caplog.text  # the operator has it
