"""The Power Automate desktop flow provider against its fake over loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.models import EventType, Job, JobEvent, new_job_id
from rasa_rpa.providers.base import StartRequest
from rasa_rpa.providers.power_automate import BUSY, PowerAutomateProvider
from rasa_rpa.security import JobKeys
from tests.providers.hooks import receive
from tests.providers.polling import until
from tests.waiting import async_wait_until

KEYS = JobKeys("p" * 32)


@pytest.fixture
def pad() -> Iterator[FakePowerAutomate]:
    with FakePowerAutomate(step_delay=0.05, callback_retry_delay=0.05) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    """Stands in for our action server: the events API and the webhook."""
    server = FakeServer()
    server.route("POST", "/rpa/v1/jobs/(?P<job_id>[^/]+)/events", lambda r: (202, {}))
    server.route("POST", "/hook", lambda r: (202, {}))
    with server:
        yield server


@pytest.fixture
async def build(
    make_config: Callable[..., RpaConfig], pad: FakePowerAutomate
) -> AsyncIterator[Callable[..., PowerAutomateProvider]]:
    """Factory for providers pointed at ``pad``; all are closed after the test."""
    made: list[PowerAutomateProvider] = []

    def make(
        public_url: str = "http://127.0.0.1:9", **options: Any
    ) -> PowerAutomateProvider:
        config = make_config(
            providers={"pa": pad.provider_options(**options)},
            callbacks={"public_url": public_url, "secret": "s" * 32},
        )

        async def report(event: JobEvent) -> None:
            return None

        provider = PowerAutomateProvider("pa", config.providers["pa"], config, report)
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
    job = Job(new_job_id(), "orders", "pa", "conv-1", inputs=inputs)
    return StartRequest(
        job=job,
        task=task,
        inputs=inputs,
        credentials=KEYS.credentials(job.id, "conv-1", public_url),
        timeout=60,
    )


async def started(provider: PowerAutomateProvider, start: StartRequest) -> Job:
    ref = await provider.start(start)
    return start.job.evolve(provider_ref=ref)




def run_body(pad: FakePowerAutomate) -> dict[str, Any]:
    runs = [r for r in pad.server.requests if r.path.endswith("RunDesktopFlow")]
    body: dict[str, Any] = runs[-1].json()
    return body


async def test_a_run_carries_the_inputs_and_the_job_context(build, pad, receiver):
    provider = build()
    start = request(public_url=receiver.url, customer="ACME", limit=5)
    job = await started(provider, start)
    body = run_body(pad)
    assert body["runMode"] == "unattended"
    assert body["runPriority"] == "normal"
    assert body["connectionName"] == pad.connection_name
    assert "connectionType" not in body and "timeout" not in body
    # http://127.0.0.1 is refused by Power Automate: no callback is asked for.
    assert "callbackUrl" not in body
    assert isinstance(body["inputs"], str)  # a JSON *string*
    assert json.loads(body["inputs"]) == {
        "customer": "ACME",
        "limit": 5,
        "rasaRpaJobId": job.id,
        "rasaRpaConversationId": "conv-1",
        "rasaRpaEventsUrl": start.credentials.events_url,
        "rasaRpaToken": start.credentials.token,
    }
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.id == f"power-automate:{job.provider_ref}:job.succeeded"
    assert done.data == {
        "outputs": {"order_count": 3, "report_path": "/reports/orders-ACME.csv"}
    }
    # The flow's Invoke web service step reported progress with the job's token.
    progress = [r for r in receiver.requests if r.path.endswith("/events")]
    assert progress[0].headers["authorization"] == f"Bearer {start.credentials.token}"


async def test_the_entra_token_is_asked_for_the_organization(build, pad):
    provider = build()
    await provider.start(request(customer="ACME"))
    await provider.start(request(customer="Globex"))
    tokens = [r for r in pad.server.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert len(tokens) == 1
    assert tokens[0].path == f"/{pad.tenant_id}/oauth2/v2.0/token"
    form = tokens[0].form()
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == pad.client_id
    assert form["scope"] == f"{pad.url}/.default"


async def test_options_reach_the_run(build, pad):
    provider = build(
        connection_name=pad.connection_reference,
        connection_type="reference",
        run_mode="attended",
        run_priority="high",
        run_timeout="30m",
    )
    await provider.start(request(customer="ACME"))
    body = run_body(pad)
    assert body["connectionType"] == 2
    assert body["connectionName"] == pad.connection_reference
    assert (body["runMode"], body["runPriority"], body["timeout"]) == (
        "attended",
        "high",
        1800,
    )


async def test_a_failed_run_fails_the_job_with_its_message(build, pad):
    provider = build()
    job = await started(provider, request(customer="Nobody Inc"))
    failed = await until(provider, job, EventType.FAILED)
    assert failed.data == {
        "error": "Unknown customer 'Nobody Inc': not in the order book"
    }


async def test_no_machine_is_a_failure_in_plain_words(build, pad):
    provider = build()
    pad.machines_offline = True
    job = await started(provider, request(customer="ACME"))
    failed = await until(provider, job, EventType.FAILED)
    assert "no machine available" in failed.data["error"]


async def test_too_many_runs_is_busy_in_plain_words(build, pad):
    pad.runs_per_minute = 1
    provider = build()
    await provider.start(request(customer="ACME"))
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.start(request(customer="ACME"))
    assert "429" in caught.value.message
    assert caught.value.user_message == BUSY


@pytest.mark.parametrize(
    "options, words",
    [
        ({"client_secret": "wrong-secret-77"}, "client secret is wrong or has expired"),
        ({"client_id": "nobody"}, "check client_id and tenant_id"),
        ({"tenant_id": "elsewhere"}, "check tenant_id"),
        ({"scope": "https://other.crm.dynamics.com/.default"}, "organization URL"),
    ],
)
async def test_entra_refusals_name_the_setting(build, pad, options, words):
    with pytest.raises(ProviderError) as caught:
        await build(**options).start(request(customer="ACME"))
    assert words in caught.value.message
    assert "wrong-secret-77" not in str(caught.value)
    assert not isinstance(caught.value, ProviderUnavailable)


async def test_an_app_that_is_no_application_user_is_told_so(build, pad):
    pad.app_user = False
    with pytest.raises(ProviderError, match="application user"):
        await build().start(request(customer="ACME"))


async def test_unknown_flow_and_unknown_connection_are_plain(build, pad):
    with pytest.raises(ProviderError) as caught:
        await build().start(request(task="no_such_flow"))
    assert "unknown desktop flow 'no_such_flow'" in caught.value.message
    assert caught.value.user_message == "it is not set up correctly"
    with pytest.raises(ProviderError, match="check connection_name"):
        await build(connection_name="nope").start(request(customer="ACME"))


async def test_cancel_and_a_cancel_too_late(build, pad):
    provider = build()
    job = await started(provider, request(customer="ACME"))
    await provider.cancel(job)
    assert (await until(provider, job, EventType.CANCELLED)).data["reason"]
    done = await started(provider, request(task="echo"))
    pad.wait(str(done.provider_ref))
    await provider.cancel(done)  # refused by Power Automate; the run ended anyway


async def test_the_callback_is_a_hint_dataverse_is_the_truth(build, pad, receiver):
    """The callback is unauthenticated: a forged "succeeded" changes nothing."""
    pad.insecure_callbacks = True
    provider = build(callback_url=f"{receiver.url}/hook")
    pad.step_delay = 1.0
    job = await started(provider, request(customer="ACME"))
    assert run_body(pad)["callbackUrl"] == f"{receiver.url}/hook"
    ref = str(job.provider_ref)
    headers = {
        "x-ms-workflow-id": pad.flow_ids["collect_order_details"],
        "x-ms-run-id": ref,
    }
    forged = {"statuscode": 4, "statecode": 0, "flowsessionid": ref}
    events = await receive(provider, headers, json.dumps(forged).encode(), job)
    assert [e.type for e in events] in ([], [EventType.STARTED])
    # The genuine callback, as the service sent it to the receiver.
    hooks = await async_wait_until(
        lambda: [r for r in receiver.requests if r.path == "/hook"],
        10,
        "the completion callback",
    )
    assert hooks[0].headers["x-ms-run-id"] == ref
    events = await receive(provider, hooks[0].headers, hooks[0].body, job)
    assert [e.type for e in events] == [EventType.SUCCEEDED]
    assert events[0].event_id == f"power-automate:{ref}:job.succeeded"
    assert events[0].data["outputs"]["order_count"] == 3


def test_callbacks_without_power_automate_headers_are_refused(build):
    provider = build()
    with pytest.raises(AuthenticationFailed):
        provider.webhook_credential({}, b"{}")
    headers = {"x-ms-workflow-id": "w", "x-ms-run-id": "run-a"}
    with pytest.raises(InvalidPayload):
        provider.parse_webhook(headers, b'{"flowsessionid": "run-b"}')


async def test_doctor_checks_the_app_the_callback_and_each_flow(build, pad):
    found = await build().diagnose(["collect_order_details", "ghost"])
    assert [d.status for d in found] == ["ok", "warning", "ok", "error"]
    assert "polling every 10s" in found[1].message
    assert found[3].task == "ghost" and "flows:" in found[3].fix
    refused = await build(callback_url="https://10.0.0.5/hook").diagnose([])
    assert refused[1].status == "error"
    assert "IP addresses" in refused[1].message
    fine = await build(public_url="https://bot.example.com").diagnose([])
    assert [d.status for d in fine] == ["ok"]


async def test_doctor_names_a_secret_that_is_wrong(build, pad):
    with pytest.raises(ProviderError, match="client_secret"):
        await build(client_secret="nope").diagnose([])


def test_options_are_checked_at_load(make_config, pad):
    with pytest.raises(ConfigError) as caught:
        make_config(providers={"pa": pad.provider_options(run_timeout="2d")})
    assert caught.value.key == "providers.pa.run_timeout"
    with pytest.raises(ConfigError) as caught:
        make_config(providers={"pa": pad.provider_options(run_mode="sometimes")})
    assert caught.value.key == "providers.pa.run_mode"


def test_the_client_secret_is_a_secret_the_logs_hide(make_config, pad):
    from rasa_rpa.config import secret_values

    config = make_config(providers={"pa": pad.provider_options()})
    assert pad.client_secret in secret_values(config)
