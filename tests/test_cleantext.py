"""Text from vendors is cleaned, never refused; text from the chat is refused at start.

A NUL byte or a lone surrogate in a genuine vendor's webhook or status
answer used to be a 422 (UiPath then switches the tenant's webhook off for
an hour) or an error on every poll, leaving the job to expire.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator, sign
from tests.conftest import ActionServer, running_action_server
from tests.rawhttp import post_bytes
from tests.waiting import wait_until

REPLACEMENT = "\ufffd"
#: What vendors' robots may well say: a NUL and a lone surrogate.
GARBLED = "Unknown customer 'a\x00b\ud800'"
CLEANED = f"Unknown customer 'a{REPLACEMENT}b{REPLACEMENT}'"
UIPATH_SECRET = "uipath-hook-secret"


def _garbled(inputs: dict[str, Any]) -> dict[str, Any]:
    raise ProcessFailed(GARBLED)


@pytest.fixture(scope="module")
def orchestrator() -> Iterator[FakeOrchestrator]:
    """Jobs stay pending: the test plays Orchestrator's webhooks itself."""
    with FakeOrchestrator(step_delay=60) as fake:
        fake.drop_webhooks = True
        yield fake


@pytest.fixture(scope="module")
def polled() -> Iterator[FakeOrchestrator]:
    """Jobs fault at once with garbled text, and only polling can tell."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROCESSES, "garbled", _garbled)
        with FakeOrchestrator(step_delay=0.05, processes=["garbled"]) as fake:
            fake.drop_webhooks = True
            yield fake


@pytest.fixture(scope="module")
def sap() -> Iterator[FakeSapIrpa]:
    with FakeSapIrpa(step_delay=60) as fake:
        fake.drop_notifications = True
        yield fake


@pytest.fixture(scope="module")
def room() -> Iterator[FakeControlRoom]:
    with FakeControlRoom(step_delay=60) as fake:
        fake.drop_callbacks = True
        yield fake


def uipath(fake: FakeOrchestrator, **extra: Any) -> dict[str, Any]:
    return {
        "type": "uipath",
        "url": fake.orchestrator_url,
        "token_url": fake.token_url,
        "client_id": "fake-client",
        "client_secret": "fake-secret",
        "folder_id": 1,
        "webhook_secret": UIPATH_SECRET,
        **extra,
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    orchestrator: FakeOrchestrator,
    polled: FakeOrchestrator,
    sap: FakeSapIrpa,
    room: FakeControlRoom,
) -> Iterator[ActionServer]:
    customer = {"customer": {"entity": "customer"}}
    with running_action_server(
        tmp_path_factory.mktemp("cleantext"),
        providers={
            "uipath": uipath(orchestrator, poll_interval="1h"),
            "uipoll": uipath(polled, poll_interval=0.2),
            "sap": sap.provider_options(),
            "aa": room.provider_options(),
        },
        automations={
            name: {
                "provider": provider,
                "task": task,
                "intent": name,
                "inputs": customer,
            }
            for name, provider, task in [
                ("ui", "uipath", "echo"),
                ("uipoll", "uipoll", "garbled"),
                ("sap", "sap", "echo"),
                ("aa", "aa", "collect_order_details"),
            ]
        },
    ) as running:
        yield running


def start(server: ActionServer, intent: str, customer: str = "ACME") -> tuple[str, str]:
    sender = uuid.uuid4().hex
    entities = [{"entity": "customer", "value": customer}]
    return server.start_job(sender, intent=intent, entities=entities), sender




def hook(server: ActionServer, provider: str, raw: bytes, **headers: str):
    return requests.post(
        f"{server.url}/rpa/v1/providers/{provider}/webhook",
        data=raw,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


def uipath_hook(server: ActionServer, body: dict[str, Any]) -> requests.Response:
    raw = json.dumps(body).encode()
    return hook(
        server, "uipath", raw, **{"X-UiPath-Signature": sign(UIPATH_SECRET, raw)}
    )


def orchestrator_id(fake: FakeOrchestrator, job_id: str) -> int:
    def find() -> int | None:
        for ref, job in list(fake.jobs.items()):
            if job_id in str(job.get("InputArguments")):
                return ref
        return None

    found: int = wait_until(find, 15, "the job in Orchestrator")
    return found


def test_a_faulted_webhook_with_garbled_text_is_cleaned_not_refused(
    server, orchestrator
):
    job_id, sender = start(server, "ui")
    ref = orchestrator_id(orchestrator, job_id)
    response = uipath_hook(
        server,
        {
            "Type": "job.faulted",
            "EventId": uuid.uuid4().hex,
            "Job": {"Id": ref, "State": "Faulted", "Info": GARBLED},
        },
    )
    assert response.status_code == 202, response.text
    job = server.job(job_id, sender)
    assert (job["state"], job["error"]) == ("failed", CLEANED)


def test_a_uipath_signature_that_is_not_utf8_is_401(server):
    raw = b'{"Type": "job.faulted", "Job": {"Id": 1}}'
    signature = sign(UIPATH_SECRET, raw).encode() + b"\xff"
    answer = post_bytes(
        server.url,
        "/rpa/v1/providers/uipath/webhook",
        [(b"Content-Type", b"application/json"), (b"X-UiPath-Signature", signature)],
        raw,
    )
    assert answer.status == 401, answer.body


def test_completed_webhook_outputs_are_cleaned(server, orchestrator):
    job_id, sender = start(server, "ui")
    ref = orchestrator_id(orchestrator, job_id)
    response = uipath_hook(
        server,
        {
            "Type": "job.completed",
            "EventId": uuid.uuid4().hex,
            "Job": {
                "Id": ref,
                "State": "Successful",
                "OutputArguments": {"n": GARBLED},
            },
        },
    )
    assert response.status_code == 202, response.text
    job = server.job(job_id, sender)
    assert (job["state"], job["outputs"]) == ("succeeded", {"n": CLEANED})


def test_a_poll_that_reads_garbled_text_fails_the_job(server):
    job_id, sender = start(server, "uipoll")
    job = server.wait_job(job_id, sender, "failed", timeout=10)
    assert job["error"] == CLEANED
    assert "unexpected error" not in server.log()


def sap_notifier(server: ActionServer, sap: FakeSapIrpa) -> tuple[str, str, dict]:
    """A job SAP runs, and the notifier body SAP would send for it."""
    job_id, sender = start(server, "sap")

    def run() -> dict[str, Any] | None:
        for uid, found in list(sap.runs.items()):
            if job_id in json.dumps(found, default=str):
                return {"uid": uid, **found}
        return None

    found = wait_until(run, 15, "the SAP run")
    context = found["invocationContext"]
    return job_id, sender, {"invocationContext": context, "jobUid": found["uid"]}


def test_sap_failure_and_output_text_are_cleaned(server, sap):
    job_id, sender, base = sap_notifier(server, sap)
    failure = json.dumps({**base, "status": "FAILED", "error": GARBLED}).encode()
    response = hook(server, "sap", failure)
    assert response.status_code == 202, response.text
    job = server.job(job_id, sender)
    assert (job["state"], job["error"]) == ("failed", CLEANED)

    job_id, sender, base = sap_notifier(server, sap)
    output = json.dumps({"n": GARBLED})  # SAP templates send output as JSON text
    success = json.dumps({**base, "status": "COMPLETED", "output": output})
    response = hook(server, "sap", success.encode())
    assert response.status_code == 202, response.text
    job = server.job(job_id, sender)
    assert (job["state"], job["outputs"]) == ("succeeded", {"n": CLEANED})


def test_sap_refuses_utf16_and_duplicate_keys_like_the_native_route(server, sap):
    job_id, sender, base = sap_notifier(server, sap)
    success = json.dumps({**base, "status": "COMPLETED"})
    response = hook(server, "sap", success.encode("utf-16"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"
    twice = success[:-1] + ', "status": "FAILED"}'
    response = hook(server, "sap", twice.encode())
    assert response.status_code == 422, response.text
    assert "'status'" in response.json()["error"]["message"]
    assert server.job(job_id, sender)["state"] != "succeeded"


def test_aa_failure_message_is_cleaned(server, room):
    known = set(room.deployments)
    job_id, sender = start(server, "aa")

    def deployment() -> Any:
        fresh = [d for k, d in list(room.deployments.items()) if k not in known]
        return fresh[0] if fresh else None

    found = wait_until(deployment, 15, "the Automation Anywhere deployment")
    body = {"deploymentId": found.id, "status": "RUN_FAILED", "message": GARBLED}
    response = hook(
        server, "aa", json.dumps(body).encode(), **found.callback["headers"]
    )
    assert response.status_code == 202, response.text
    job = server.job(job_id, sender)
    assert (job["state"], job["error"]) == ("failed", CLEANED)


@pytest.mark.parametrize("intent", ["ui", "sap", "aa"])
@pytest.mark.parametrize("customer", ["a\x00b", "\ud800"])
def test_unclean_chat_input_is_refused_before_any_provider_sees_it(
    server, orchestrator, sap, room, intent, customer
):
    before = (len(orchestrator.jobs), len(sap.runs), len(room.deployments))
    sender = uuid.uuid4().hex
    result = server.run_action(
        "action_start_rpa_job",
        sender,
        intent=intent,
        entities=[{"entity": "customer", "value": customer}],
    )
    [reply] = result["responses"]
    assert reply["text"].startswith("Sorry, I couldn't start"), reply
    assert "the customer you gave" in reply["text"], reply
    [slot] = [e for e in result["events"] if e.get("name") == "rpa_job_id"]
    job = server.job(slot["value"], sender)
    assert job["state"] == "failed"
    assert (len(orchestrator.jobs), len(sap.runs), len(room.deployments)) == before


def test_clean_replaces_nul_and_lone_surrogates_everywhere() -> None:
    from rasa_rpa.cleantext import clean, text_problem

    value = {"k\x00": ["a\ud800", {"b": "\udfff\x00"}], "ok": "\U0001f600 1", "n": 2}
    assert clean(value) == {
        f"k{REPLACEMENT}": [f"a{REPLACEMENT}", {"b": REPLACEMENT * 2}],
        "ok": "\U0001f600 1",
        "n": 2,
    }
    assert text_problem("fine \U0001f600") is None
    assert "NUL" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("\ud800") or "")
