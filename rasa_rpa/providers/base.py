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

What a provider can do is declared, not guessed: set ``capabilities``
(``poll``: the reconciler asks :meth:`Provider.poll`; ``cancel``: the vendor
can stop a job; ``webhooks``: the webhook route serves it). Its rpa.yml keys
are a pydantic model named in ``Options`` (see :mod:`.options`), checked
when the config is loaded; the instance has them, typed, as ``options``.
``rasa-rpa doctor`` checks a provider only through :meth:`Provider.diagnose`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rasa_rpa.config import ProviderSettings, RpaConfig
from rasa_rpa.errors import InvalidPayload, ProviderError, ProviderUnavailable
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.options import ProviderOptions
from rasa_rpa.security import JobCredentials

__all__ = [
    "NO_WEBHOOKS",
    "Capabilities",
    "Diagnosis",
    "EventSink",
    "FileSink",
    "Provider",
    "StartRequest",
    "WebhookCredential",
    "WebhookEvent",
    "diagnose_tasks",
]

#: The one 404 for a webhook nobody here receives: it names no provider and
#: no type, so a stranger cannot list them (the log says which it was).
NO_WEBHOOKS = "no webhook is received at this address"

#: How a provider reports what it learns outside a callback (exit codes, polls).
EventSink = Callable[[JobEvent], Awaitable[Any]]
#: How a provider sends the user a file a job left on this machine:
#: ``sink(job, path, title, upload_id)`` (see the local provider's ``files``).
FileSink = Callable[[Job, Path, str, str], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do beyond starting jobs (declared by each class)."""

    #: :meth:`Provider.poll` asks the vendor's status API (the reconciler uses it).
    poll: bool = False
    #: :meth:`Provider.cancel` stops the work at the vendor.
    cancel: bool = False
    #: The provider receives its vendor's own webhook (the three steps above).
    webhooks: bool = False


@dataclass(frozen=True)
class Diagnosis:
    """One verdict of :meth:`Provider.diagnose`, for ``rasa-rpa doctor``.

    ``task`` names the automation task it is about; None for the provider
    itself. In ``fix``, ``{task_key}`` stands for the rpa.yml key of the task
    (``automations.<name>.task``). Messages are secret-free (they come from
    ProviderError texts).
    """

    status: Literal["ok", "warning", "error"]
    message: str
    fix: str = ""
    task: str | None = None


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
    #: The model of its ``providers.<name>`` keys, validated at config load.
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    #: What it can do; an instance may narrow it from its options.
    capabilities: Capabilities = Capabilities()
    #: The validated options (subclasses narrow the type).
    options: ProviderOptions
    #: Where files this provider uploads itself go; set by the runtime.
    file_sink: FileSink | None = None

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
        self.options = self.Options.from_entry(
            name, settings.model_dump(), config.source
        )

    def option(self, key: str, default: Any = None) -> Any:
        """An untyped key, for third-party providers without an ``Options`` model."""
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
        return self.capabilities.webhooks

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Check the setup without starting work: credentials, then each task.

        ``tasks`` are the tasks of the automations that use this provider.
        May raise ProviderUnavailable (vendor unreachable) or ProviderError
        (credentials refused); problems with one task are Diagnosis items.
        """
        return [Diagnosis("ok", f"{self.type_name}: built; no further checks known")]

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections and child processes."""


async def diagnose_tasks(
    kind: str,
    tasks: Sequence[str],
    find: Callable[[str], Awaitable[object]],
    fixes: Mapping[str, str],
) -> list[Diagnosis]:
    """Look each task up the way a start would; ``fixes`` maps error text to advice.

    ProviderUnavailable propagates: an unreachable vendor is one finding for
    the provider, not one per task.
    """
    found: list[Diagnosis] = []
    for task in tasks:
        try:
            await find(task)
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            advice = [fix for text, fix in fixes.items() if text in exc.message]
            found.append(
                Diagnosis("error", exc.message, advice[0] if advice else "", task)
            )
        else:
            found.append(Diagnosis("ok", f"{kind}: task {task!r} found", task=task))
    return found
