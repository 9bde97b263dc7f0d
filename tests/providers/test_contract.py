"""One contract for every built-in provider, each against its fake over loopback HTTP.

Every provider starts a job with its context (job id, callback URL, token),
does what its declared capabilities promise (poll, cancel, webhooks) and
nothing it does not declare, renews a vendor token once when the vendor
drops it, and tells the user what went wrong in plain words (no URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools.stack import ROOT
from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import AuthenticationFailed, InvalidPayload, ProviderError
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import Provider, StartRequest
from rasa_rpa.providers.options import ProviderOptions
from rasa_rpa.registry import BUILTIN_PROVIDERS, provider_class
from rasa_rpa.security import JobKeys

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


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with receiver.server:
        yield receiver


def _uipath(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    fake = stack.enter_context(FakeOrchestrator(step_delay=0.05))
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
    )


def _sap(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    fake = stack.enter_context(FakeSapIrpa(step_delay=0.05))
    return Case(
        fake.provider_options(),
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
    )


def _aa(stack: contextlib.ExitStack, receiver: Receiver) -> Case:
    fake = stack.enter_context(FakeControlRoom(step_delay=0.05))
    return Case(
        fake.provider_options(stop_wait="5s"),
        "echo",
        lambda: fake.token_requests,
        fake.expire_tokens,
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
    "local": _local,
    "webhook": _webhook,
}


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

        async def report(event: JobEvent) -> None:
            reported.append(event)

        cls = provider_class(case.entry["type"])
        provider = cls("p", config.providers["p"], config, report)
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def declaring(capability: str) -> list[str]:
    """The built-ins whose class declares ``capability`` (the cases to run)."""
    return sorted(
        n for n in CASES if getattr(provider_class(n).capabilities, capability)
    )


#: The vendors whose API needs a token of their own.
TOKEN_VENDORS = ["automation_anywhere", "sap", "uipath"]


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
