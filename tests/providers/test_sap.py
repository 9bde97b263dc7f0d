"""The SAP provider against the fake SAP tenant, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import StartRequest, WebhookCredential, WebhookEvent
from rasa_rpa.providers.sap import SapProvider
from rasa_rpa.security import JobKeys
from tests.providers.hooks import receive
from tests.waiting import async_wait_until

KEYS = JobKeys("x" * 32)


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeServer]:
    """Stands in for rasa-rpa: takes notifier calls and the bot's progress calls."""

    def ok(request: FakeRequest) -> tuple[int, Any]:
        return 200, {"ok": True}

    server = FakeServer()
    server.route("POST", "/.*", ok)
    with server:
        yield server


@pytest.fixture
def notify_path() -> str:
    """Each test's notifier calls go to their own path on the shared receiver."""
    return f"/notify/{uuid.uuid4().hex}"


@pytest.fixture
def fake(receiver: FakeServer, notify_path: str) -> Iterator[FakeSapIrpa]:
    with FakeSapIrpa(step_delay=0.05, notifier_url=receiver.url + notify_path) as sap:
        yield sap


def options(sap: FakeSapIrpa, **changes: Any) -> dict[str, Any]:
    return sap.provider_options(**changes)


@pytest.fixture
async def build(
    make_config: Callable[..., RpaConfig],
) -> AsyncIterator[Callable[..., SapProvider]]:
    built: list[SapProvider] = []

    async def report(event: JobEvent) -> None:
        return None

    def make(settings: dict[str, Any]) -> SapProvider:
        config = make_config(providers={"sap": settings})
        provider = SapProvider("sap", config.providers["sap"], config, report)
        built.append(provider)
        return provider

    yield make
    for provider in built:
        await provider.aclose()


@pytest.fixture
def provider(build: Callable[..., SapProvider], fake: FakeSapIrpa) -> SapProvider:
    return build(options(fake))


@pytest.fixture
def parser(build: Callable[..., SapProvider]) -> SapProvider:
    """A provider for notifier parsing only: no SAP behind it."""
    return build(
        {
            "type": "sap",
            "service_key_url": "http://127.0.0.1:9",
            "client_id": "id",
            "client_secret": "secret",
            "api_key": "key",
            "triggers": {"echo": "http://127.0.0.1:9/runtime/v1/apiTriggers/e/runs"},
        }
    )


def start_request(
    task: str, inputs: dict[str, Any], public_url: str = "http://127.0.0.1:9"
) -> StartRequest:
    conversation = uuid.uuid4().hex
    job = Job(uuid.uuid4().hex, task, "sap", conversation, inputs=inputs)
    creds = KEYS.credentials(job.id, conversation, public_url)
    return StartRequest(
        job=job, task=task, inputs=inputs, credentials=creds, timeout=60
    )


async def notifier_calls(
    receiver: FakeServer, path: str, count: int
) -> list[FakeRequest]:
    deadline = time.monotonic() + 5
    while True:
        calls = [r for r in receiver.requests if r.path == path]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        await asyncio.sleep(0.02)


async def translate(provider: SapProvider, calls: list[FakeRequest]) -> list[Any]:
    events: list[WebhookEvent] = []
    for call in calls:
        events += await receive(provider, call.headers, call.body)
    return events


async def test_happy_path_starts_with_inputs_and_reads_outputs_from_the_notifier(
    provider: SapProvider, fake: FakeSapIrpa, receiver: FakeServer, notify_path: str
) -> None:
    request = start_request("collect_order_details", {"customer": "ACME"}, receiver.url)
    ref = await provider.start(request)
    assert ref in fake.runs
    trigger_call = next(r for r in fake.server.requests if "apiTriggers" in r.path)
    assert trigger_call.headers["irpa-api-key"] == fake.api_key
    sent = trigger_call.json()
    assert sent["input"] == {"customer": "ACME"}
    assert sent["invocationContext"] == {
        "rasaRpaJobId": request.job.id,
        "conversationId": request.job.conversation_id,
        "rasaRpaEventsUrl": request.credentials.events_url,
        "rasaRpaToken": request.credentials.token,
    }

    calls = await notifier_calls(receiver, notify_path, 2)
    events = await translate(provider, calls)
    assert [e.type for e in events] == [EventType.STARTED, EventType.SUCCEEDED]
    done = events[-1]
    assert done.data["outputs"]["order_count"] == 3
    assert done.event_id == f"sap:{ref}:Success"
    assert (done.job_id, done.provider_ref) == (request.job.id, ref)
    credential = provider.webhook_credential(calls[-1].headers, calls[-1].body)
    assert credential == WebhookCredential(request.credentials.token, request.job.id)
    # The bot's own progress call reached the callback URL with the job token.
    progress = next(r for r in receiver.requests if r.path.endswith("/events"))
    assert progress.headers["authorization"] == f"Bearer {request.credentials.token}"
    assert progress.json()["type"] == "job.progress"


async def test_failure_notifier_carries_the_error_details(
    provider: SapProvider, fake: FakeSapIrpa, receiver: FakeServer, notify_path: str
) -> None:
    ref = await provider.start(
        start_request("collect_order_details", {"customer": "Nobody Inc"})
    )
    assert ref is not None
    assert fake.wait(ref)["status"] == "FAILURE"
    events = await translate(provider, await notifier_calls(receiver, notify_path, 2))
    failed = events[-1]
    assert failed.type is EventType.FAILED
    assert failed.data["error"].startswith("Unknown customer 'Nobody Inc'")


async def test_token_is_reused_and_a_pasted_token_url_still_works(
    build: Callable[..., SapProvider], fake: FakeSapIrpa
) -> None:
    provider = build(options(fake, service_key_url=f"{fake.url}/oauth/token/"))
    for _ in range(2):
        await provider.start(start_request("echo", {"a": 1}))
    assert fake.token_requests == 1


async def test_an_expired_token_is_renewed_once(
    provider: SapProvider, fake: FakeSapIrpa
) -> None:
    await provider.start(start_request("echo", {}))
    fake.expire_tokens()
    assert await provider.start(start_request("echo", {}))
    assert fake.token_requests == 2
    assert provider.auth.fetches == 2


async def test_bad_client_secret_points_at_the_service_key(
    build: Callable[..., SapProvider],
    fake: FakeSapIrpa,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = build(options(fake, client_secret="wrong-secret-123"))
    with pytest.raises(ProviderError) as info:
        await provider.start(start_request("echo", {}))
    assert not isinstance(info.value, ProviderUnavailable)
    assert "clientid/clientsecret from the BTP service key" in str(info.value)
    assert "wrong-secret-123" not in str(info.value) + caplog.text


async def test_bad_api_key_needs_trigger_execute(
    build: Callable[..., SapProvider], fake: FakeSapIrpa
) -> None:
    provider = build(options(fake, api_key="not-the-key"))
    with pytest.raises(ProviderError, match=r"403.*trigger_execute") as info:
        await provider.start(start_request("echo", {}))
    assert "not-the-key" not in str(info.value)


async def test_unknown_trigger_names_the_rpa_yml_key(provider: SapProvider) -> None:
    with pytest.raises(
        ProviderError, match=r"unknown API trigger: check triggers\.no_such_bot"
    ):
        await provider.start(start_request("no_such_bot", {}))


@pytest.mark.parametrize(
    ("status", "hint"),
    [(415, "Content-Type: application/json"), (422, "inputs don't match")],
)
async def test_refusals_are_explained(
    provider: SapProvider, fake: FakeSapIrpa, status: int, hint: str
) -> None:
    await provider.start(start_request("echo", {}))  # holds a token now
    fake.fail_next_requests(1, status)
    with pytest.raises(ProviderError, match=hint):
        await provider.start(start_request("echo", {}))


async def test_server_errors_are_retryable(
    provider: SapProvider, fake: FakeSapIrpa
) -> None:
    fake.fail_next_requests(1, 503)
    with pytest.raises(ProviderUnavailable, match="503"):
        await provider.start(start_request("echo", {}))


async def test_a_silent_server_times_out(
    build: Callable[..., SapProvider], fake: FakeSapIrpa
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        provider = build(options(fake, service_key_url=url, timeout="0.2s"))
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await provider.start(start_request("echo", {}))


async def test_cancel_and_expiry_in_sap_end_the_job(
    build: Callable[..., SapProvider], receiver: FakeServer, notify_path: str
) -> None:
    with FakeSapIrpa(step_delay=5, notifier_url=receiver.url + notify_path) as slow:
        provider = build(options(slow))
        cancelled = await provider.start(start_request("echo", {}))
        expired = await provider.start(start_request("echo", {}))
        assert cancelled and expired
        slow.cancel_run(cancelled)
        slow.expire_run(expired)
        events = await translate(
            provider, await notifier_calls(receiver, notify_path, 2)
        )
    assert [(e.type, e.provider_ref) for e in events] == [
        (EventType.CANCELLED, cancelled),
        (EventType.FAILED, expired),
    ]
    assert events[1].data["error"] == "the SAP job expired"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SUCCESS", EventType.SUCCEEDED),
        ("failure", EventType.FAILED),
        ("Start", EventType.STARTED),
        ("CANCEL", EventType.CANCELLED),
    ],
)
async def test_event_names_in_any_case(
    parser: SapProvider, name: str, expected: EventType
) -> None:
    body = {"event": name, "jobUid": "u1", "invocationContext": context()}
    (event,) = await receive(parser, {}, json.dumps(body).encode())
    assert event.type is expected
    assert event.event_id == f"sap:u1:{name.capitalize()}"


def context(**changes: Any) -> dict[str, Any]:
    return {"rasaRpaJobId": "job-1", "rasaRpaToken": "tok", **changes}


async def test_errordetails_field_is_accepted(parser: SapProvider) -> None:
    body = {
        "event": "Failure",
        "jobUid": "u1",
        "invocationContext": context(),
        "errorDetails": "agent offline",
    }
    (event,) = await receive(parser, {}, json.dumps(body).encode())
    assert event.data == {"error": "agent offline"}


async def test_a_notifier_without_token_is_refused(parser: SapProvider) -> None:
    body = {"event": "Success", "jobUid": "u1", "invocationContext": {"a": 1}}
    with pytest.raises(AuthenticationFailed, match=r"invocationContext\.rasaRpa"):
        await receive(parser, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (b"not json", "JSON", 400),
        (b"[]", "object", 422),
        (b'{"event": "Success", "jobUid": "u"}', "invocationContext", 422),
        (json.dumps({"event": "Done", "invocationContext": context()}), "event", 422),
        (
            json.dumps(
                {"event": "Start", "invocationContext": context(rasaRpaJobId=1)}
            ),
            "rasaRpaJobId",
            422,
        ),
        (
            json.dumps(
                {"event": "Success", "output": [1], "invocationContext": context()}
            ),
            "output",
            422,
        ),
    ],
)
async def test_malformed_notifier_names_the_field(
    parser: SapProvider, body: bytes | str, field: str, status: int
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(InvalidPayload, match=field) as info:
        await receive(parser, {}, raw)
    assert info.value.status == status


async def test_poll_and_cancel_without_an_api_do_nothing(
    provider: SapProvider, fake: FakeSapIrpa
) -> None:
    job = Job("j", "echo", "sap", "c", provider_ref="u1")
    assert await provider.poll(job) == []
    before = len(fake.server.requests)
    await provider.cancel(job)
    assert len(fake.server.requests) == before


async def test_cancel_url_template_is_called(
    build: Callable[..., SapProvider], fake: FakeSapIrpa, receiver: FakeServer
) -> None:
    provider = build(
        options(fake, cancel_url_template=f"{receiver.url}/cancel/{{jobUid}}")
    )
    await provider.cancel(Job("j", "echo", "sap", "c", provider_ref="u1"))
    call = next(r for r in receiver.requests if r.path == "/cancel/u1")
    assert call.headers["irpa-api-key"] == fake.api_key


def test_missing_settings_are_config_errors(
    build: Callable[..., SapProvider], fake: FakeSapIrpa
) -> None:
    with pytest.raises(ConfigError, match="client_secret"):
        build(options(fake, client_secret=""))
    with pytest.raises(ConfigError, match="triggers"):
        build(options(fake, trigger_url_template=None))


async def test_a_task_without_trigger_says_where_to_add_it(
    build: Callable[..., SapProvider], fake: FakeSapIrpa
) -> None:
    provider = build(
        options(
            fake, trigger_url_template=None, triggers={"echo": fake.trigger_url("echo")}
        )
    )
    assert await provider.start(start_request("echo", {}))
    with pytest.raises(ProviderError, match=r"add triggers\.other"):
        await provider.start(start_request("other", {}))


def test_the_fake_refuses_like_sap(
    fake: FakeSapIrpa, receiver: FakeServer, notify_path: str
) -> None:
    token = httpx.post(
        f"{fake.url}/oauth/token?grant_type=client_credentials",
        auth=(fake.client_id, fake.client_secret),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "irpa-api-key": fake.api_key}
    url = fake.trigger_url("echo")
    assert httpx.post(url, content=b"{}", headers=headers).status_code == 415
    assert httpx.post(url, json={"x": 1}, headers=headers).status_code == 422
    assert httpx.post(url, json={"input": []}, headers=headers).status_code == 422
    fake.drop_notifications = True
    answer = httpx.post(url, json={"input": {"a": 1}}, headers=headers)
    assert answer.status_code == 200
    assert fake.wait(answer.json()["jobUid"])["output"] == {"a": 1}
    assert [n["status"] for n in fake.notifications] == ["RUNNING", "COMPLETED"]
    assert not [r for r in receiver.requests if r.path == notify_path]


async def test_sap_default_notifier_body_is_understood(
    provider: SapProvider, fake: FakeSapIrpa, receiver: FakeServer, notify_path: str
) -> None:
    # The fake's notifier has no custom payload: it sends SAP's own body.
    ref = await provider.start(
        start_request("collect_order_details", {"customer": "ACME"}, receiver.url)
    )
    calls = await notifier_calls(receiver, notify_path, 2)
    assert "event" not in calls[0].json()
    events = await translate(provider, calls)
    assert [e.type for e in events] == [EventType.STARTED, EventType.SUCCEEDED]
    assert events[1].data["outputs"]["order_count"] == 3
    assert events[1].event_id == f"sap:{ref}:Success"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("status", "COMPLETED", EventType.SUCCEEDED),
        ("status", "FAILED", EventType.FAILED),
        ("status", "CANCELED", EventType.CANCELLED),
        ("status", "RUNNING", EventType.STARTED),
        ("status", "EXPIRED", EventType.FAILED),
        ("jobStatus", "SUCCESS", EventType.SUCCEEDED),
        ("event", "Cancel", EventType.CANCELLED),
    ],
)
async def test_status_under_the_names_sap_uses(
    parser: SapProvider, field: str, value: str, expected: EventType
) -> None:
    body = {field: value, "jobUid": "u1", "invocationContext": context()}
    (event,) = await receive(parser, {}, json.dumps(body).encode())
    assert event.type is expected


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        ("Agent offline", "Agent offline"),
        ({"message": "Agent offline", "code": 17}, "Agent offline"),
        ([{"message": "Agent offline"}], "Agent offline"),
        ('{"message": "Agent offline"}', "Agent offline"),
        ({"code": 17}, '{"code": 17}'),
    ],
)
async def test_failure_details_of_any_shape_become_the_reason(
    build: Callable[..., SapProvider],
    receiver: FakeServer,
    notify_path: str,
    details: Any,
    shown: str,
) -> None:
    with FakeSapIrpa(step_delay=5, notifier_url=receiver.url + notify_path) as slow:
        provider = build(options(slow))
        ref = await provider.start(start_request("echo", {}))
        assert ref
        slow.fail_run(ref, details)
        (call,) = await notifier_calls(receiver, notify_path, 1)
    (event,) = await translate(provider, [call])
    assert event.type is EventType.FAILED
    assert event.data["error"] == shown


def documented_templates() -> list[str]:
    """The notifier payload templates the SAP provider's docs page shows."""
    docs = Path(__file__).parents[2] / "docs" / "providers" / "sap.md"
    section = docs.read_text()
    return [block for block in section.split("```json\n")[1:] if "${" in block]


#: The notifications that end the two runs of the template test.
ENDED = {EventType.SUCCEEDED, EventType.FAILED}


@pytest.mark.parametrize("details", ["Agent offline", {"message": "Agent offline"}])
async def test_documented_templates_send_valid_json_for_every_value_type(
    build: Callable[..., SapProvider],
    receiver: FakeServer,
    notify_path: str,
    details: Any,
) -> None:
    templates = documented_templates()
    assert templates
    for template in templates:
        template = template.split("```", 1)[0]
        notifier = receiver.url + notify_path
        with FakeSapIrpa(
            step_delay=0.05, notifier_url=notifier, notifier_template=template
        ) as sap:
            provider = build(options(sap))
            done = await provider.start(
                start_request("collect_order_details", {"customer": "ACME"})
            )
            assert done and sap.wait(done)["status"] == "SUCCESS"
            sap.step_delay = 5
            failing = await provider.start(start_request("echo", {}))
            assert failing
            sap.fail_run(failing, details)
            # The fake notifies from its own threads: two runs' calls may
            # arrive in any order, so wait for the ends of both.
            async def both_ended(
                provider: SapProvider = provider,
            ) -> dict[EventType, Any] | None:
                calls = [r for r in receiver.requests if r.path == notify_path]
                events = await translate(provider, calls)  # each body is valid JSON
                by_type = {e.type: e for e in events}
                return by_type if ENDED <= by_type.keys() else None

            by_type = await async_wait_until(both_ended, 5, "both runs' ends")
        assert EventType.STARTED in by_type, by_type
        assert by_type[EventType.SUCCEEDED].data["outputs"]["order_count"] == 3
        assert by_type[EventType.FAILED].data["error"] == "Agent offline"
        receiver.requests.clear()


async def test_a_422_names_the_missing_inputs(
    build: Callable[..., SapProvider], receiver: FakeServer, notify_path: str
) -> None:
    notifier = receiver.url + notify_path
    with FakeSapIrpa(
        notifier_url=notifier, trigger_inputs={"echo": ["customer", "region"]}
    ) as sap:
        provider = build(options(sap))
        with pytest.raises(ProviderError) as info:
            await provider.start(start_request("echo", {"region": "EU"}))
    assert "missing inputs: customer" in info.value.message
    assert "region" not in info.value.message.split("missing inputs:")[1]
