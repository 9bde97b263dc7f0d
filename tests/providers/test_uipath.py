"""The UiPath provider against the fake Orchestrator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from rasa_rpa.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.uipath import FakeOrchestrator, sign
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import StartRequest
from rasa_rpa.providers.uipath import UiPathProvider
from rasa_rpa.security import JobKeys
from tests.providers.hooks import receive

KEYS = JobKeys("x" * 32)
SECRET = "fake-webhook-secret"


class Receiver:
    """Records what the fake's robot and webhooks POST to us."""

    def __init__(self) -> None:
        self.calls: list[FakeRequest] = []
        self.server = FakeServer()
        self.server.route("POST", r"/.*", self._record)

    def _record(self, request: FakeRequest) -> tuple[int, Any]:
        self.calls.append(request)
        return 200, {"ok": True}

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with receiver.server:
        yield receiver


@pytest.fixture
def fake(receiver: Receiver) -> Iterator[FakeOrchestrator]:
    orchestrator = FakeOrchestrator(
        step_delay=0.05,
        webhook_url=f"{receiver.url}/webhook/{uuid.uuid4().hex}",
        webhook_secret=SECRET,
        refresh_token="fake-refresh",
    )
    with orchestrator:
        yield orchestrator


@pytest.fixture
async def build(
    make_config: Callable[..., Any],
) -> AsyncIterator[Callable[..., UiPathProvider]]:
    """Factory for providers (closed after the test); ``.events`` holds reports."""
    made: list[UiPathProvider] = []

    def make(**options: Any) -> UiPathProvider:
        entry = {"type": "uipath", **options}
        config = make_config(providers={"uipath": entry})
        events: list[JobEvent] = []

        async def report(event: JobEvent) -> None:
            events.append(event)

        provider = UiPathProvider("uipath", config.providers["uipath"], config, report)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def options(fake: FakeOrchestrator, **extra: Any) -> dict[str, Any]:
    return {
        "url": fake.orchestrator_url,
        "token_url": fake.token_url,
        "client_id": "fake-client",
        "client_secret": "fake-secret",
        "folder_id": 1,
        "webhook_secret": SECRET,
        "timeout": "2s",
        **extra,
    }


def request(
    task: str = "collect_order_details",
    events_url: str = "http://127.0.0.1:9",
    **inputs: Any,
) -> StartRequest:
    job = Job(uuid.uuid4().hex, "orders", "uipath", f"conv-{uuid.uuid4().hex[:6]}")
    return StartRequest(
        job=job,
        task=task,
        inputs=inputs,
        credentials=KEYS.credentials(job.id, job.conversation_id, events_url),
        timeout=60,
    )


async def started(provider: UiPathProvider, start: StartRequest) -> Job:
    ref = await provider.start(start)
    return start.job.evolve(provider_ref=ref)


async def poll_until(
    provider: UiPathProvider, job: Job, kind: EventType, timeout: float = 5
) -> JobEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = await provider.poll(job)
        if events and events[0].type is kind:
            return events[0]
        await asyncio.sleep(0.03)
    raise AssertionError(f"job never reached {kind}: {events}")


async def wait_for(check: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_runs_a_process_with_inputs_and_outputs(fake, receiver, build):
    provider = build(**options(fake))
    start = request(events_url=receiver.url, customer="ACME")
    job = await started(provider, start)
    assert job.provider_ref is not None and job.provider_ref.isdigit()

    event = await poll_until(provider, job, EventType.SUCCEEDED)
    assert event.data["outputs"]["order_count"] == 3
    assert event.id == f"uipath:{job.provider_ref}:job.succeeded"
    assert (event.job_id, event.source) == (job.id, "uipath-poll")
    assert (await provider.poll(job))[0].id == event.id  # repeated polls dedupe

    record = fake.jobs[int(job.provider_ref)]
    arguments = json.loads(record["InputArguments"])
    assert arguments["customer"] == "ACME"
    assert arguments["rasa_rpa_job_id"] == job.id
    assert arguments["rasa_rpa_conversation_id"] == job.conversation_id
    assert arguments["rasa_rpa_events_url"] == start.credentials.events_url
    assert arguments["rasa_rpa_token"] == start.credentials.token
    # The fake's robot reported progress to the callback URL with the job token.
    progress = [c for c in receiver.calls if c.path.endswith("/events")]
    assert progress and progress[0].path == f"/rpa/v1/jobs/{job.id}/events"
    assert progress[0].headers["authorization"] == f"Bearer {start.credentials.token}"
    assert progress[0].json()["type"] == "job.progress"
    odata = [r for r in fake.server.requests if "/odata/" in r.path]
    assert all(r.headers["x-uipath-organizationunitid"] == "1" for r in odata)
    assert fake.token_requests == 1


async def test_legacy_refresh_token_flow(fake, build):
    provider = build(
        url=fake.url + "/acme/DefaultTenant",
        token_url=fake.url + "/oauth/token",
        client_id="fake-client",
        refresh_token="fake-refresh",
        tenant_name="DefaultTenant",
        folder_path="Shared",
    )
    job = await started(provider, request(task="echo", word="hi"))
    event = await poll_until(provider, job, EventType.SUCCEEDED)
    assert event.data["outputs"] == {"word": "hi"}
    token_call = next(r for r in fake.server.requests if r.path == "/oauth/token")
    assert token_call.json()["grant_type"] == "refresh_token"
    odata = [r for r in fake.server.requests if "/odata/" in r.path]
    assert all(r.headers["x-uipath-tenantname"] == "DefaultTenant" for r in odata)
    assert all(r.headers["x-uipath-folderpath"] == "Shared" for r in odata)


async def test_revoked_refresh_token_says_so(fake, build):
    provider = build(
        **options(fake, token_url=fake.url + "/oauth/token", refresh_token="old")
    )
    with pytest.raises(ProviderError, match="client_id/refresh_token") as info:
        await provider.start(request())
    assert "old" not in str(info.value).replace("folder", "")


async def test_bad_credentials_name_the_fix_without_the_secret(fake, build):
    provider = build(**options(fake, client_secret="s3cr3t-wrong"))
    with pytest.raises(ProviderError) as info:
        await provider.start(request())
    message = str(info.value)
    assert "invalid_client" in message and "client_id/client_secret" in message
    assert "OR.Jobs" in message and "s3cr3t-wrong" not in message
    assert info.value.job_id is not None


async def test_unknown_scope_is_explained(fake, build):
    provider = build(**options(fake, scope="OR.Jobs OR.Everything"))
    with pytest.raises(ProviderError, match="not granted the scopes"):
        await provider.start(request())


async def test_a_wrong_token_url_is_pointed_out(fake, build):
    provider = build(**options(fake, token_url=fake.url + "/identity_/wrong"))
    with pytest.raises(ProviderError, match="looks wrong: it should end with") as info:
        await provider.start(request())
    assert "/identity_/connect/token" in str(info.value)


async def test_the_default_token_url_is_the_hosts_identity_server(fake, build):
    provider = build(**options(fake, token_url=None))
    assert provider.token_url == fake.token_url
    assert await provider.start(request(task="echo"))


async def test_an_expired_token_is_renewed_and_the_call_retried(fake, build):
    provider = build(**options(fake))
    await provider.start(request(task="echo"))
    fake.expire_tokens()
    assert await provider.start(request(task="echo"))
    assert fake.token_requests == 2 and provider.auth.fetches == 2


async def test_a_vendor_outage_is_unavailable(fake, build):
    provider = build(**options(fake))
    await provider.start(request(task="echo"))
    fake.fail_next_requests(1, status=503)
    with pytest.raises(ProviderUnavailable, match="503"):
        await provider.start(request(task="echo"))
    fake.fail_next_requests(1)
    with pytest.raises(ProviderUnavailable, match="500"):
        await provider.poll(Job("j", "a", "uipath", "c", provider_ref="1001"))


async def test_a_silent_server_times_out_within_the_configured_timeout(build):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        provider = build(
            url=url, client_id="c", client_secret="s", folder_id=1, timeout="0.3s"
        )
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await provider.start(request())
        assert time.monotonic() - began < 2


async def test_a_slow_orchestrator_times_out(fake, build):
    provider = build(**options(fake, timeout="0.2s"))
    fake.response_delay = 0.5
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await provider.start(request())


async def test_unknown_process_and_version(fake, build):
    provider = build(**options(fake))
    with pytest.raises(ProviderError, match="unknown process 'nope' in this folder"):
        await provider.start(request(task="nope"))
    with pytest.raises(ProviderError, match=r"no version 9\.9 .*found: 1\.0\.0"):
        await provider.start(request(task="echo@9.9"))
    assert await provider.start(request(task="echo@1.0.0"))


async def test_a_faulted_job_fails_with_orchestrators_info(fake, build):
    provider = build(**options(fake))
    job = await started(provider, request(customer="Nobody Inc"))
    event = await poll_until(provider, job, EventType.FAILED)
    assert event.data["error"].startswith("Unknown customer 'Nobody Inc'")


async def test_a_lost_webhook_is_recovered_by_polling(fake, receiver, build):
    fake.drop_webhooks = True
    provider = build(**options(fake))
    job = await started(provider, request(customer="Globex"))
    event = await poll_until(provider, job, EventType.SUCCEEDED)
    assert event.data["outputs"]["order_count"] == 2
    assert not [c for c in receiver.calls if fake.webhook_url.endswith(c.path)]


async def test_signed_webhooks_become_events(fake, receiver, build):
    provider = build(**options(fake))
    job = await started(provider, request(customer="ACME"))

    def hooks() -> list[FakeRequest]:
        return [c for c in receiver.calls if fake.webhook_url.endswith(c.path)]

    await wait_for(lambda: len(hooks()) == 2)
    events = []
    for call in hooks():
        events += await receive(provider, call.headers, call.body)
    assert [e.type for e in events] == [EventType.STARTED, EventType.SUCCEEDED]
    assert {e.provider_ref for e in events} == {job.provider_ref}
    assert events[1].data["outputs"]["order_count"] == 3
    assert events[1].event_id == f"uipath:{job.provider_ref}:job.succeeded"


async def test_completed_webhook_without_outputs_reads_the_job(fake, build):
    provider = build(**options(fake))
    job = await started(provider, request(customer="Initech"))
    await poll_until(provider, job, EventType.SUCCEEDED)
    body = json.dumps(
        {
            "Type": "job.completed",
            "EventId": "e1",
            "Job": {
                "Id": int(job.provider_ref),
                "State": "Successful",
                "OutputArguments": None,
            },
        }
    ).encode()
    [event] = await receive(provider, {"x-uipath-signature": sign(SECRET, body)}, body)
    assert event.data["outputs"]["order_count"] == 2


async def test_webhook_signatures_and_payloads_are_checked(fake, build):
    provider = build(**options(fake))
    body = json.dumps(
        {
            "Type": "job.faulted",
            "EventId": "e",
            "Job": {"Id": 7, "State": "Faulted", "Info": "boom"},
        }
    ).encode()
    [event] = await receive(provider, {"x-uipath-signature": sign(SECRET, body)}, body)
    assert (event.type, event.data["error"], event.provider_ref) == (
        EventType.FAILED,
        "boom",
        "7",
    )
    with pytest.raises(AuthenticationFailed):
        await receive(provider, {"x-uipath-signature": sign("other", body)}, body)
    with pytest.raises(AuthenticationFailed):
        await receive(provider, {}, body)
    created = json.dumps({"Type": "job.created", "Jobs": []}).encode()
    assert (
        await receive(provider, {"x-uipath-signature": sign(SECRET, created)}, created)
        == []
    )
    with pytest.raises(InvalidPayload):
        await receive(provider, {"x-uipath-signature": sign(SECRET, b"{")}, b"{")
    unsigned = build(**options(fake, webhook_secret=None))
    with pytest.raises(AuthenticationFailed, match="webhook_secret"):
        await receive(unsigned, {"x-uipath-signature": sign(SECRET, body)}, body)


async def test_cancel_stops_the_job(build):
    with FakeOrchestrator(step_delay=0.3) as fake:
        provider = build(**options(fake))
        job = await started(provider, request(task="echo"))
        await provider.cancel(job)
        await wait_for(lambda: fake.jobs[int(job.provider_ref)]["State"] == "Stopped")
        event = await poll_until(provider, job, EventType.CANCELLED)
        assert event.id == f"uipath:{job.provider_ref}:job.cancelled"


async def test_a_missing_folder_gets_a_hint(fake, build):
    provider = build(**options(fake, folder_id=None))
    with pytest.raises(ProviderError, match="set folder_id or folder_path"):
        await provider.start(request())


def test_fake_requires_a_token_and_a_folder(fake):
    releases = fake.orchestrator_url + "/odata/Releases"
    anonymous = httpx.get(releases)
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "You are not authenticated!"
    token = httpx.post(
        fake.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "fake-client",
            "client_secret": "fake-secret",
            "scope": "OR.Jobs",
        },
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    no_folder = httpx.get(releases, headers=bearer)
    assert no_folder.status_code == 400
    assert no_folder.json()["message"] == "A folder is required for this action."
    found = httpx.get(
        releases,
        headers={**bearer, "X-UIPATH-OrganizationUnitId": "1"},
        params={"$filter": "ProcessKey eq 'echo'"},
    ).json()["value"]
    assert [r["ProcessKey"] for r in found] == ["echo"]
    start = (
        fake.orchestrator_url
        + "/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs"
    )
    bad = httpx.post(
        start,
        headers={**bearer, "X-UIPATH-OrganizationUnitId": "1"},
        json={"startInfo": {"ReleaseKey": found[0]["Key"], "InputArguments": {"a": 1}}},
    )
    assert bad.status_code == 400


def test_missing_url_is_a_config_error(make_config):
    # Options are validated when the config loads, before any provider is built.
    with pytest.raises(ConfigError, match="url"):
        make_config(providers={"uipath": {"type": "uipath", "client_id": "c"}})
