"""Automation Anywhere: deploy Automation 360 bots from the Control Room API.

A job is one deployment (``POST /v4/automations/deploy``) of an unattended
bot. Inputs travel as the Control Room's typed ``botInput`` values, together
with ``rasaRpaJobId``, ``rasaRpaEventsUrl``, ``rasaRpaToken`` and the
conversation id (``rasaRpaConversationId``, renamed by ``conversation_input``)
so a bot can report progress to our callback API itself. The Control Room tells us how
the deployment ends in two ways, and both are used because neither is
guaranteed: it POSTs to ``callbackInfo.url`` (our provider webhook) with the
headers we chose, and ``/v3/activity/list`` answers when polled.

Automation Anywhere documents no signature and no retry policy for its
callback, so the callback carries the job's own bearer token in an
``Authorization`` header; the webhook route checks it against the job. No
JSON schema for the callback body is published either: we assume it looks
like an activity record (``deploymentId``, ``status``, ``botOutVariables``,
``message``), ignore fields we do not know, and let polling confirm.

Login is ``POST /v2/authentication`` (Automation 360 retires
``/v1/authentication`` from v.33); a Control Room without v2 is asked at v1.
The token is a JWT: it is renewed shortly before its own ``exp`` claim.
A stop is ``POST /v3/activity/manage {"stop_executions": {"execution_ids":
[...]}}`` with the activity id, which the list shows a few seconds after the
deployment: cancel waits for it (``stop_wait``), and says so when it cannot.

Sources: Automation Anywhere "Authentication API", "Deploy bots API",
"Activity List" and "Control Room APIs" docs; pixiebrix-extension
``contrib/automationanywhere``; n8n-nodes-automation-anywhere (v2 login and
the manage body).

rpa.yml::

    providers:
      aa:
        type: automation_anywhere
        url: https://example.my.automationanywhere.digital
        username: rasa-bot
        api_key: ${AA_API_KEY}          # or password:
        run_as_user_ids: [7]
        pool_ids: []
        bots: {collect_order_details: 123}   # task -> botId (or use the id)
        conversation_input: rasaRpaConversationId   # botInput name; "" omits it
        stop_wait: 10s                   # how long cancel waits for the activity
        timeout: 10s
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from rasa_rpa.errors import AuthenticationFailed, ProviderError
from rasa_rpa.logs import job_fields
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.auth import TokenAuth
from rasa_rpa.providers.automation_anywhere_login import (
    AutomationAnywhereOptions,
    ControlRoomLogin,
)
from rasa_rpa.providers.automation_anywhere_values import (
    FINAL_FAILURES,
    STATUS_EVENTS,
    callback_events,
    event_for,
    from_bot_value,
    outputs_of,
    to_bot_input,
    to_bot_value,
)
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

__all__ = [
    "STATUS_EVENTS",
    "AutomationAnywhereOptions",
    "AutomationAnywhereProvider",
    "from_bot_value",
    "to_bot_input",
    "to_bot_value",
]

log = logging.getLogger(__name__)

#: Seconds between activity-list reads while cancel waits for an activity.
LIST_EVERY = 0.25


class AutomationAnywhereProvider(Provider):
    """Deploys Automation 360 bots and follows their activity."""

    type_name = "automation_anywhere"

    Options = AutomationAnywhereOptions
    options: AutomationAnywhereOptions
    capabilities = Capabilities(poll=True, cancel=True, webhooks=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = LazyClient(self.options.timeout)
        self.login = ControlRoomLogin(self.name, self.options)
        # A Control Room token is a bare JWT in X-Authorization.
        self.auth = TokenAuth(
            lambda: self.login(self.client), header="X-Authorization", scheme=""
        )

    @property
    def url(self) -> str:
        return self.options.url.rstrip("/")

    @property
    def callback_url(self) -> str:
        default = (
            f"{self.config.callbacks.public_url.rstrip('/')}"
            f"/rpa/v1/providers/{self.name}/webhook"
        )
        return self.options.callback_url or default

    def bot_id(self, task: str, job_id: str | None = None) -> int:
        """The numeric botId for ``task``: from ``bots`` or the task itself."""
        value = self.options.bots.get(task, task)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ProviderError(
                self.name,
                f"unknown bot {task!r}: add it to bots (task: botId) or use the "
                "numeric botId as the task",
                job_id=job_id,
            ) from None

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider (see LazyClient)."""
        return self._pool.get()

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Log in, then find each task's botId."""
        await self.auth.token()  # a ProviderError here names the cause

        async def find(task: str) -> None:
            self.bot_id(task)

        fixes = {"unknown bot": "add the task to bots: (task: botId)"}
        ok = Diagnosis("ok", "automation_anywhere: the vendor accepts the credentials")
        return [ok, *await diagnose_tasks(self.type_name, tasks, find, fixes)]

    async def _call(
        self,
        path: str,
        body: dict[str, Any] | None,
        *,
        what: str,
        method: str = "POST",
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """One Control Room call; ``self.auth`` renews the token once on a 401."""
        return await send(
            self.client,
            self.name,
            method,
            f"{self.url}{path}",
            what=what,
            expect=expect,
            json=body,
            auth=self.auth,
        )

    # -- the contract --------------------------------------------------------

    async def start(self, request: StartRequest) -> str | None:
        job, creds = request.job, request.credentials
        bot_id = self.bot_id(request.task, job.id)
        inputs = {
            **request.inputs,
            "rasaRpaJobId": job.id,
            "rasaRpaEventsUrl": creds.events_url,
            "rasaRpaToken": creds.token,
        }
        # As UiPath's rasa_rpa_conversation_id and SAP's conversationId: lets
        # the bot name the conversation in its own logs and messages.
        # GUESS: the Control Room ignores botInput names the bot does not
        # declare (documented only for declared input variables).
        conversation_input = self.options.conversation_input
        if conversation_input:
            inputs[conversation_input] = job.conversation_id
        body = {
            "botId": bot_id,
            "automationName": f"rasa-rpa-{job.id[:8]}",
            "automationPriority": "PRIORITY_MEDIUM",
            "botInput": to_bot_input(inputs),
            "unattendedRequest": {
                "runAsUserIds": list(self.options.run_as_user_ids),
                "poolIds": list(self.options.pool_ids),
                "numOfRunAsUsersToUse": 1,
                "deviceUsageType": "RUN_ONLY_ON_DEFAULT_DEVICE",
            },
            "callbackInfo": {
                "url": self.callback_url,
                "headers": {"Authorization": f"Bearer {creds.token}"},
            },
        }
        response = await self._call(
            "/v4/automations/deploy",
            body,
            what=f"deploying bot {request.task!r}",
            expect=(200, 201, 202, 400, 404),
        )
        if response.status_code in (400, 404):
            why = "not found" if response.status_code == 404 else "or inputs refused"
            raise ProviderError(
                self.name,
                f"unknown bot {request.task!r}: botId {bot_id} {why} "
                f"({describe_response(response)})",
                job_id=job.id,
            )
        deployment = _json(response).get("deploymentId")
        if not deployment:
            raise ProviderError(
                self.name,
                "the Control Room answered without a deploymentId",
                job_id=job.id,
            )
        return str(deployment)

    async def _activity(self, ref: str) -> dict[str, Any] | None:
        """The deployment's activity record; None until the Control Room has one."""
        body = {"filter": {"operator": "eq", "field": "deploymentId", "value": ref}}
        response = await self._call(
            "/v3/activity/list", body, what="reading the bot's activity"
        )
        items = _json(response).get("list") or []
        first = items[0] if items else None
        return first if isinstance(first, dict) else None

    async def _outputs(self, activity: Mapping[str, Any]) -> dict[str, Any]:
        """Outputs of a finished activity; the list may leave them to execution."""
        if "botOutVariables" in activity or not activity.get("id"):
            return outputs_of(activity)
        response = await self._call(
            f"/v3/activity/execution/{activity['id']}",
            None,
            what="reading the bot's outputs",
            method="GET",
        )
        return outputs_of(_json(response))

    async def poll(self, job: Job) -> list[JobEvent]:
        if not job.provider_ref:
            return []
        activity = await self._activity(job.provider_ref)
        if activity is None:
            return []  # activities appear a few seconds after the deployment
        status = str(activity.get("status") or "UNKNOWN")
        found = event_for(status, activity)
        if found is None:
            return []
        kind, data = found
        if kind is EventType.SUCCEEDED:
            data = {"outputs": await self._outputs(activity)}
        event_id = f"aa:{job.provider_ref}:{status}"
        return [JobEvent(event_id, job.id, kind, data, source="aa-poll")]

    async def cancel(self, job: Job) -> None:
        """Stop the deployment's execution; raise ProviderError if it cannot.

        The activity (whose id the stop needs) appears in the list a few
        seconds after the deployment, so a job cancelled at once waits for it
        up to ``stop_wait``. A job not deployed yet has nothing to stop.
        """
        if not job.provider_ref:
            return
        activity = await self._listed(job)
        if activity.get("status") in ("COMPLETED", *FINAL_FAILURES):
            return  # it ended already; its end reaches the job on its own
        response = await self._call(
            "/v3/activity/manage",
            {"stop_executions": {"execution_ids": [str(activity["id"])]}},
            what="stopping the bot",
            expect=(200, 201, 202, 204, 400, 403, 404, 409),
        )
        if response.status_code >= 300:
            raise ProviderError(
                self.name,
                f"the Control Room refused to stop the bot: /v3/activity/manage "
                f"answered {response.status_code}: {describe_response(response)}",
                job_id=job.id,
            )

    async def _listed(self, job: Job) -> dict[str, Any]:
        """The job's activity once the list shows it (ProviderError after stop_wait)."""
        ref = str(job.provider_ref)
        wait = self.options.stop_wait
        deadline = time.monotonic() + wait
        while True:
            activity = await self._activity(ref)
            if activity is not None and activity.get("id"):
                return activity
            if time.monotonic() >= deadline:
                raise ProviderError(
                    self.name,
                    f"could not stop deployment {ref}: the Control Room did not "
                    f"list its execution within {wait:g}s (stop_wait)",
                    job_id=job.id,
                )
            await asyncio.sleep(LIST_EVERY)

    def webhook_credential(
        self, headers: Mapping[str, str], body: bytes
    ) -> WebhookCredential:
        """The callbackInfo header: the job's token, checked before the body."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "an Authorization: Bearer header is required (the callbackInfo "
                "headers sent at deployment)"
            )
        return WebhookCredential(token.strip())

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        return callback_events(body)

    async def complete_webhook(
        self, event: WebhookEvent, job: Job
    ) -> WebhookEvent | None:
        """A success without outputs, with the outputs the Control Room has."""
        if not event.incomplete or not event.provider_ref:
            return event
        try:
            activity = await self._activity(event.provider_ref)
            outputs = await self._outputs(activity or {})
        except ProviderError as exc:
            activity = None
            log.warning(
                "automation anywhere: job %s completed; no outputs yet (%s); "
                "polling will finish it",
                job.id,
                exc,
                extra=job_fields(job),
            )
        if activity is None:
            return None  # the poller reports the success, outputs and all
        return replace(event, data={"outputs": outputs}, incomplete=False)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
