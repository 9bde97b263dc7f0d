"""The Automation Anywhere provider against a fake Control Room over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import (
    AuthenticationFailed,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.models import EventType, Job, JobEvent, new_job_id
from rasa_rpa.providers.automation_anywhere import (
    AutomationAnywhereProvider,
    from_bot_value,
    to_bot_value,
)
from rasa_rpa.providers.base import StartRequest
from rasa_rpa.security import JobKeys
from tests.providers.hooks import receive

KEYS = JobKeys("x" * 32)


@pytest.fixture
def room() -> Iterator[FakeControlRoom]:
    with FakeControlRoom(step_delay=0.1) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    """Stands in for our action server: the webhook and the events API."""
    server = FakeServer()
    server.route("POST", "/hook", lambda r: (200, {}))
    server.route("POST", "/rpa/v1/jobs/(?P<job_id>[^/]+)/events", lambda r: (202, {}))
    with server:
        yield server


@pytest.fixture
async def build(
    make_config: Callable[..., RpaConfig], room: FakeControlRoom
) -> AsyncIterator[Callable[..., AutomationAnywhereProvider]]:
    """Factory for providers pointed at ``room``; all are closed after the test."""
    made: list[AutomationAnywhereProvider] = []

    def make(**options: Any) -> AutomationAnywhereProvider:
        config = make_config(providers={"aa": room.provider_options(**options)})

        async def report(event: JobEvent) -> None:
            return None

        provider = AutomationAnywhereProvider(
            "aa", config.providers["aa"], config, report
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def request(
    task: str = "collect_order_details",
    public_url: str = "http://127.0.0.1:9",
    **inputs: Any,
) -> StartRequest:
    job = Job(new_job_id(), "collect_order_details", "aa", "conv-1", inputs=inputs)
    return StartRequest(
        job=job,
        task=task,
        inputs=inputs,
        credentials=KEYS.credentials(job.id, "conv-1", public_url),
        timeout=60,
    )


async def until(
    provider: AutomationAnywhereProvider, job: Job, kind: EventType
) -> JobEvent:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for event in await provider.poll(job):
            if event.type is kind:
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} for {job.provider_ref}")


async def started(provider: AutomationAnywhereProvider, start: StartRequest) -> Job:
    ref = await provider.start(start)
    return start.job.evolve(provider_ref=ref)


def deploy_body(room: FakeControlRoom) -> dict[str, Any]:
    deploys = [r for r in room.server.requests if r.path == "/v4/automations/deploy"]
    body: dict[str, Any] = deploys[-1].json()
    return body


async def test_typed_inputs_deploy_and_poll_yields_outputs(build, room):
    provider = build()
    start = request(customer="ACME", limit=5, urgent=True, ratio=0.5, note=None)
    job = await started(provider, start)
    body = deploy_body(room)
    assert body["botId"] == room.bot_ids["collect_order_details"]
    assert body["automationName"] == f"rasa-rpa-{job.id[:8]}"
    assert body["botInput"]["customer"] == {"type": "STRING", "string": "ACME"}
    assert body["botInput"]["limit"] == {"type": "NUMBER", "number": "5"}
    assert body["botInput"]["ratio"] == {"type": "NUMBER", "number": "0.5"}
    assert body["botInput"]["urgent"] == {"type": "BOOLEAN", "boolean": "true"}
    assert body["botInput"]["note"] == {"type": "STRING", "string": ""}
    assert body["botInput"]["rasaRpaJobId"]["string"] == job.id
    assert body["botInput"]["rasaRpaToken"]["string"] == start.credentials.token
    assert body["unattendedRequest"]["runAsUserIds"] == [7]
    assert body["callbackInfo"] == {
        "url": "http://127.0.0.1:9/rpa/v1/providers/aa/webhook",
        "headers": {"Authorization": f"Bearer {start.credentials.token}"},
    }
    assert room.deployments[job.provider_ref].inputs["urgent"] is True

    running = await until(provider, job, EventType.STARTED)
    assert running.id == f"aa:{job.provider_ref}:RUNNING"
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.id == f"aa:{job.provider_ref}:COMPLETED"
    assert done.source == "aa-poll"
    assert done.data["outputs"] == {
        "order_count": 3,
        "report_path": "/reports/orders-ACME.csv",
    }


async def test_callback_carries_the_job_token_and_is_understood(build, room, receiver):
    provider = build(callback_url=f"{receiver.url}/hook")
    start = request(public_url=receiver.url, customer="ACME")
    job = await started(provider, start)
    await until(provider, job, EventType.SUCCEEDED)
    deadline = time.monotonic() + 5
    while len([r for r in receiver.requests if r.path == "/hook"]) < 2:
        assert time.monotonic() < deadline, room.callbacks
        await asyncio.sleep(0.05)

    hooks = [r for r in receiver.requests if r.path == "/hook"]
    assert {r.headers["authorization"] for r in hooks} == {
        f"Bearer {start.credentials.token}"
    }
    events = [
        event
        for hook in hooks
        for event in await receive(provider, hook.headers, hook.body)
    ]
    assert [e.type for e in events] == [EventType.STARTED, EventType.SUCCEEDED]
    assert {e.provider_ref for e in events} == {job.provider_ref}
    assert {
        provider.webhook_credential(hook.headers, hook.body).token for hook in hooks
    } == {start.credentials.token}
    assert events[1].event_id == f"aa:{job.provider_ref}:COMPLETED"
    assert events[1].data["outputs"]["order_count"] == 3

    # The bot also reported progress straight to the events API.
    progress = [r for r in receiver.requests if r.path.endswith("/events")]
    assert progress[0].path == f"/rpa/v1/jobs/{job.id}/events"
    assert progress[0].headers["authorization"] == f"Bearer {start.credentials.token}"
    assert progress[0].json()["type"] == "job.progress"


async def test_token_is_reused_while_valid_and_renewed_after_expiry(build, room):
    provider = build()
    await provider.start(request(customer="ACME"))
    await provider.start(request(customer="Globex"))
    assert room.token_requests == 1
    room.expire_tokens()
    assert await provider.start(request(customer="ACME"))
    assert room.token_requests == 2


async def test_bad_api_key_says_what_to_check(build, room):
    provider = build(api_key="wrong-key-123")
    with pytest.raises(ProviderError) as caught:
        await provider.start(request(customer="ACME"))
    assert "check username and api_key" in caught.value.message
    assert "wrong-key-123" not in str(caught.value)
    assert not isinstance(caught.value, ProviderUnavailable)


async def test_wrong_url_says_it_is_not_a_control_room(build, room):
    provider = build(url=f"{room.url}/nope")
    with pytest.raises(ProviderError) as caught:
        await provider.start(request(customer="ACME"))
    assert "url does not look like a Control Room" in caught.value.message
    assert f"{room.url}/nope/v2/authentication not found" in caught.value.message


async def test_unknown_bots_are_refused(build, room):
    provider = build()
    with pytest.raises(ProviderError, match="unknown bot 'nope'"):
        await provider.start(request(task="nope"))
    with pytest.raises(ProviderError, match="unknown bot '999'"):
        await provider.start(request(task="999"))


async def test_server_errors_are_unavailable(build, room):
    provider = build()
    room.fail_next_requests(1, status=503)
    with pytest.raises(ProviderUnavailable, match="503"):
        await provider.start(request(customer="ACME"))


async def test_timeouts_are_unavailable(build):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        provider = build(url=f"http://127.0.0.1:{port}", timeout="0.3s")
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await provider.start(request(customer="ACME"))
    finally:
        silent.close()


async def test_failed_run_carries_the_bots_message(build, room):
    provider = build()
    job = await started(provider, request(customer="Nobody Inc"))
    failed = await until(provider, job, EventType.FAILED)
    assert failed.id == f"aa:{job.provider_ref}:RUN_FAILED"
    assert failed.data["error"].startswith("Unknown customer 'Nobody Inc'")


async def test_lost_callbacks_are_recovered_by_polling(build, room, receiver):
    room.drop_callbacks = True
    provider = build(callback_url=f"{receiver.url}/hook")
    job = await started(provider, request(customer="ACME"))
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.data["outputs"]["order_count"] == 3
    assert not [r for r in receiver.requests if r.path == "/hook"]


async def test_outputs_from_the_execution_when_the_list_omits_them(build, room):
    room.list_outputs = False
    provider = build()
    job = await started(provider, request(customer="Globex"))
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.data["outputs"]["order_count"] == 2


async def test_webhook_needs_a_bearer_token_and_the_ids(build):
    provider = build()
    done = {"deploymentId": "d-1", "status": "COMPLETED", "botOutVariables": {}}
    body = json.dumps(done).encode()
    with pytest.raises(AuthenticationFailed):
        await receive(provider, {}, body)
    with pytest.raises(AuthenticationFailed):
        await receive(provider, {"authorization": "Basic abc"}, body)
    auth = {"authorization": "Bearer tok"}
    with pytest.raises(InvalidPayload) as caught:
        await receive(provider, auth, b'{"status": "COMPLETED"}')
    assert caught.value.status == 422
    with pytest.raises(InvalidPayload) as caught:
        await receive(provider, auth, b"not json")
    assert caught.value.status == 400
    assert (
        await receive(
            provider, auth, b'{"deploymentId": "d-1", "status": "QUEUED", "userId": 7}'
        )
        == []
    )
    [event] = await receive(provider, auth, body)
    assert provider.webhook_credential(auth, body).token == "tok"
    assert (event.type, event.provider_ref) == (EventType.SUCCEEDED, "d-1")
    assert event.data == {"outputs": {}}


async def test_cancel_stops_the_activity(build, room):
    room.step_delay = 0.5
    provider = build()
    job = await started(provider, request(customer="ACME"))
    await provider.cancel(job)
    cancelled = await until(provider, job, EventType.CANCELLED)
    assert cancelled.id == f"aa:{job.provider_ref}:RUN_ABORTED"
    deployment = room.deployments[job.provider_ref]
    assert deployment.status == "RUN_ABORTED"
    manage = [r for r in room.server.requests if r.path == "/v3/activity/manage"]
    assert manage[0].json() == {
        "stop_executions": {"execution_ids": [deployment.activity_id]}
    }


async def until_status(room: FakeControlRoom, ref: str, status: str) -> None:
    deadline = time.monotonic() + 5
    while room.deployments[ref].status != status:
        assert time.monotonic() < deadline, room.deployments[ref].status
        await asyncio.sleep(0.05)


async def test_cancel_stops_a_deployment_the_list_does_not_show_yet(build, room):
    room.step_delay, room.list_delay = 0.6, 0.3
    provider = build()
    job = await started(provider, request(customer="ACME"))
    await provider.cancel(job)  # at once: the activity is not listed yet
    await until_status(room, job.provider_ref, "RUN_ABORTED")


async def test_a_deployment_never_listed_cannot_be_stopped(build, room):
    room.step_delay, room.list_delay = 5, 60
    provider = build(stop_wait="0.3s")
    job = await started(provider, request(customer="ACME"))
    with pytest.raises(ProviderError, match="could not stop"):
        await provider.cancel(job)


async def test_a_refused_stop_is_an_error_naming_the_answer(build, room):
    room.step_delay, room.refuse_stops = 5, True
    provider = build()
    job = await started(provider, request(customer="ACME"))
    with pytest.raises(ProviderError, match=r"refused to stop.*403") as caught:
        await provider.cancel(job)
    assert not isinstance(caught.value, ProviderUnavailable)
    assert room.deployments[job.provider_ref].status != "RUN_ABORTED"


def test_the_fake_rejects_a_stop_body_it_does_not_know(room):
    login = httpx.post(
        f"{room.url}/v2/authentication",
        json={"username": "rasa-bot", "apiKey": "fake-api-key"},
    )
    headers = {"X-Authorization": login.json()["token"]}
    manage = f"{room.url}/v3/activity/manage"
    for body in (
        {"stop": {"executionIds": ["x"]}},
        {"stop_executions": {"execution_ids": []}},
        {"stop_executions": ["x"]},
    ):
        assert httpx.post(manage, json=body, headers=headers).status_code == 400


async def test_logs_in_with_v2_authentication(build, room):
    provider = build()
    await provider.start(request(customer="ACME"))
    logins = [r.path for r in room.server.requests if "authentication" in r.path]
    assert logins == ["/v2/authentication"]


async def test_falls_back_to_v1_where_v2_is_absent(build):
    with FakeControlRoom(auth_versions=("v1",), step_delay=0.1) as old:
        provider = build(url=old.url, bots=old.bot_ids)
        assert await provider.start(request(customer="ACME"))
        assert await provider.start(request(customer="ACME"))
        logins = [r.path for r in old.server.requests if "authentication" in r.path]
    assert logins == ["/v2/authentication", "/v1/authentication"]


async def test_the_token_is_renewed_from_its_exp_claim_without_a_401(build):
    # Tokens that live 30 s are inside the renewal margin from the start:
    # every call must log in again, none may be refused first.
    with FakeControlRoom(token_ttl=30, step_delay=0.1) as short:
        provider = build(url=short.url, bots=short.bot_ids)
        await provider.start(request(customer="ACME"))
        await provider.start(request(customer="ACME"))
        deploys = [r for r in short.server.requests if r.path.endswith("deploy")]
        assert short.token_requests == 2
    assert len(deploys) == 2  # none was refused and sent again


async def test_the_conversation_id_travels_in_bot_input(build, room):
    provider = build()
    start = request(customer="ACME")
    await provider.start(start)
    sent = deploy_body(room)["botInput"]
    assert sent["rasaRpaConversationId"] == {"type": "STRING", "string": "conv-1"}
    renamed = build(conversation_input="sConversation")
    await renamed.start(request(customer="ACME"))
    sent = deploy_body(room)["botInput"]
    assert sent["sConversation"] == {"type": "STRING", "string": "conv-1"}
    assert "rasaRpaConversationId" not in sent


async def test_cancel_before_a_deployment_is_a_no_op(build, room):
    provider = build()
    await provider.cancel(request().job)
    assert not room.server.requests


def test_typed_values_round_trip():
    for value in ["x", "", 3, 2.5, True, False, [1, "a"], {"k": 1}]:
        assert from_bot_value(to_bot_value(value)) == value
    assert from_bot_value({"type": "NUMBER", "number": "3"}) == 3
    assert from_bot_value({"type": "DATETIME", "datetime": "2024"}) == "2024"


async def test_a_callback_without_outputs_fetches_them(build, room):
    room.list_outputs = False
    provider = build()
    job = await started(provider, request(customer="Umbrella Corp"))
    await until(provider, job, EventType.SUCCEEDED)
    auth = {"authorization": "Bearer tok"}
    bare = {"deploymentId": job.provider_ref, "status": "COMPLETED"}
    [event] = await receive(provider, auth, json.dumps(bare).encode())
    assert event.data["outputs"]["order_count"] == 1
    # Not listed (yet): leave the success to the poller rather than lose outputs.
    bare["deploymentId"] = "not-there"
    assert await receive(provider, auth, json.dumps(bare).encode()) == []
