"""``GET /rpa/v1/diagnostics``: who may read the server's own state, and what it says.

In process (``in_process``); the server's call to its own public URL goes
over real HTTP to 127.0.0.1: to nothing, or to a FakeServer playing what
might answer there. ``tests/ops/test_doctor.py`` reads the route from a real
running server, where the call comes back to the server itself.
"""

from __future__ import annotations

import json
import time

from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.security import JobKeys, fingerprints
from tests.conftest import MASTER_KEY, TOKEN

ADMIN = "diagnostics-admin-token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_only_the_admin_or_an_operator_token_may_read_it(in_process):
    app = await in_process(admin={"token": ADMIN})
    job = await app.new_job()
    operator = app.runtime.keys.mint_operator_token()
    elsewhere = JobKeys("another-master-key-0123456789").mint_operator_token()
    refused = [
        await app.client.get("/rpa/v1/diagnostics"),
        await app.client.get("/rpa/v1/diagnostics", headers=bearer("wrong")),
        # A job's token opens its job, nothing else.
        await app.client.get("/rpa/v1/diagnostics", headers=bearer(app.token(job))),
        # An operator token of another master key: another server's.
        await app.client.get("/rpa/v1/diagnostics", headers=bearer(elsewhere)),
    ]
    assert [r.status_code for r in refused] == [401] * 4
    assert "another callbacks.secret" in refused[3].json()["error"]["message"]
    for token in (operator, ADMIN):
        response = await app.client.get("/rpa/v1/diagnostics", headers=bearer(token))
        assert response.status_code == 200, response.text
    # An operator token is no job token either.
    assert (
        await app.client.get(f"/rpa/v1/jobs/{job.id}", headers=bearer(operator))
    ).status_code == 401


async def test_works_without_the_admin_api(in_process):
    app = await in_process()  # no admin.token: the admin API is off (403)
    operator = app.runtime.keys.mint_operator_token()
    assert (await app.client.get("/rpa/v1/jobs")).status_code == 403
    response = await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    assert response.status_code == 200


async def test_credentials_are_fingerprints_never_values(in_process):
    app = await in_process(admin={"token": ADMIN})
    operator = app.runtime.keys.mint_operator_token()
    response = await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    body = response.json()
    config = app.runtime.config
    assert body["config"] == config.source
    assert body["rasa_url"] == config.rasa.url
    # The doctor computes the same from the same rpa.yml and master key.
    assert body["fingerprints"] == fingerprints(config, JobKeys(MASTER_KEY))
    assert body["fingerprints"]["rasa.jwt_secret"] is None  # not set
    assert len(body["fingerprints"]["rasa.token"]) == 8
    for secret in (TOKEN, ADMIN, MASTER_KEY):
        assert secret not in response.text


async def test_urls_are_shown_without_the_credentials_they_carry(in_process):
    app = await in_process(
        rasa={"url": "http://rasauser:rasa-pass-S3CRET@127.0.0.1:9?token=url-S3CRET"},
        callbacks={
            "public_url": "http://robot:pub-pass-S3CRET@127.0.0.1:9/?sig=sig-S3CRET",
            "secret": MASTER_KEY,
        },
    )
    operator = app.runtime.keys.mint_operator_token()
    response = await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    assert response.status_code == 200, response.text
    assert "S3CRET" not in response.text
    body = response.json()
    assert body["rasa_url"].rstrip("/") == "http://127.0.0.1:9"
    assert body["callbacks"]["url"].rstrip("/") == "http://127.0.0.1:9"
    # A different token in the URL still shows, as a different fingerprint.
    assert body["fingerprints"]["rasa.url"] == app.runtime.keys.fingerprint(
        "rasa.url", app.runtime.config.rasa.url
    )


async def test_failing_and_dead_messages_with_their_last_error(in_process):
    app = await in_process()
    store = app.runtime.store
    await app.runtime.dispatcher.stop()  # this test settles the messages itself
    first = await app.new_job()  # its "running" intent is queued
    second = await app.new_job()
    head, other = sorted(
        await store.claim_due(time.time() + 1, limit=10, lease=30),
        key=lambda m: m.seq or 0,
    )
    await store.mark_retry(head.seq or 0, "Rasa refused our credentials (HTTP 401)", 0)
    await store.mark_dead(other.seq or 0, "Rasa answered 400: bad", time.time())
    operator = app.runtime.keys.mint_operator_token()
    body = (
        await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    ).json()
    [failing] = body["outbox"]["failing"]
    assert failing["job_id"] == first.id
    assert failing["call"] == "trigger_intent EXTERNAL_rpa_job_running"
    assert failing["attempts"] == 1
    assert "HTTP 401" in failing["last_error"]
    [dead] = body["outbox"]["dead"]
    assert (dead["job_id"], dead["last_error"]) == (second.id, "Rasa answered 400: bad")
    assert body["outbox"]["counts"]["dead"] == 1
    assert "payload" not in dead  # the user's conversation is no diagnosis


async def test_public_url_where_nothing_answers(in_process):
    app = await in_process()  # public_url http://127.0.0.1:9
    operator = app.runtime.keys.mint_operator_token()
    body = (
        await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    ).json()
    probe = body["callbacks"]
    assert probe["url"] == "http://127.0.0.1:9" and probe["reachable"] is False
    assert "nothing answers at http://127.0.0.1:9" in probe["problem"]


async def test_public_url_reaching_another_server(in_process):
    """What answers there is checked: a robot's call must come back as ours."""
    other = FakeServer()
    other.route(
        "GET",
        "/a/rpa/v1/jobs/[^/]+",
        lambda r: (401, {"error": {"code": "unauthenticated", "message": "no"}}),
    )
    other.route("GET", "/b/rpa/v1/jobs/[^/]+", lambda r: (404, "Not Found"))
    with other:
        keyed = await in_process(callbacks={"public_url": f"{other.url}/a"})
        stranger = await in_process(callbacks={"public_url": f"{other.url}/b"})
        found = []
        for app in (keyed, stranger):
            operator = app.runtime.keys.mint_operator_token()
            response = await app.client.get(
                "/rpa/v1/diagnostics", headers=bearer(operator)
            )
            found.append(response.json()["callbacks"])
    assert [p["reachable"] for p in found] == [False, False]
    assert "refuses this server's job tokens" in found[0]["problem"]
    assert "answered 404" in found[1]["problem"]
    assert "not this action server" in found[1]["problem"]


async def test_the_probe_is_a_robots_call_with_this_servers_job_token(in_process):
    seen = []

    def job(request):
        seen.append(request)
        return 404, {"error": {"code": "job_not_found", "message": "unknown"}}

    stand_in = FakeServer()
    stand_in.route("GET", "/rpa/v1/jobs/(?P<job_id>[^/]+)", job)
    with stand_in:
        app = await in_process(callbacks={"public_url": stand_in.url})
        operator = app.runtime.keys.mint_operator_token()
        response = await app.client.get("/rpa/v1/diagnostics", headers=bearer(operator))
    assert response.json()["callbacks"]["reachable"] is True
    [call] = seen
    token = call.headers["authorization"].removeprefix("Bearer ")
    job_id = call.path.rsplit("/", 1)[-1]
    assert app.runtime.keys.verify_token(token, job_id)
    assert json.dumps(response.json()).count(token) == 0
    # Nothing of it was recorded: the probe's job does not exist.
    assert await app.runtime.store.list_jobs() == []
