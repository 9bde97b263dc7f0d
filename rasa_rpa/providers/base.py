"""The provider contract: how rasa-rpa starts, checks and stops work on an RPA backend.

A provider is built once per action-server worker from its ``providers:``
entry in rpa.yml. To add one, subclass :class:`Provider`, set ``type_name``,
and register ``"module:Class"`` under the ``rasa_rpa.providers`` entry point::

    class MyProvider(Provider):
        type_name = "mine"

        async def start(self, request: StartRequest) -> str | None:
            run = await my_api.start(request.task, request.inputs,
                                     callback=request.credentials.events_url,
                                     token=request.credentials.token)
            return run.id          # kept on the job as provider_ref

A provider that receives its vendor's own webhook at
``POST /rpa/v1/providers/<name>/webhook`` implements up to three steps,
which the route runs in this order so that nothing is done for a caller
whose credential does not verify:

1. :meth:`Provider.webhook_credential` (pure): the per-job token the call
   carries, or None once the provider has verified the vendor's signature
   itself. Read only what the credential needs: a bad token must get the
   same 401 whatever else the body says.
2. :meth:`Provider.parse_webhook` (pure): the call as :class:`WebhookEvent`
   items, run only after the route checked the credential.
3. :meth:`Provider.complete_webhook` (may call the vendor): fetch what the
   call left out (e.g. outputs), run once the job is found and its rate
   limit charged, so a stranger can never make us call the vendor.

Steps 1 and 2 are plain functions on purpose: they cannot await I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rasa_rpa.config import ProviderSettings, RpaConfig
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.security import JobCredentials

__all__ = [
    "NO_WEBHOOKS",
    "EventSink",
    "Provider",
    "StartRequest",
    "WebhookCredential",
    "WebhookEvent",
]

#: The one 404 for a webhook nobody here receives: it names no provider and
#: no type, so a stranger cannot list them (the log says which it was).
NO_WEBHOOKS = "no webhook is received at this address"

#: How a provider reports what it learns outside a callback (exit codes, polls).
EventSink = Callable[[JobEvent], Awaitable[Any]]


@dataclass(frozen=True)
class StartRequest:
    """Everything needed to start one job."""

    job: Job
    #: The provider's name for the work (a .robot file, a process key...).
    task: str
    inputs: dict[str, Any]
    #: Where and how the robot calls back; pass these through to the robot.
    credentials: JobCredentials
    timeout: float


@dataclass(frozen=True)
class WebhookEvent:
    """An event from a vendor's own webhook, before it is matched to a job.

    Name the job by ``job_id`` (ours, when the vendor echoes it back, e.g.
    SAP's invocationContext) or by ``provider_ref`` (the vendor's id, e.g.
    a UiPath job Id). ``incomplete`` asks :meth:`Provider.complete_webhook`
    to fetch what the call left out before the event is recorded.
    """

    event_id: str
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    provider_ref: str | None = None
    incomplete: bool = False


@dataclass(frozen=True)
class WebhookCredential:
    """A per-job token a vendor's webhook call echoes back.

    For vendors whose webhooks carry no signature of their own (Automation
    Anywhere's callbackInfo headers, SAP's invocationContext): the route
    checks it against ``job_id`` when the call names our job, or reads the
    job from the token itself.
    """

    token: str
    job_id: str | None = None


class Provider(ABC):
    """Base class for RPA backends."""

    #: The ``type:`` that selects this provider in rpa.yml.
    type_name: ClassVar[str]

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        config: RpaConfig,
        report: EventSink,
    ) -> None:
        self.name = name
        self.settings = settings
        self.config = config
        self.report = report

    def option(self, key: str, default: Any = None) -> Any:
        """A provider-specific key from its rpa.yml entry."""
        return (self.settings.model_extra or {}).get(key, default)

    @abstractmethod
    async def start(self, request: StartRequest) -> str | None:
        """Start the job and return the backend's id for it.

        Must return quickly: the user waits on it. Raise ProviderError with a
        message fit for the user ("unknown task 'x'") when the backend refuses,
        ProviderUnavailable when it cannot be reached.
        """

    async def cancel(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Ask the backend to stop ``job``; the job is already marked cancelled."""

    async def poll(self, job: Job) -> list[JobEvent]:
        """Events the backend's status API reveals; [] for push-only backends."""
        return []

    def webhook_credential(
        self, headers: Mapping[str, str], body: bytes
    ) -> WebhookCredential | None:
        """Step 1 of a vendor webhook: the credential, before anything else.

        Return the per-job token the call carries, or None when this method
        verified the vendor's own signature. Raise AuthenticationFailed for a
        missing or bad credential. Headers have lower-case names. Read no
        more of the body than the credential needs (no status, no ids), so
        a bad credential gets the same 401 whatever the rest says.
        """
        raise InvalidPayload(NO_WEBHOOKS, status=404, code="not_found")

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        """Step 2: the verified call as events ([] for "no news").

        Raise InvalidPayload for a body that is not the vendor's format.
        """
        raise InvalidPayload(NO_WEBHOOKS, status=404, code="not_found")

    async def complete_webhook(
        self, event: WebhookEvent, job: Job
    ) -> WebhookEvent | None:
        """Step 3: ``event`` for ``job`` with what the call left out fetched.

        The only step that may call the vendor. Return None to leave the news
        to polling (e.g. the vendor cannot say yet). The default keeps it.
        """
        return event

    @property
    def receives_webhooks(self) -> bool:
        """Whether this provider serves ``/rpa/v1/providers/<name>/webhook``."""
        return type(self).parse_webhook is not Provider.parse_webhook

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections and child processes."""
