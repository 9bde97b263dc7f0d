"""The callback API of a running action server: who gets in, what bad input gets."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from rasa_rpa.security import JobKeys, sign_webhook
from tests.conftest import running_action_server, running_job
from tests.rawhttp import post_bytes


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


def event(kind="message", **data):
    return {"id": uuid.uuid4().hex, "type": kind, "data": data or {"text": "hi"}}


@pytest.fixture
def live_job(server):
    with running_job(server) as job:
        yield job


def test_start_failure_is_recorded_with_the_reason(server):
    job_id, sender = new_job(server)
    job = server.job(job_id, sender)
    assert job["state"] == "failed"
    # The error is the plain reason the chat may show; the detail is logged.
    assert job["error"] == "its robot is not installed here"
    assert "unknown task 'does_not_exist'" in server.log()


def test_signed_event_is_accepted(server, live_job):
    job_id, _ = live_job
    response = server.send_signed(job_id, event("job.progress", progress=30))
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "running"


def test_duplicate_is_acknowledged_once(server, live_job):
    job_id, _ = live_job
    body = event("job.progress", progress=30)
    assert server.send_signed(job_id, body).status_code == 202
    again = server.send_signed(job_id, body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


def test_bearer_token_is_accepted(server, live_job):
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    response = server.send_with_token(job_id, event(), token)
    assert response.status_code == 202, response.text


def test_no_credential_is_401_with_json(server, live_job):
    job_id, _ = live_job
    response = requests.post(server.events_url(job_id), json=event(), timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_forged_signature_is_401(server, live_job):
    job_id, _ = live_job
    forged = JobKeys("some-other-master-key-xxxx").signing_secret(job_id)
    response = server.send_signed(job_id, event(), secret=forged)
    assert response.status_code == 401


def test_other_jobs_signature_is_401(server, live_job):
    job_id, _ = live_job
    other_id, _ = new_job(server)
    response = server.send_signed(
        job_id, event(), secret=server.keys.signing_secret(other_id)
    )
    assert response.status_code == 401


def test_stale_signature_is_401(server, live_job):
    job_id, _ = live_job
    response = server.send_signed(job_id, event(), timestamp=int(time.time()) - 600)
    assert response.status_code == 401
    assert "window" in response.json()["error"]["message"]


@pytest.mark.parametrize("broken", ["webhook-id", "webhook-signature", "authorization"])
def test_credential_headers_that_are_not_utf8_are_401(server, live_job, broken):
    """Sanic hands undecodable header bytes on as surrogates: signing them was a 500."""
    job_id, sender = live_job
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


def test_duplicate_keys_are_422_naming_the_key(server, live_job):
    """{"type": "job.progress", "type": "job.succeeded"} once finished a job."""
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    response = server.send_with_token(
        job_id, b'{"id": "dup", "type": "job.progress", "type": "job.succeeded"}', token
    )
    assert response.status_code == 422, response.text
    assert "'type'" in response.json()["error"]["message"]
    assert server.job(job_id, sender)["state"] == "running"


def test_token_of_another_job_is_403(server, live_job):
    job_id, _ = live_job
    other_id, other_sender = new_job(server)
    token = server.keys.mint_token(other_id, other_sender)
    response = server.send_with_token(job_id, event(), token)
    assert response.status_code == 403


def test_token_for_another_conversation_is_403(server, live_job):
    job_id, _ = live_job
    token = server.keys.mint_token(job_id, "someone-else")
    response = server.send_with_token(job_id, event(), token)
    assert response.status_code == 403
    assert "conversation" in response.json()["error"]["message"]


def test_refused_calls_store_nothing(server, live_job):
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, "someone-else")
    server.send_with_token(job_id, event("job.succeeded"), token)
    assert server.job(job_id, sender)["state"] == "running"


def test_unknown_job_is_404(server):
    job_id = uuid.uuid4().hex
    response = server.send_signed(job_id, event())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_bad_event_is_422_and_says_why(server, live_job):
    job_id, _ = live_job
    response = server.send_signed(job_id, event("job.progress", progress=300))
    assert response.status_code == 422
    assert "between 0 and 100" in response.json()["error"]["message"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_number_is_422(server, live_job, number):
    """JSON has no NaN or Infinity; accepting them broke the admin API and Rasa."""
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    response = server.send_with_token(
        job_id,
        b'{"id": "nf", "type": "job.progress", "data": {"progress": 5, '
        b'"extra": {"ratio": ' + number + b"}}}",
        token,
    )
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["error"]["message"]


def test_wrong_content_type_is_415(server, live_job):
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    response = requests.post(
        server.events_url(job_id),
        data="id=1",
        timeout=5,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


def test_media_type_is_case_insensitive(server, live_job):
    # RFC 9110 8.3.1: type, subtype and parameter names are case-insensitive.
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    response = requests.post(
        server.events_url(job_id),
        data=json.dumps(event()),
        timeout=5,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "APPLICATION/JSON; Charset=UTF-8",
        },
    )
    assert response.status_code == 202, response.text


def test_oversized_body_is_413(server, live_job):
    job_id, sender = live_job
    token = server.keys.mint_token(job_id, sender)
    body = event(text="x" * 5000)
    response = server.send_with_token(job_id, body, token)
    assert response.status_code == 413


def test_get_job_needs_credentials(server, live_job):
    job_id, sender = live_job
    anonymous = requests.get(f"{server.url}/rpa/v1/jobs/{job_id}", timeout=5)
    assert anonymous.status_code == 401
    assert server.job(job_id, sender)["id"] == job_id


def test_health(server):
    response = requests.get(f"{server.url}/rpa/health", timeout=5)
    assert response.json()["status"] == "ok"


def test_credentials_stop_working_after_the_grace_period(action_server):
    server = action_server(callbacks={"grace": 0})
    job_id, sender = new_job(server)  # failed at start: final at once
    token = server.keys.mint_token(job_id, sender)
    late = server.send_with_token(job_id, event(), token)
    assert late.status_code == 401
    assert "has ended" in late.json()["error"]["message"]
    signed = server.send_signed(job_id, event())
    assert signed.status_code == 401
