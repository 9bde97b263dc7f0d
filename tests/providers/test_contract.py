"""One contract for every built-in provider, each against its fake over loopback HTTP.

Every provider starts a job with its context (job id, callback URL, token),
does what its declared capabilities promise (poll, cancel, webhooks) and
nothing it does not declare, renews a vendor token once when the vendor
drops it, and tells the user what went wrong in plain words (no URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.stack import ROOT
from rasa_rpa.config import RpaConfig, config_from_dict
from rasa_rpa.errors import AuthenticationFailed, InvalidPayload, ProviderError
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.fakes.robocorp import FakeRobocorp
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import Capabilities, Provider, StartRequest, WebhookEvent
from rasa_rpa.providers.options import ProviderOptions
from rasa_rpa.registry import BUILTIN_PROVIDERS, provider_class
from rasa_rpa.security import JobKeys
from tests.conftest import base_config
from tests.waiting import async_wait_until

KEYS = JobKeys("c" * 32)
SECRET = "contract-webhook-secret"
FINAL = {EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED}


class Receiver:
    """Where robots and webhook targets POST: records each call."""

    def __init__(self) -> None:
        self.calls: list[FakeRequest] = []
        self.server = FakeServer()
        self.server.route("POST", r"/fail/.*", lambda r: (500, {"error": "down"}))
        self.server.route("POST", r"/.*", self._record)

    def _record(self, request: FakeRequest) -> tuple[int, Any]:
        self.calls.append(request)
        return 202, {"run": {"id": "run-1"}}

    def saw(self, text: str) -> bool:
        return any(text in c.path or text in c.body.decode() for c in self.calls)


@dataclass
class Case:
    """A provider wired to its fake, and what the contract needs to drive it."""

    entry: dict[str, Any]
    task: str
    #: A fake's token counter, for providers with vendor tokens.
    token_requests: Callable[[], int] | None = None
    expire_tokens: Callable[[], None] = lambda: None
    #: A task to cancel (one that keeps running); defaults to ``task``.
    long_task: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where the fake sends its vendor webhooks (on the receiver), if any.
    webhook_path: str | None = None
    #: Whether the vendor was asked to stop ``job``, for providers that
    #: can neither poll the stop nor report it themselves.
    cancel_seen: Callable[[Job], bool] | None = None
    #: The vendor's webhook carries no credential at all (Power Automate's
    #: callback): the provider must believe nothing in it and complete every
    #: event from the vendor's own records.
    unsigned: bool = False


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with receiver.server:
        yield receiver


def _path(kind: str) -> str:
    """A receiver path of one wired case's own, so no other test's calls land there."""
    return f"/{kind}/{uuid.uuid4().hex}"


def _uipath(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    hooks = _path("uipath-webhook")
    fake = stack.enter_context(
        FakeOrchestrator(
            step_delay=0.05,
            webhook_url=receiver.server.url + hooks,
            webhook_secret=SECRET,  # the Orchestrator webhook's secret
        )
    )
    entry = {
        "type": "uipath",
        "url": fake.orchestrator_url,
        "token_url": fake.token_url,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "folder_id": fake.folder_id,
        "webhook_secret": SECRET,
        "timeout": "5s",
    }
    return Case(
        entry,
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
        long_task="collect_order_details",
        webhook_path=hooks,
    )


def _sap(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    hooks, stops = _path("sap-notifier"), _path("sap-cancel")
    fake = stack.enter_context(
        FakeSapIrpa(step_delay=0.05, notifier_url=receiver.server.url + hooks)
    )
    # SAP has no cancel API: the customer's own endpoint, here the receiver.
    cancel_url = receiver.server.url + stops + "/{jobUid}/{job_id}"

    def cancel_seen(job: Job) -> bool:
        # Called like the trigger: SAP's OAuth token and the API key.
        return any(
            call.path == f"{stops}/{job.provider_ref}/{job.id}"
            and call.headers.get("irpa-api-key") == fake.api_key
            and fake.token_alive(
                call.headers.get("authorization", "").removeprefix("Bearer ")
            )
            for call in list(receiver.calls)
        )

    return Case(
        fake.provider_options(cancel_url_template=cancel_url),
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
        webhook_path=hooks,
        cancel_seen=cancel_seen,
    )


def _aa(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    hooks = _path("aa-callback")
    fake = stack.enter_context(FakeControlRoom(step_delay=0.05))
    return Case(
        fake.provider_options(stop_wait="5s", callback_url=receiver.server.url + hooks),
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
        webhook_path=hooks,
    )


def _robocorp(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    fake = stack.enter_context(FakeRobocorp(step_delay=0.1))
    return Case(fake.provider_options(), "echo", long_task="collect_order_details")


def _power_automate(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    hooks = _path("power-automate-callback")
    # The service calls back only to HTTPS and a DNS name; the receiver is
    # plain HTTP on loopback, so the fake is told to allow it.
    fake = stack.enter_context(
        FakePowerAutomate(
            step_delay=0.1, insecure_callbacks=True, callback_retry_delay=0.05
        )
    )
    return Case(
        fake.provider_options(callback_url=receiver.server.url + hooks),
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
        long_task="collect_order_details",
        webhook_path=hooks,
        unsigned=True,
    )


def _local(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    entry = {"type": "local", "robots_dir": str(ROOT / "tests" / "robots")}
    return Case(entry, "idle", extra={"duration": "0s"})


def _webhook(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    entry = {"type": "webhook", "url": receiver.server.url + "/{task}/start"}
    return Case(entry, "hooks", extra={})


CASES = {
    "uipath": _uipath,
    "sap": _sap,
    "automation_anywhere": _aa,
    "robocorp": _robocorp,
    "power_automate": _power_automate,
    "local": _local,
    "webhook": _webhook,
}


def build(case: Case, config: RpaConfig, reported: list[JobEvent]) -> Provider:
    """The case's provider as the service builds it, reporting into ``reported``."""

    async def report(event: JobEvent) -> None:
        reported.append(event)

    cls = provider_class(case.entry["type"])
    return cls("p", config.providers["p"], config, report)


def built_capabilities() -> dict[str, Capabilities]:
    """What each case's provider declares once built from the case's entry.

    An instance may declare more than its class (SAP cancels once
    ``cancel_url_template`` is set), so the cases are built, with their fakes
    and receiver up, rather than read off the classes. Nothing is started.
    """
    found: dict[str, Capabilities] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        receiver = Receiver()
        stack.enter_context(receiver.server)
        for name, make in CASES.items():
            case = make(stack, receiver)
            raw = base_config(Path(tmp), providers={"p": case.entry}, automations={})
            config = config_from_dict(raw, base_dir=Path(tmp))
            found[name] = build(case, config, []).capabilities
    return found


BUILT = built_capabilities()


@pytest.fixture(params=sorted(CASES))
async def wired(
    request: pytest.FixtureRequest,
    receiver: Receiver,
    make_config: Callable[..., RpaConfig],
) -> AsyncIterator[tuple[Provider, Case, list[JobEvent]]]:
    with contextlib.ExitStack() as stack:
        case = CASES[request.param](stack, receiver)
        config = make_config(providers={"p": case.entry}, automations={})
        reported: list[JobEvent] = []
        provider = build(case, config, reported)
        assert provider.capabilities == BUILT[request.param]
        try:
            yield provider, case, reported
        finally:
            await provider.aclose()


def start_request(receiver: Receiver, task: str, **inputs: Any) -> StartRequest:
    job = Job(uuid.uuid4().hex, "contract", "p", f"conv-{uuid.uuid4().hex[:8]}")
    creds = KEYS.credentials(job.id, job.conversation_id, receiver.server.url)
    return StartRequest(job, task, inputs, creds, timeout=60)


async def started(provider: Provider, request: StartRequest) -> Job:
    ref = await provider.start(request)
    return Job(
        request.job.id, "contract", "p", request.job.conversation_id, provider_ref=ref
    )


async def until(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Wait for ``check`` (sync or async) to hold, with a deadline."""
    return await async_wait_until(check, timeout, "the provider's answer")


def declaring(capability: str) -> list[str]:
    """The cases whose built provider declares ``capability`` (the ones to run)."""
    return sorted(n for n, caps in BUILT.items() if getattr(caps, capability))


#: The vendors whose API needs a token of their own.
TOKEN_VENDORS = ["automation_anywhere", "power_automate", "sap", "uipath"]


def test_every_builtin_provider_is_covered() -> None:
    assert set(CASES) == set(BUILTIN_PROVIDERS)


def test_every_builtin_provider_declares_typed_options() -> None:
    for type_name in BUILTIN_PROVIDERS:
        cls = provider_class(type_name)
        assert cls.Options is not ProviderOptions, type_name
        assert cls.Options.model_config.get("extra") == "forbid", type_name


async def test_start_hands_over_the_job_context(wired, receiver) -> None:
    provider, case, _ = wired
    request = start_request(receiver, case.task, **case.extra)
    job = await started(provider, request)
    token = request.credentials.token
    if case.entry["type"] in ("local", "webhook"):
        # The robot (or the automation) got the job and its callback token.
        await until(lambda: receiver.saw(request.job.id))
        if case.entry["type"] == "webhook":
            assert receiver.saw(token)
    else:
        assert job.provider_ref


@pytest.mark.parametrize("wired", declaring("poll"), indirect=True)
async def test_poll_where_declared(wired, receiver) -> None:
    provider, case, _ = wired
    job = await started(provider, start_request(receiver, case.task, **case.extra))

    async def final() -> bool:
        return any(e.type in FINAL for e in await provider.poll(job))

    await until(final)


@pytest.mark.parametrize(
    "wired", sorted(set(CASES) - set(declaring("poll"))), indirect=True
)
async def test_no_status_api_means_polls_report_nothing(wired, receiver) -> None:
    provider, case, _ = wired
    job = await started(provider, start_request(receiver, case.task, **case.extra))
    assert await provider.poll(job) == []


@pytest.mark.parametrize("wired", declaring("cancel"), indirect=True)
async def test_cancel_where_declared(wired, receiver) -> None:
    provider, case, reported = wired
    task = case.long_task or case.task
    extra = {"duration": "60s"} if case.entry["type"] == "local" else case.extra
    job = await started(provider, start_request(receiver, task, **extra))
    await provider.cancel(job)
    if provider.capabilities.poll:

        async def stopped() -> bool:
            events = await provider.poll(job)
            return any(e.type is EventType.CANCELLED for e in events)

        await until(stopped)
    elif case.cancel_seen is not None:  # a stop the vendor cannot report
        seen = case.cancel_seen
        await until(lambda: seen(job))
    else:  # the local robot's exit is reported as the end of the job
        await until(lambda: any(e.job_id == job.id for e in reported))


async def test_webhooks_verify_the_caller_where_declared(wired) -> None:
    provider, _, _ = wired
    if not provider.capabilities.webhooks:
        with pytest.raises(InvalidPayload) as refused:
            provider.webhook_credential({}, b"{}")
        assert refused.value.status == 404
        return
    with pytest.raises(AuthenticationFailed):
        provider.webhook_credential({}, b'{"invocationContext": {}}')


@pytest.mark.parametrize("wired", declaring("webhooks"), indirect=True)
async def test_an_authenticated_webhook_is_accepted(wired, receiver) -> None:
    """The vendor's own calls about a job verify and name that job."""
    provider, case, _ = wired
    assert case.webhook_path is not None
    request = start_request(receiver, case.task, **case.extra)
    job = await started(provider, request)

    async def accepted() -> list[WebhookEvent]:
        events: list[WebhookEvent] = []
        for call in list(receiver.calls):
            if call.path != case.webhook_path:
                continue
            credential = provider.webhook_credential(call.headers, call.body)
            parsed = provider.parse_webhook(call.headers, call.body)
            if case.unsigned:
                # Nothing in the call is believed: each event is completed
                # from the vendor's records, whatever the body claimed.
                assert credential is None
                assert all(e.incomplete for e in parsed)
                for event in parsed:
                    done = await provider.complete_webhook(event, job)
                    events += [done] if done is not None else []
                continue
            if credential is None:
                # The provider checked the vendor's signature itself; a body
                # changed on the way does not pass.
                with pytest.raises(AuthenticationFailed):
                    provider.webhook_credential(call.headers, call.body + b" ")
            else:
                # The job's own token, as the route will check it.
                assert credential.token == request.credentials.token
                assert credential.job_id in (None, job.id)
                assert KEYS.identify(credential.token).job_id == job.id
            events.extend(parsed)
        return events if any(e.type in FINAL for e in events) else []

    events = await until(accepted)
    for event in events:
        assert event.job_id == job.id or event.provider_ref == job.provider_ref


@pytest.mark.parametrize("wired", TOKEN_VENDORS, indirect=True)
async def test_a_dropped_token_is_renewed_once(wired, receiver) -> None:
    provider, case, _ = wired
    assert case.token_requests is not None
    # Concurrent first calls share one token request (no thundering herd).
    requests = [start_request(receiver, case.task) for _ in range(5)]
    await asyncio.gather(*(provider.start(r) for r in requests))
    assert case.token_requests() == 1
    case.expire_tokens()  # the vendor forgets it: the next calls get 401
    await asyncio.gather(*(provider.start(r) for r in requests[:3]))
    assert case.token_requests() == 2


async def test_errors_reach_the_user_in_plain_words(wired, receiver) -> None:
    provider, case, _ = wired
    task = "fail" if case.entry["type"] == "webhook" else "no_such_task_anywhere"
    with pytest.raises(ProviderError) as caught:
        await provider.start(start_request(receiver, task))
    words = caught.value.user_message
    assert words and "http" not in words and "127.0.0.1" not in words
    assert receiver.server.url not in str(caught.value.user_message)
