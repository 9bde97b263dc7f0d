"""SAP Intelligent RPA / SAP Build Process Automation, started by API triggers.

SAP starts an automation when its *API trigger* URL is called with an OAuth
token (client credentials from the BTP service key) and an API key. SAP has
no public job-status or cancel API for trigger runs: results come back only
through the trigger's *API notifier*, a REST call SAP makes when the job
reaches Start, Success, Failure, Cancel or Expired. So this provider starts
jobs and translates notifier calls; it never polls.

The trigger's ``invocationContext`` is not seen by the automation but is
echoed to notifiers, which makes it the correlation field: rasa-rpa puts the
job id, the conversation id, the callback URL and the per-job token there.

rpa.yml::

    providers:
      sap:
        type: sap
        service_key_url: https://<subdomain>.authentication.<region>.hana.ondemand.com
        client_id: ${SAP_CLIENT_ID}
        client_secret: ${SAP_CLIENT_SECRET}
        api_key: ${SAP_IRPA_API_KEY}        # needs trigger_execute
        triggers:                           # task -> API trigger URL (or id)
          collect_order_details: https://api.irpa.cfapps.eu10.hana.ondemand.com/runtime/v1/apiTriggers/<id>/runs
        # or: trigger_url_template: https://host/runtime/v1/apiTriggers/{task}/runs
        timeout: 10s

The API notifier (Control Tower → the trigger → Add Notifier → API) must
POST to ``<public_url>/rpa/v1/providers/sap/webhook``. SAP's default body
works as it is; a custom payload must keep these fields::

    {"status": "${status}",                        # or "event": "Success"
     "jobUid": "${jobUid}",
     "invocationContext": ${invocation_context},   # echoed as sent
     "output": ${output},                          # on Success
     "error": ${error}}                            # on Failure

The status is read from ``status``, ``event``, ``jobStatus`` or ``state``,
in SAP's event names (Start, Success...) or job statuses (RUNNING,
COMPLETED, FAILED, CANCELED, EXPIRED), in any case. Failure details may be
text, an object or a list; a variable that can be an object must stand
unquoted in a template, or the body is not JSON.

``invocationContext.rasaRpaToken`` authenticates the call (the route checks
it against the job), so no other secret has to be configured in SAP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from rasa_rpa.errors import (
    AuthenticationFailed,
    InvalidPayload,
    ProviderError,
)
from rasa_rpa.logs import clip, job_fields
from rasa_rpa.models import Job, JobEvent
from rasa_rpa.providers.auth import AccessToken, TokenAuth
from rasa_rpa.providers.base import (
    Capabilities,
    Diagnosis,
    Provider,
    StartRequest,
    WebhookCredential,
    WebhookEvent,
    diagnose_tasks,
)
from rasa_rpa.providers.http import LazyClient, describe_response, send
from rasa_rpa.providers.options import reveal
from rasa_rpa.providers.sap_auth import TOKEN_PATH, SapOptions, fetch_token, token_base
from rasa_rpa.providers.sap_notifier import (
    NOTIFIER_EVENTS,
    STATUS_FIELDS,
    WAITING_STATUSES,
    event_data,
    invocation_context,
    missing_inputs,
    notifier_event,
    notifier_payload,
)

__all__ = ["NOTIFIER_EVENTS", "SapOptions", "SapProvider"]

log = logging.getLogger(__name__)

class SapProvider(Provider):
    """Starts SAP automations through API triggers; learns results from notifiers."""

    type_name = "sap"
    Options = SapOptions
    options: SapOptions
    capabilities = Capabilities(webhooks=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options.cancel_url_template:
            # Only the customer's own cancel endpoint can stop a SAP job.
            self.capabilities = Capabilities(cancel=True, webhooks=True)
        self._triggers = dict(self.options.triggers)
        self._template = self.options.trigger_url_template
        base, pasted = token_base(self.options.service_key_url)
        if pasted:
            # Forgiving on purpose: the token URL is what SAP's docs show most.
            log.warning(
                "%s: service_key_url ends in %s; using %s. Set it to the "
                "service key's url.",
                self.name,
                TOKEN_PATH,
                base,
            )
        self.token_url = base + TOKEN_PATH
        self.auth = TokenAuth(self._fetch_token)
        self._pool = LazyClient(self.options.timeout)

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider (see LazyClient)."""
        return self._pool.get()

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Get a token, then find each task's API trigger."""
        await self.auth.token()  # a ProviderError here names the cause

        async def find(task: str) -> None:
            self.trigger_url(task)

        fixes = {"trigger": "add the task under triggers: or set trigger_url_template"}
        ok = Diagnosis("ok", "sap: the vendor accepts the credentials")
        return [ok, *await diagnose_tasks("sap", tasks, find, fixes)]

    def trigger_url(self, task: str) -> str:
        """The API trigger URL for ``task`` (a configured URL, id or the template)."""
        target = self._triggers.get(task)
        if target is not None and target.startswith(("http://", "https://")):
            return target
        if self._template:
            return self._template.replace("{task}", target or task)
        raise ProviderError(
            self.name,
            f"no API trigger for task {task!r}: add triggers.{task} "
            f"to providers.{self.name} in {self.config.source}",
        )

    async def _fetch_token(self) -> AccessToken:
        return await fetch_token(self.client, self.name, self.options, self.token_url)

    async def _call(
        self,
        url: str,
        body: dict[str, Any],
        *,
        what: str,
        job_id: str | None,
        task: str | None = None,
    ) -> httpx.Response:
        """POST to SAP; ``self.auth`` sets the token and renews it once on a 401."""
        response = await send(
            self.client,
            self.name,
            "POST",
            url,
            what=what,
            expect=(200, 201, 202, 204, 401, 403, 404, 415, 422),
            json=body,
            headers={
                "irpa-api-key": reveal(self.options.api_key) or "",
                "Content-Type": "application/json",
            },
            auth=self.auth,
        )
        status = response.status_code
        if status < 300:
            return response
        detail = describe_response(response)
        missing = missing_inputs(response) if status == 422 else []
        if missing:
            detail = f"missing inputs: {', '.join(missing)} ({detail})"
        hint = {
            401: "SAP refused a fresh OAuth token: use the service key of the "
            "same SAP instance as the API trigger",
            403: "the API key needs trigger_execute (and the OAuth client must "
            "belong to the same subaccount)",
            404: f"unknown API trigger: check triggers.{task} in {self.config.source}"
            if task
            else f"check cancel_url_template of providers.{self.name} in "
            f"{self.config.source}",
            415: "SAP requires Content-Type: application/json (a proxy may have "
            "dropped it)",
        }.get(status)
        message = (
            f"the trigger's inputs don't match: {detail}"
            if hint is None
            else f"{hint} (SAP answered: {detail})"
        )
        raise ProviderError(
            self.name, f"{what}: {url} answered {status}: {message}", job_id=job_id
        )

    async def start(self, request: StartRequest) -> str | None:
        creds = request.credentials
        url = self.trigger_url(request.task)
        body = {
            # Not seen by the automation; SAP echoes it to the notifiers.
            "invocationContext": {
                "rasaRpaJobId": request.job.id,
                "conversationId": request.job.conversation_id,
                "rasaRpaEventsUrl": creds.events_url,
                "rasaRpaToken": creds.token,
            },
            "input": request.inputs,
        }
        response = await self._call(
            url,
            body,
            what="starting the SAP job",
            job_id=request.job.id,
            task=request.task,
        )
        try:
            job_uid = response.json()["jobUid"]
        except (ValueError, KeyError, TypeError):
            job_uid = None
        if not isinstance(job_uid, str) or not job_uid:
            raise ProviderError(
                self.name,
                f"{url} accepted the job but returned no jobUid",
                job_id=request.job.id,
            )
        return job_uid

    async def poll(self, job: Job) -> list[JobEvent]:
        """Nothing: SAP offers no public status API for trigger runs.

        Results arrive only through the API notifier; the reconciler still
        expires jobs whose notifier never calls.
        """
        return []

    async def cancel(self, job: Job) -> None:
        """POST ``cancel_url_template`` if set; SAP has no public cancel API.

        The template may use ``{jobUid}`` and ``{job_id}``. Without it the
        provider declares no cancel capability: a user's cancel is refused
        ("could not stop it"), and an expired job keeps running in SAP.
        """
        template = self.options.cancel_url_template
        if not template:
            # Reached on expiry only: the service refuses a user's cancel
            # for a provider that declares no cancel capability.
            log.info(
                "%s: job %s ended in rasa-rpa; SAP has no cancel API, "
                "stop jobUid %s in Control Tower if needed",
                self.name,
                job.id,
                job.provider_ref,
                extra=job_fields(job),
            )
            return
        url = str(template).replace("{jobUid}", job.provider_ref or "")
        url = url.replace("{job_id}", job.id)
        await self._call(url, {}, what="cancelling the SAP job", job_id=job.id)

    def webhook_credential(
        self, headers: Mapping[str, str], body: bytes
    ) -> WebhookCredential:
        """``invocationContext.rasaRpaToken``: checked before the status is read."""
        context = invocation_context(notifier_payload(body))
        token = context.get("rasaRpaToken")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(
                "the notifier payload must carry invocationContext.rasaRpaToken"
            )
        job_id = context.get("rasaRpaJobId")
        return WebhookCredential(token, job_id if isinstance(job_id, str) else None)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        """Translate an API notifier call (the payload in the module docstring)."""
        payload = notifier_payload(body)
        job_id = invocation_context(payload).get("rasaRpaJobId")
        if not isinstance(job_id, str) or not job_id:
            raise InvalidPayload("invocationContext.rasaRpaJobId is required")
        raw_event = next(
            (payload[f] for f in STATUS_FIELDS if isinstance(payload.get(f), str)),
            None,
        )
        if raw_event is not None and raw_event.lower() in WAITING_STATUSES:
            return []
        known = notifier_event(raw_event)
        if known is None:
            raise InvalidPayload(
                "status (or event) must be one of Start, Success, Failure, Cancel, "
                f"Expired or a job status such as COMPLETED; got {clip(raw_event)}"
            )
        name, event_type = known
        job_uid = payload.get("jobUid")
        if job_uid is not None and not isinstance(job_uid, str):
            raise InvalidPayload("jobUid must be a string")
        data = event_data(name, payload)
        return [
            WebhookEvent(
                event_id=f"sap:{job_uid or job_id}:{name}",
                type=event_type,
                data=data,
                job_id=job_id,
                provider_ref=job_uid or None,
            )
        ]

    async def aclose(self) -> None:
        await self._pool.aclose()
