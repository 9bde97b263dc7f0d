"""Microsoft Power Automate desktop flows, run through the Dataverse Web API.

A job is one desktop flow run (a Dataverse *flow session*), started with
``RunDesktopFlow`` on a desktop flow connection (a machine or machine
group). The inputs go in the run's ``inputs`` (a JSON string), together with
``rasaRpaJobId``, ``rasaRpaConversationId``, ``rasaRpaEventsUrl`` and
``rasaRpaToken``: a desktop flow that declares them as input variables can
report progress to our callback API with an *Invoke web service* action
(docs/providers/power-automate.md has one).

The environment is reached as an application: a Microsoft Entra client-
credentials token for ``<organization URL>/.default``, renewed by
:class:`~.auth.TokenAuth`. Calls (sources in :mod:`.power_automate_auth`,
:mod:`.power_automate_records` and "Work with desktop flows using code"):

* ``POST {org}/api/data/v9.2/workflows({id})/Microsoft.Dynamics.CRM.
  RunDesktopFlow`` with ``{runMode, runPriority, connectionName,
  connectionType, timeout, inputs, callbackUrl}`` answers ``{flowsessionId}``;
* ``GET flowsessions({id})?$select=statuscode,...`` is polled, and
  ``GET flowsessions({id})/outputs/$value`` gives a succeeded run's outputs;
* ``POST flowsessions({id})/Microsoft.Dynamics.CRM.CancelDesktopFlowRun``
  cancels (204);
* ``GET workflows?$filter=category eq 6 and name eq '…'`` finds a desktop
  flow by name; ``GET WhoAmI`` lets ``rasa-rpa doctor`` check the
  application user.

When a run completes Power Automate POSTs to ``callbackUrl`` (our provider
webhook). That call is not authenticated, so nothing in it is believed: the
webhook only names the flow session, and the news is read again from
Dataverse ("Dataverse is the source of truth"). Power Automate calls only
HTTPS URLs with a DNS name; with a ``callbacks.public_url`` it would refuse,
no callback URL is sent and runs are followed by polling alone.

rpa.yml::

    providers:
      power_automate:
        type: power_automate
        url: https://contoso.crm.dynamics.com      # the organization URL
        tenant_id: ${ENTRA_TENANT_ID}
        client_id: ${ENTRA_CLIENT_ID}
        client_secret: ${ENTRA_CLIENT_SECRET}
        connection_name: ${PAD_CONNECTION_NAME}
        flows: {collect_order_details: <desktop flow id>}   # or use the name
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rasa_rpa.errors import ProviderError, ProviderUnavailable
from rasa_rpa.logs import job_fields
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import (
    Capabilities,
    Diagnosis,
    Provider,
    StartRequest,
    WebhookEvent,
    diagnose_tasks,
)
from rasa_rpa.providers.http import describe_response
from rasa_rpa.providers.power_automate_auth import (
    PowerAutomateOptions,
    callback_refusal,
)
from rasa_rpa.providers.power_automate_dataverse import (
    NOT_SET_UP,
    Dataverse,
    as_object,
)
from rasa_rpa.providers.power_automate_records import (
    FINAL_STATUSES,
    STATUS_EVENTS,
    STATUS_NAMES,
    callback_run_id,
    event_data,
    event_id,
)

__all__ = ["STATUS_EVENTS", "PowerAutomateOptions", "PowerAutomateProvider"]

log = logging.getLogger(__name__)

#: What the user hears when Power Automate takes no more runs for now.
BUSY = "the automation system is busy right now; please try again in a minute"
FIXES = {
    "unknown desktop flow": "publish the desktop flow in this environment, or map "
    "the task to its id under flows:",
    "several desktop flows": "map the task to one desktop flow id under flows:",
}


class PowerAutomateProvider(Provider):
    """Runs Power Automate desktop flows; polls Dataverse; takes its callback."""

    type_name = "power_automate"

    Options = PowerAutomateOptions
    options: PowerAutomateOptions
    capabilities = Capabilities(poll=True, cancel=True, webhooks=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dataverse = Dataverse(self.name, self.options)
        self.auth = self.dataverse.auth
        #: Why the callback URL is not sent (None: it is).
        self.callback_problem = (
            None if self.options.callback_url else callback_refusal(self.callback_url)
        )
        if self.callback_problem:
            log.info(
                "%s: no callbackUrl is sent (%s: %s); runs are followed by polling",
                self.name,
                self.callback_url,
                self.callback_problem,
            )

    @property
    def callback_url(self) -> str:
        """``callback_url``, or this provider's webhook under the public URL."""
        public = self.config.callbacks.public_url.rstrip("/")
        default = f"{public}/rpa/v1/providers/{self.name}/webhook"
        return self.options.callback_url or default

    # -- doctor ----------------------------------------------------------------

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Token, the application user (WhoAmI), the callback URL, each flow."""
        await self.auth.token()  # a ProviderError here names the cause
        await self.dataverse.who_am_i()
        found = [
            Diagnosis(
                "ok",
                "power_automate: Entra and Dataverse accept the application "
                f"at {self.options.org_url}",
            )
        ]
        explicit = self.options.callback_url
        refusal = callback_refusal(explicit) if explicit else self.callback_problem
        if explicit and refusal:
            found.append(
                Diagnosis(
                    "error",
                    f"callback_url {explicit} would be refused: {refusal}, so "
                    "every run would fail to start",
                    f"set providers.{self.name}.callback_url to an HTTPS URL with "
                    "a DNS name that reaches the action server, or remove it",
                )
            )
        elif refusal:
            found.append(
                Diagnosis(
                    "warning",
                    f"no callback from Power Automate: {refusal} "
                    f"({self.callback_url}); runs are followed by polling every "
                    f"{self.options.poll_interval:g}s",
                    "serve callbacks.public_url over HTTPS with a DNS name (or "
                    f"set providers.{self.name}.callback_url) to hear of a "
                    "finished run at once",
                )
            )
        return [
            *found,
            *await diagnose_tasks(self.type_name, tasks, self.dataverse.flow_id, FIXES),
        ]

    # -- the contract ----------------------------------------------------------

    async def start(self, request: StartRequest) -> str | None:
        job, creds, options = request.job, request.credentials, self.options
        inputs = {
            **request.inputs,
            "rasaRpaJobId": job.id,
            "rasaRpaConversationId": job.conversation_id,
            "rasaRpaEventsUrl": creds.events_url,
            "rasaRpaToken": creds.token,
        }
        body: dict[str, Any] = {
            "runMode": options.run_mode,
            "runPriority": options.run_priority,
            "connectionName": options.connection_name,
            "inputs": _dumps(inputs),
        }
        if options.connection_type == "reference":
            body["connectionType"] = 2
        if options.run_timeout is not None:
            body["timeout"] = int(options.run_timeout)
        if self.callback_problem is None:
            body["callbackUrl"] = self.callback_url
        try:
            flow = await self.dataverse.flow_id(request.task)
            response = await self.dataverse.call(
                "POST",
                f"workflows({flow})/Microsoft.Dynamics.CRM.RunDesktopFlow",
                what=f"starting desktop flow {request.task!r}",
                expect=(200, 400, 404, 429),
                json=body,
            )
        except ProviderError as exc:
            exc.job_id = exc.job_id or job.id
            raise
        said = describe_response(response)
        if response.status_code == 429:
            # "We currently support up to 70 desktop flows runs per minute
            # for every connection."
            raise ProviderUnavailable(
                self.name,
                f"Power Automate takes no more runs on connection "
                f"{options.connection_name!r} for now (429: {said})",
                job_id=job.id,
                user_message=BUSY,
            )
        if response.status_code == 404:
            self.dataverse.forget_flow(request.task)
            raise ProviderError(
                self.name,
                f"unknown desktop flow {request.task!r} (404: {said})",
                job_id=job.id,
                user_message=NOT_SET_UP,
            )
        if response.status_code == 400:
            raise ProviderError(
                self.name,
                f"Power Automate refused the run of {request.task!r} (400: {said}):"
                " check connection_name, run_mode and the flow's input variables",
                job_id=job.id,
            )
        session = as_object(response).get("flowsessionId")
        if not isinstance(session, str) or not session:
            raise ProviderError(
                self.name,
                "RunDesktopFlow answered without a flowsessionId",
                job_id=job.id,
            )
        return session

    async def _news(self, ref: str) -> tuple[EventType, dict[str, Any]] | None:
        """What Dataverse says about the run now; None for "no news"."""
        session = await self.dataverse.session(ref)
        code = session.get("statuscode")
        kind = STATUS_EVENTS.get(code) if isinstance(code, int) else None
        if kind is None:
            return None
        outputs = None
        if kind is EventType.SUCCEEDED:
            outputs = await self.dataverse.outputs(ref)
        return kind, event_data(kind, session, outputs)

    async def poll(self, job: Job) -> list[JobEvent]:
        ref = job.provider_ref
        if not ref:
            return []
        news = await self._news(ref)
        if news is None:
            return []
        kind, data = news
        return [
            JobEvent(
                event_id(ref, kind), job.id, kind, data, source="power-automate-poll"
            )
        ]

    async def cancel(self, job: Job) -> None:
        """CancelDesktopFlowRun; a run that ended already needs no cancel."""
        ref = job.provider_ref
        if not ref:
            return
        response = await self.dataverse.call(
            "POST",
            f"flowsessions({ref})/Microsoft.Dynamics.CRM.CancelDesktopFlowRun",
            what="cancelling the desktop flow run",
            expect=(200, 204, 400, 404, 409),
        )
        if response.status_code < 300:
            return
        code = (await self.dataverse.session(ref)).get("statuscode")
        if code in FINAL_STATUSES:
            log.info(
                "%s: run %s is %s already; nothing to cancel",
                self.name,
                ref,
                STATUS_NAMES.get(code, code),
                extra=job_fields(job),
            )
            return
        raise ProviderError(
            self.name,
            f"Power Automate did not cancel run {ref} ({response.status_code}: "
            f"{describe_response(response)})",
            job_id=job.id,
        )

    # -- the completion callback -------------------------------------------------

    def webhook_credential(self, headers: Mapping[str, str], body: bytes) -> None:
        """No credential exists: the callback is unauthenticated by design.

        Refused (401) without Power Automate's headers; otherwise nothing in
        the call is believed: :meth:`complete_webhook` asks Dataverse.
        """
        callback_run_id(headers, body)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        """The flow session the callback names; its news is left to Dataverse."""
        run_id = callback_run_id(headers, body)
        return [
            WebhookEvent(
                f"power-automate-callback:{run_id}",
                EventType.STARTED,  # a placeholder: complete_webhook decides
                provider_ref=run_id,
                incomplete=True,
            )
        ]

    async def complete_webhook(
        self, event: WebhookEvent, job: Job
    ) -> WebhookEvent | None:
        """The run's state as Dataverse has it (the callback's body is not read)."""
        ref = event.provider_ref or job.provider_ref
        if not ref:
            return None
        try:
            news = await self._news(ref)
        except ProviderError as exc:
            log.warning(
                "%s: job %s: callback received, Dataverse unreadable (%s); "
                "polling will finish it",
                self.name,
                job.id,
                exc.message,
                extra=job_fields(job),
            )
            return None
        if news is None:
            return None
        kind, data = news
        return WebhookEvent(event_id(ref, kind), kind, data, provider_ref=ref)

    async def aclose(self) -> None:
        await self.dataverse.aclose()


def _dumps(value: dict[str, Any]) -> str:
    """``inputs`` is a JSON *string* (RunDesktopFlow: "json serialized string")."""
    return json.dumps(value, default=str, ensure_ascii=False)
