"""Vendor-format callbacks: the provider webhook route and the Botpress callback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests

from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.fakes.sap import FakeSapIrpa
from tests.conftest import running_job
from tests.rawhttp import post_bytes
from tests.waiting import wait_until


@pytest.fixture
def server(action_server, rasa_stand_in):
    return action_server(rasa_url=rasa_stand_in.url)


@pytest.fixture
def running(server):
    with running_job(server) as job:
        yield job


def botpress(server, token, body):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{server.url}/api/v1/bots/___/mod/uipath/message",
        json=body,
        headers=headers,
        timeout=10,
    )


def test_botpress_callback_reaches_the_conversation(server, running, rasa_stand_in):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(
        server,
        token,
        {
            "channel": "socketio",
            "target": sender,
            "botId": "orders-bot",
            "message": {"type": "text", "text": "Hello from UiPath"},
        },
    )
    assert response.status_code == 202, response.text
    calls = rasa_stand_in.wait_for(
        lambda calls: any(
            c.endpoint == "tracker/events"
            and c.body[0].get("text") == "Hello from UiPath"
            for c in calls
        )
    )
    assert any(c.conversation_id == sender for c in calls)


def test_botpress_callback_without_header_is_401_like_botpress(server):
    response = botpress(server, None, {"target": "x", "message": "hi"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Authorization header is missing"


def test_botpress_callback_for_another_conversation_is_403(server, running):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(server, token, {"target": "someone-else", "message": "hi"})
    assert response.status_code == 403


def test_botpress_callback_with_bad_message_is_422(server, running):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(server, token, {"target": sender, "message": {"type": "x"}})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text", "text": {"nested": "object"}},
        {"type": "text", "text": "hi", "buttons": "not a list"},
        {"type": "text", "text": "hi", "buttons": [{"title": "no payload"}]},
        {"type": "text", "image": 42},
    ],
)
def test_botpress_message_is_validated_like_a_native_message(server, running, message):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(server, token, {"target": sender, "message": message})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("message.")


def test_botpress_non_finite_number_is_422(server, running):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = requests.post(
        f"{server.url}/api/v1/bots/___/mod/uipath/message",
        data=b'{"target": "' + sender.encode() + b'", "botId": NaN, '
        b'"message": {"type": "text", "text": "hi"}}',
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["error"]["message"]


def test_webhook_404_names_no_provider_and_no_type(server):
    """A stranger learns nothing from the 404: an unknown name and a provider
    that receives no webhooks answer alike (the operator reads the log)."""
    unknown, local = (
        requests.post(
            f"{server.url}/rpa/v1/providers/{name}/webhook", json={}, timeout=10
        )
        for name in ("nope", "local")
    )
    assert unknown.status_code == local.status_code == 404
    assert unknown.json() == local.json()
    for word in ("nope", "local", "webhooks"):
        assert word not in local.text
    wait_until(
        lambda: "no provider named 'nope'" in server.log(), 15, "the log line"
    )
    assert "'local' (local) receives no webhooks" in server.log()


# -- credentials before lookups and rate limits (issue 10, item 3) ----------------


@pytest.fixture
def sap() -> Iterator[FakeSapIrpa]:
    # Notifications are kept, not sent: the test plays the SAP notifier itself.
    with FakeSapIrpa(step_delay=0.05) as fake:
        fake.drop_notifications = True
        yield fake


@pytest.fixture
def room() -> Iterator[FakeControlRoom]:
    with FakeControlRoom(step_delay=0.05) as fake:
        yield fake


@pytest.fixture
def vendor_server(action_server, rasa_stand_in, sap, room):
    """SAP and Automation Anywhere providers, and a rate limit a flood exhausts."""
    return action_server(
        rasa_url=rasa_stand_in.url,
        callbacks={"rate_limit": 0.05, "rate_burst": 8},
        providers={
            "sap": sap.provider_options(),
            "aa": room.provider_options(),
        },
        automations={
            # Notifications are dropped, so jobs stay pending; a test starts
            # two in one conversation.
            "sap_echo": {
                "provider": "sap",
                "task": "echo",
                "intent": "sap",
                "max_running": 2,
            },
            "aa_orders": {
                "provider": "aa",
                "task": "collect_order_details",
                "intent": "aa",
                "inputs": {"customer": "ACME"},
            },
        },
    )


def vendor_hook(server, provider, body, headers=None):
    return requests.post(
        f"{server.url}/rpa/v1/providers/{provider}/webhook",
        json=body,
        headers=headers or {},
        timeout=10,
    )




def sap_notifications(sap, server, sender):
    """The Start and Success payloads SAP would send for a new job."""
    job_id = server.start_job(sender, intent="sap")

    def both():
        # SAP's default notifier body names the state in ``status``.
        sent = [n for n in list(sap.notifications) if n["status"] != "FAILED"]
        return sent if len(sent) == 2 else None

    start, success = wait_until(both, 15, "the SAP job to finish")
    assert start["invocationContext"]["rasaRpaJobId"] == job_id
    return job_id, start, success


def forged(notification, token="forged.token.value", job_id=None):
    context = dict(notification["invocationContext"], rasaRpaToken=token)
    if job_id is not None:
        context["rasaRpaJobId"] = job_id
    return {**notification, "invocationContext": context}


def test_unauthenticated_sap_flood_cannot_lock_out_the_genuine_notifier(
    vendor_server, sap
):
    sender = uuid.uuid4().hex
    job_id, start, success = sap_notifications(sap, vendor_server, sender)
    flood = [vendor_hook(vendor_server, "sap", forged(success)) for _ in range(20)]
    for genuine in (start, success):
        response = vendor_hook(vendor_server, "sap", genuine)
        assert response.status_code == 202, response.text
    assert {r.status_code for r in flood} == {401}, flood[-1].text
    assert vendor_server.job(job_id, sender)["state"] == "succeeded"


def test_sap_notifier_answers_the_same_401_whether_the_job_exists_or_not(
    vendor_server, sap
):
    sender = uuid.uuid4().hex
    job_id, _, success = sap_notifications(sap, vendor_server, sender)
    ghost = uuid.uuid4().hex
    for token in (
        "forged.token.value",
        vendor_server.keys.mint_token(job_id, "x")[:-4],
    ):
        real = vendor_hook(vendor_server, "sap", forged(success, token))
        unknown = vendor_hook(vendor_server, "sap", forged(success, token, ghost))
        assert (real.status_code, real.json()) == (unknown.status_code, unknown.json())
        assert real.status_code == 401


def test_sap_token_for_another_job_is_403_whether_that_job_exists_or_not(
    vendor_server, sap
):
    sender = uuid.uuid4().hex
    job_a, _, success = sap_notifications(sap, vendor_server, sender)
    job_b = vendor_server.start_job(sender, intent="sap")
    token_a = vendor_server.keys.mint_token(job_a, sender)
    for other in (job_b, uuid.uuid4().hex):
        response = vendor_hook(vendor_server, "sap", forged(success, token_a, other))
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"


def completed_aa_job(vendor_server, room):
    """An Automation Anywhere job run to the end, and the callback that said so."""
    sender = uuid.uuid4().hex
    job_id = vendor_server.start_job(sender, intent="aa")

    def completed():
        done = [c for c in list(room.callbacks) if c["body"]["status"] == "COMPLETED"]
        return done[0] if done else None

    return job_id, wait_until(completed, 15, "the Automation Anywhere callback")


def test_unauthenticated_aa_flood_cannot_lock_out_the_genuine_callback(
    vendor_server, room
):
    job_id, genuine = completed_aa_job(vendor_server, room)
    assert genuine["status"] == 202
    flood = [
        vendor_hook(
            vendor_server, "aa", genuine["body"], {"Authorization": "Bearer forged"}
        )
        for _ in range(20)
    ]
    response = vendor_hook(vendor_server, "aa", genuine["body"], genuine["headers"])
    assert response.status_code == 202, response.text
    assert {r.status_code for r in flood} == {401}, flood[-1].text
    assert response.json()["events"][0]["job_id"] == job_id


def test_vendor_webhooks_refuse_non_finite_numbers(vendor_server, sap, room):
    """Python's json.dumps writes NaN by default; vendors' bodies get no pass."""
    sender = uuid.uuid4().hex
    _, _, success = sap_notifications(sap, vendor_server, sender)
    body = json.dumps({**success, "output": {"ratio": float("nan")}}).encode()
    aa = json.dumps(
        {"deploymentId": "d-1", "status": "RUNNING", "progress": float("inf")}
    ).encode()
    # A valid token: data is checked once the caller is known to be genuine.
    token = vendor_server.keys.mint_token(uuid.uuid4().hex, sender)
    for provider, raw, headers in (
        ("sap", body, {}),
        ("aa", aa, {"Authorization": f"Bearer {token}"}),
    ):
        response = requests.post(
            f"{vendor_server.url}/rpa/v1/providers/{provider}/webhook",
            data=raw,
            headers={"Content-Type": "application/json", **headers},
            timeout=10,
        )
        assert response.status_code == 422, (provider, response.text)
        assert "finite" in response.json()["error"]["message"]


# -- authentication before any work (attack report items 2 and 12) -----------------

AA_BODIES = [
    {"deploymentId": "dep-1", "status": "COMPLETED"},
    {"deploymentId": "dep-1", "status": "QUEUED"},
    {"deploymentId": "dep-1", "status": "SOMETHING_NEW"},
    {"deploymentId": "dep-1", "status": ["RUN_FAILED"]},
    {"deploymentId": "dep-1", "status": {"a": 1}},
    {"deploymentId": "dep-1", "status": "RUN_FAILED"},
    {"status": "COMPLETED"},
    ["not", "an", "object"],
]


def test_aa_bad_token_is_the_same_401_for_every_body_and_calls_no_control_room(
    vendor_server, room
):
    bad = {"Authorization": "Bearer not-a-token"}
    answers = [vendor_hook(vendor_server, "aa", body, bad) for body in AA_BODIES]
    answers.append(
        requests.post(
            f"{vendor_server.url}/rpa/v1/providers/aa/webhook",
            data=b"not json",
            headers={**bad, "Content-Type": "application/json"},
            timeout=10,
        )
    )
    assert {(r.status_code, r.text) for r in answers} == {(401, answers[0].text)}, [
        r.text for r in answers
    ]
    assert not room.server.requests, [r.path for r in room.server.requests]


def test_aa_unknown_status_is_logged_cut_short(vendor_server):
    token = vendor_server.keys.mint_token(uuid.uuid4().hex, "someone")
    status = "Z" * 200_000
    response = vendor_hook(
        vendor_server,
        "aa",
        {"deploymentId": "dep-1", "status": status},
        {"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 202, response.text
    line = wait_until(
        lambda: next(
            (x for x in vendor_server.log().splitlines() if "unknown status" in x),
            None,
        ),
        15,
        "the log line",
    )
    assert len(line) < 1000, len(line)


def test_sap_bad_token_with_a_bad_status_is_401(vendor_server):
    body = {
        "status": "no such status",
        "invocationContext": {"rasaRpaJobId": "j-1", "rasaRpaToken": "forged.x.y"},
    }
    response = vendor_hook(vendor_server, "sap", body)
    assert response.status_code == 401, response.text


def test_aa_genuine_callback_without_outputs_asks_the_control_room(
    vendor_server, room
):
    job_id, genuine = completed_aa_job(vendor_server, room)
    bare = {k: v for k, v in genuine["body"].items() if k != "botOutVariables"}
    asked = len([r for r in room.server.requests if r.path == "/v3/activity/list"])
    response = vendor_hook(vendor_server, "aa", bare, genuine["headers"])
    assert response.status_code == 202, response.text
    assert response.json()["events"][0]["job_id"] == job_id
    lists = [r for r in room.server.requests if r.path == "/v3/activity/list"]
    assert len(lists) > asked


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/bots/___/mod/uipath/message", {"target": "x", "message": "hi"}),
        (
            "/rpa/v1/providers/aa/webhook",
            {"deploymentId": "d-1", "status": "RUN_FAILED", "message": "no"},
        ),
    ],
)
def test_credential_headers_that_are_not_utf8_are_401(vendor_server, path, body):
    """Sanic hands undecodable header bytes on as surrogates: never a 500."""
    for token in (b"\xff\xfe", b"eyJ\xc3(.x.y"):
        answer = post_bytes(
            vendor_server.url,
            path,
            [
                (b"Content-Type", b"application/json"),
                (b"Authorization", b"Bearer " + token),
            ],
            json.dumps(body).encode(),
        )
        assert answer.status == 401, (token, answer.body)
    assert "Traceback" not in vendor_server.log()


# -- Power Automate's unauthenticated completion callback ------------------------


@pytest.fixture
def pad() -> Iterator[FakePowerAutomate]:
    with FakePowerAutomate(step_delay=1.0) as fake:
        yield fake


@pytest.fixture
def pad_server(action_server, rasa_stand_in, pad):
    """Polling is put off for an hour: only the callback can finish a job."""
    return action_server(
        rasa_url=rasa_stand_in.url,
        providers={"pa": pad.provider_options(poll_interval="1h")},
        automations={
            "pa_orders": {
                "provider": "pa",
                "task": "collect_order_details",
                "intent": "pa",
                "inputs": {"customer": "ACME"},
            }
        },
    )


def pad_callback(server, pad, session, statuscode):
    """The body and headers Power Automate sends, for any run and status."""
    headers = {
        "x-ms-workflow-id": pad.flow_ids["collect_order_details"],
        "x-ms-run-id": session,
        "User-Agent": "EnterpriseConnectors/1.0",
    }
    body = {"statuscode": statuscode, "statecode": 0, "flowsessionid": session}
    return vendor_hook(server, "pa", body, headers)


def test_a_forged_power_automate_callback_cannot_finish_a_job(pad_server, pad):
    sender = uuid.uuid4().hex
    job_id = pad_server.start_job(sender, intent="pa")
    session = next(
        s.id for s in pad.sessions.values() if s.inputs["rasaRpaJobId"] == job_id
    )
    # "Succeeded", while Dataverse says the run still waits for a machine.
    early = pad_callback(pad_server, pad, session, 4)
    assert early.status_code == 202, early.text
    assert pad_server.job(job_id, sender)["state"] in ("pending", "running")
    pad.wait(session)
    # Now Dataverse agrees: the same call finishes the job, with the outputs
    # read from Dataverse (the callback carries none).
    done = pad_callback(pad_server, pad, session, 8)  # its status is not read
    assert done.status_code == 202, done.text
    job = pad_server.job(job_id, sender)
    assert job["state"] == "succeeded"
    assert job["outputs"]["order_count"] == 3


def test_power_automate_callbacks_need_its_headers_and_a_known_run(pad_server, pad):
    bare = vendor_hook(pad_server, "pa", {"statuscode": 4})
    assert bare.status_code == 401, bare.text
    stranger = str(uuid.uuid4())
    unknown = pad_callback(pad_server, pad, stranger, 4)
    assert unknown.status_code == 202, unknown.text
    assert unknown.json()["events"][0]["ignored"] == "unknown job"
    # Nobody asked Dataverse about a run no job of ours has.
    assert not [r for r in pad.server.requests if stranger in r.path]
