"""Automation Anywhere: deploy Automation 360 bots from the Control Room API.

A job is one deployment (``POST /v4/automations/deploy``) of an unattended
bot. Inputs travel as the Control Room's typed ``botInput`` values, together
with ``rasaRpaJobId``, ``rasaRpaEventsUrl`` and ``rasaRpaToken`` so a bot can
report progress to our callback API itself. The Control Room tells us how
the deployment ends in two ways, and both are used because neither is
guaranteed: it POSTs to ``callbackInfo.url`` (our provider webhook) with the
headers we chose, and ``/v3/activity/list`` answers when polled.

Automation Anywhere documents no signature and no retry policy for its
callback, so the callback carries the job's own bearer token in an
``Authorization`` header; the webhook route checks it against the job. No
JSON schema for the callback body is published either: we assume it looks
like an activity record (``deploymentId``, ``status``, ``botOutVariables``,
``message``), ignore fields we do not know, and let polling confirm.

Sources: Automation Anywhere "Authentication API", "Deploy bots API" and
"Request bot progress" docs; pixiebrix-extension ``contrib/automationanywhere``.

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
        timeout: 10s
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from rasa_rpa import strictjson
from rasa_rpa.config import parse_duration
from rasa_rpa.errors import AuthenticationFailed, InvalidPayload, ProviderError
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import Provider, StartRequest, WebhookEvent
from rasa_rpa.providers.http import (
    AccessToken,
    TokenCache,
    async_client,
    describe_response,
    send,
)

__all__ = [
    "STATUS_EVENTS",
    "AutomationAnywhereProvider",
    "from_bot_value",
    "to_bot_input",
    "to_bot_value",
]

log = logging.getLogger(__name__)

#: Control Room tokens live 20 minutes (Authentication API docs).
TOKEN_LIFETIME = 20 * 60

#: Activity status -> the event it means; statuses not listed mean "no news".
STATUS_EVENTS: dict[str, EventType] = {
    "RUNNING": EventType.STARTED,
    "RUN_PAUSED": EventType.STARTED,
    "UPDATE": EventType.STARTED,
    "COMPLETED": EventType.SUCCEEDED,
    "DEPLOY_FAILED": EventType.FAILED,
    "RUN_FAILED": EventType.FAILED,
    "RUN_TIMED_OUT": EventType.FAILED,
    "RUN_ABORTED": EventType.CANCELLED,
}
#: Statuses that say the deployment has not run yet (QUEUED and friends).
WAITING_STATUSES = frozenset({"QUEUED", "PENDING_EXECUTION", "DEPLOYED", "UNKNOWN"})


def to_bot_value(value: Any) -> dict[str, Any]:
    """One Python value as a typed Control Room variable (numbers are strings)."""
    if value is None:
        return {"type": "STRING", "string": ""}
    if isinstance(value, bool):  # before int: bool is an int
        return {"type": "BOOLEAN", "boolean": "true" if value else "false"}
    if isinstance(value, (int, float)):
        return {"type": "NUMBER", "number": str(value)}
    if isinstance(value, (list, tuple)):
        return {"type": "LIST", "list": [to_bot_value(v) for v in value]}
    if isinstance(value, dict):
        return {
            "type": "DICTIONARY",
            "dictionary": [
                {"key": str(k), "value": to_bot_value(v)} for k, v in value.items()
            ],
        }
    return {"type": "STRING", "string": str(value)}


def to_bot_input(inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``botInput`` for a deployment: every input as a typed variable."""
    return {key: to_bot_value(value) for key, value in inputs.items()}


def _number(text: Any) -> Any:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    try:
        number = float(str(text))
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in str(text) else number


def from_bot_value(value: Any) -> Any:
    """A typed Control Room variable back as Python; unknown shapes pass through."""
    if not isinstance(value, dict) or "type" not in value:
        return value
    kind = str(value["type"]).upper()
    if kind == "NUMBER":
        return _number(value.get("number"))
    if kind == "BOOLEAN":
        flag = value.get("boolean")
        return flag if isinstance(flag, bool) else str(flag).lower() == "true"
    if kind == "LIST":
        return [from_bot_value(v) for v in value.get("list") or []]
    if kind == "DICTIONARY":
        entries = value.get("dictionary") or []
        return {str(e.get("key")): from_bot_value(e.get("value")) for e in entries}
    if kind == "STRING":
        return value.get("string", "")
    return value.get(kind.lower(), value)


def outputs_of(activity: Mapping[str, Any]) -> dict[str, Any]:
    """The bot's output variables from an activity or callback body."""
    variables = activity.get("botOutVariables") or {}
    values = variables.get("values") if isinstance(variables, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): from_bot_value(v) for k, v in values.items()}


def event_for(
    status: str, activity: Mapping[str, Any]
) -> tuple[EventType, dict[str, Any]] | None:
    """The event type and data an activity status means, None for "no news"."""
    kind = STATUS_EVENTS.get(status)
    if kind is None:
        if status not in WAITING_STATUSES:
            log.info("automation anywhere: ignoring unknown status %r", status)
        return None
    if kind is EventType.SUCCEEDED:
        return kind, {"outputs": outputs_of(activity)}
    if kind is EventType.FAILED:
        reason = activity.get("message") or activity.get("progressMessage")
        return kind, {"error": str(reason) if reason else f"the bot ended {status}"}
    return kind, {}


class AutomationAnywhereProvider(Provider):
    """Deploys Automation 360 bots and follows their activity."""

    type_name = "automation_anywhere"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: httpx.AsyncClient | None = None
        self.tokens = TokenCache(self._authenticate)

    # -- options -------------------------------------------------------------

    @property
    def url(self) -> str:
        url = self.option("url")
        if not url:
            raise ProviderError(self.name, "set url: the Control Room's base URL")
        return str(url).rstrip("/")

    @property
    def callback_url(self) -> str:
        default = (
            f"{self.config.callbacks.public_url.rstrip('/')}"
            f"/rpa/v1/providers/{self.name}/webhook"
        )
        return str(self.option("callback_url", default))

    def bot_id(self, task: str, job_id: str | None = None) -> int:
        """The numeric botId for ``task``: from ``bots`` or the task itself."""
        bots = self.option("bots") or {}
        value = bots.get(task, task) if isinstance(bots, dict) else task
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
        if self._client is None:
            timeout = parse_duration(self.option("timeout", 10))
            self._client = async_client(timeout=timeout)
        return self._client

    # -- authentication ------------------------------------------------------

    async def _authenticate(self) -> AccessToken:
        """Log in with the API key (or password); tokens last 20 minutes."""
        username = self.option("username")
        body: dict[str, Any] = {"username": username}
        if self.option("api_key"):
            body["apiKey"] = str(self.option("api_key"))
        elif self.option("password"):
            body["password"] = str(self.option("password"))
        if not username or len(body) < 2:
            raise ProviderError(self.name, "set username and api_key (or password)")
        endpoint = f"{self.url}/v1/authentication"
        response = await send(
            self.client,
            self.name,
            "POST",
            endpoint,
            what="logging in to the Control Room",
            expect=(200, 201, 401, 404),
            json=body,
        )
        if response.status_code == 401:
            raise ProviderError(
                self.name,
                f"the Control Room refused the login ({describe_response(response)}):"
                " check username and api_key (API key generation must be allowed"
                " for the user)",
            )
        if response.status_code == 404:
            raise ProviderError(
                self.name,
                f"url does not look like a Control Room: {endpoint} not found",
            )
        token = _json(response).get("token")
        if not isinstance(token, str) or not token:
            raise ProviderError(self.name, f"{endpoint} answered without a token")
        return AccessToken(token, time.time() + TOKEN_LIFETIME)

    async def _call(
        self,
        path: str,
        body: dict[str, Any] | None,
        *,
        what: str,
        method: str = "POST",
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """Call with the cached token; a 401 renews it once and tries again."""
        for attempt in range(2):
            token = await self.tokens.get()
            retry = (401,) if attempt == 0 else ()
            response = await send(
                self.client,
                self.name,
                method,
                f"{self.url}{path}",
                what=what,
                expect=(*expect, *retry),
                json=body,
                headers={"X-Authorization": token},
            )
            if response.status_code != 401 or 401 in expect:
                return response
            self.tokens.invalidate()
        raise AssertionError("unreachable")  # pragma: no cover

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
        body = {
            "botId": bot_id,
            "automationName": f"rasa-rpa-{job.id[:8]}",
            "automationPriority": "PRIORITY_MEDIUM",
            "botInput": to_bot_input(inputs),
            "unattendedRequest": {
                "runAsUserIds": [int(u) for u in self.option("run_as_user_ids") or []],
                "poolIds": list(self.option("pool_ids") or []),
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
        """Best-effort stop: only an activity the Control Room already lists.

        A deployment still being queued has no activity id to stop yet; the
        job is already cancelled on our side, and any later report is ignored.
        """
        if not job.provider_ref:
            return
        activity = await self._activity(job.provider_ref)
        if activity is None or not activity.get("id"):
            log.info("automation anywhere: no activity yet to stop for %s", job.id)
            return
        await self._call(
            "/v3/activity/manage",
            {"stop": {"executionIds": [str(activity["id"])]}},
            what="stopping the bot",
        )

    async def receive_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "an Authorization: Bearer header is required (the callbackInfo "
                "headers sent at deployment)"
            )
        try:
            raw = strictjson.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidPayload(
                "the body is not valid JSON", status=400, code="invalid_json"
            ) from None
        if not isinstance(raw, dict):
            raise InvalidPayload("the body must be a JSON object")
        deployment, status = raw.get("deploymentId"), raw.get("status")
        if not deployment or not status:
            raise InvalidPayload('"deploymentId" and "status" are required')
        found = event_for(str(status), raw)
        if found is None:
            return []
        kind, data = found
        if kind is EventType.SUCCEEDED and "botOutVariables" not in raw:
            # Outputs are the point of the job: ask for them rather than
            # record a success without them (the event id would then be taken).
            try:
                activity = await self._activity(str(deployment))
                data = {"outputs": await self._outputs(activity or {})}
            except ProviderError as exc:
                activity = None
                log.warning("automation anywhere: no outputs yet (%s)", exc)
            if activity is None:
                return []  # the poller reports the success, outputs and all
        return [
            WebhookEvent(
                event_id=f"aa:{deployment}:{status}",
                type=kind,
                data=data,
                provider_ref=str(deployment),
                token=token.strip(),
            )
        ]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
