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

__all__ = ["EventSink", "Provider", "StartRequest", "WebhookEvent"]

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
    a UiPath job Id). ``token`` is a per-job credential the vendor echoed
    (e.g. from Automation Anywhere's callbackInfo headers): the route checks
    it against the job, so a provider whose webhooks carry no signature of
    their own authenticates that way.
    """

    event_id: str
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    provider_ref: str | None = None
    token: str | None = None


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

    async def receive_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        """Verify and translate the vendor's own webhook call.

        Served at ``POST /rpa/v1/providers/<name>/webhook``. Raise
        AuthenticationFailed for a bad signature and InvalidPayload for a
        body that is not the vendor's format. Headers have lower-case names.
        """
        raise InvalidPayload(
            f"provider {self.name!r} ({self.type_name}) receives no webhooks",
            status=404,
            code="no_webhooks",
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections and child processes."""
