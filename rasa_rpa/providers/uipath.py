"""UiPath Orchestrator: start processes as jobs, poll them, take its webhooks.

The robot gets its callback coordinates the way Botpress's uipath module
passed them: inside the job's ``InputArguments`` (``rasa_rpa_job_id``,
``rasa_rpa_conversation_id``, ``rasa_rpa_events_url``, ``rasa_rpa_token``),
so a workflow can report progress or chat with an HTTP Request activity.
Orchestrator webhooks are sent once and never retried, so :meth:`poll` on
``odata/Jobs(<Id>)`` is the source of truth and webhooks only make it faster.

rpa.yml::

    providers:
      uipath:
        type: uipath
        url: https://cloud.uipath.com/<org>/<tenant>/orchestrator_
        client_id: ${UIPATH_CLIENT_ID}          # an External Application
        client_secret: ${UIPATH_CLIENT_SECRET}
        # token_url: https://cloud.uipath.com/identity_/connect/token (default)
        # scope: OR.Jobs OR.Folders.Read OR.Execution
        folder_id: 123456                       # or folder_path: Shared/Bots
        webhook_secret: ${UIPATH_WEBHOOK_SECRET}  # Orchestrator webhook's secret
        # strategy: ModernJobsCount
        # timeout: 10s

The legacy cloud flow is used when ``refresh_token`` is set (then
``token_url`` defaults to https://account.uipath.com/oauth/token and
``tenant_name`` is sent as ``X-UIPATH-TenantName``). An automation's
``task`` is a process key, optionally pinned: ``collect_order_details@1.0.3``.
Webhooks go to ``<public_url>/rpa/v1/providers/<name>/webhook``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from rasa_rpa import strictjson
from rasa_rpa.config import parse_duration
from rasa_rpa.errors import (
    AuthenticationFailed,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.logs import clip, job_fields
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import Provider, StartRequest, WebhookEvent
from rasa_rpa.providers.http import (
    AccessToken,
    TokenCache,
    async_client,
    describe_response,
    send,
)
from rasa_rpa.security import same_text

__all__ = ["JOB_STATES", "WEBHOOK_TYPES", "UiPathProvider"]

log = logging.getLogger(__name__)

LEGACY_TOKEN_URL = "https://account.uipath.com/oauth/token"
DEFAULT_SCOPE = "OR.Jobs OR.Folders.Read OR.Execution"
_API = "Jobs/UiPath.Server.Configuration.OData."
_TOKEN_SUFFIXES = ("/connect/token", "/oauth/token")
_BAD_CLIENT = {"invalid_client", "unauthorized_client", "access_denied"}

#: Orchestrator job states that mean something to a rasa-rpa job. Pending,
#: Stopping and Terminating say nothing new: the job is not yet (or not
#: quite) anywhere else.
JOB_STATES: dict[str, EventType] = {
    "Running": EventType.STARTED,
    "Resumed": EventType.STARTED,
    "Suspended": EventType.STARTED,
    "Successful": EventType.SUCCEEDED,
    "Faulted": EventType.FAILED,
    "Stopped": EventType.CANCELLED,
}
#: Webhook ``Type``s that carry one ``Job``; others (job.created...) are ignored.
WEBHOOK_TYPES: dict[str, EventType] = {
    "job.started": EventType.STARTED,
    "job.resumed": EventType.STARTED,
    "job.completed": EventType.SUCCEEDED,
    "job.faulted": EventType.FAILED,
    "job.stopped": EventType.CANCELLED,
}


def _outputs(value: Any) -> dict[str, Any] | None:
    """OutputArguments as a dict (the API sends a JSON string); None if absent."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            log.warning("uipath: OutputArguments is not JSON; ignoring it")
            return None
    if isinstance(value, dict):
        return value
    return None


def _event_data(kind: EventType, job: Mapping[str, Any]) -> dict[str, Any]:
    """What the job's Orchestrator record tells us, as rasa-rpa event data."""
    if kind is EventType.SUCCEEDED:
        return {"outputs": _outputs(job.get("OutputArguments")) or {}}
    if kind is EventType.FAILED:
        error = job.get("JobError")
        error = error if isinstance(error, dict) else {}
        reason = job.get("Info") or error.get("Detail") or error.get("Title")
        return {"error": str(reason or "the UiPath job faulted")}
    if kind is EventType.CANCELLED:
        return {"reason": "the job was stopped in UiPath Orchestrator"}
    return {}


def _event_id(ref: str, kind: EventType) -> str:
    """One id per job and outcome, so polls and webhooks dedupe each other."""
    return f"uipath:{ref}:{kind.value}"


class UiPathProvider(Provider):
    """Runs UiPath processes through the Orchestrator OData API."""

    type_name = "uipath"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        where = f"providers.{self.name}"
        url = self.option("url")
        if not url:
            raise self.config.error(
                f"{where}.url",
                "is required",
                "set it to the Orchestrator URL, e.g. "
                "https://cloud.uipath.com/<org>/<tenant>/orchestrator_",
            )
        self.base_url = str(url).rstrip("/")
        self._client_id = str(self.option("client_id") or "")
        self._client_secret = self._secret("client_secret")
        self._refresh_token = self._secret("refresh_token")
        self.legacy = self._refresh_token is not None
        if not self._client_id or not (self._client_secret or self.legacy):
            raise self.config.error(
                f"{where}.client_id",
                "client_id and client_secret "
                "(or client_id and refresh_token) are required",
                "create an External Application in UiPath Admin and copy its "
                "App ID and App Secret",
            )
        origin = urlsplit(self.base_url)
        self.token_url = str(
            self.option("token_url")
            or (
                LEGACY_TOKEN_URL
                if self.legacy
                else f"{origin.scheme}://{origin.netloc}/identity_/connect/token"
            )
        )
        self.scope = str(self.option("scope", DEFAULT_SCOPE))
        self.strategy = str(self.option("strategy", "ModernJobsCount"))
        try:
            self.timeout = parse_duration(self.option("timeout", 10))
        except ValueError as exc:
            raise self.config.error(
                f"{where}.timeout", str(exc), "write a duration such as 10s or 1m"
            ) from None
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if self.option("folder_id") is not None:
            self._headers["X-UIPATH-OrganizationUnitId"] = str(self.option("folder_id"))
        elif self.option("folder_path"):
            self._headers["X-UIPATH-FolderPath"] = str(self.option("folder_path"))
        self._folder = len(self._headers) > 1
        if self.option("tenant_name"):
            self._headers["X-UIPATH-TenantName"] = str(self.option("tenant_name"))
        self.tokens = TokenCache(self._fetch_token)
        self._releases: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None

    def _secret(self, key: str) -> str | None:
        """A secret option as a plain string, whether str or pydantic SecretStr."""
        value = self.option(key)
        if value is None or value == "":
            return None
        reveal = getattr(value, "get_secret_value", None)
        return str(reveal() if callable(reveal) else value)

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider, made inside the running loop."""
        if self._client is None:
            self._client = async_client(timeout=self.timeout)
        return self._client

    # -- tokens ----------------------------------------------------------------

    async def _fetch_token(self) -> AccessToken:
        if self.legacy:
            body = {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "refresh_token": self._refresh_token,
            }
            tenant = {k: v for k, v in self._headers.items() if "Tenant" in k}
            extra: dict[str, Any] = {"json": body, "headers": tenant}
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret or "",
                "scope": self.scope,
            }
            extra = {"data": form}
        response = await send(
            self.client,
            self.name,
            "POST",
            self.token_url,
            what="getting a UiPath access token",
            expect=(200, 400, 401, 403, 404, 405),
            **extra,
        )
        if response.status_code != 200:
            raise ProviderError(self.name, self._token_problem(response))
        try:
            token = response.json()
            value = str(token["access_token"])
            ttl = float(token.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProviderError(
                self.name,
                f"token URL {self.token_url} answered without an access_token: it "
                "should be the identity server's /identity_/connect/token "
                "(or /oauth/token for the legacy flow)",
            ) from None
        return AccessToken(value, time.time() + ttl)

    def _token_problem(self, response: httpx.Response) -> str:
        """Why the token endpoint said no, and what to change (never a secret)."""
        status, url = response.status_code, self.token_url
        try:
            body = response.json()
        except ValueError:
            body = None
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        said = f"{url} answered {status}" + (f" {error}" if error else "")
        if status in (404, 405):
            if not url.rstrip("/").endswith(_TOKEN_SUFFIXES):
                return (
                    f"token URL {url} looks wrong: it should end with "
                    "/identity_/connect/token (or /oauth/token for the legacy flow)"
                )
            return f"{said}: check the host in token_url"
        if error == "invalid_scope":
            return (
                f"{said}: the external application is not granted the scopes "
                f"'{self.scope}'; add them in UiPath Admin > External Applications "
                "or set scope: to the ones it has"
            )
        if self.legacy and (error in _BAD_CLIENT | {"invalid_grant"} or status == 401):
            return (
                f"{said}: check client_id/refresh_token (the refresh token may have "
                "been revoked) and tenant_name"
            )
        if error in _BAD_CLIENT or status == 401:
            return (
                f"{said}: check client_id/client_secret and that the external "
                f"application has the scopes '{self.scope}'"
            )
        if error == "unsupported_grant_type":
            return f"{said}: is token_url the identity server's /connect/token?"
        return f"{said}: {describe_response(response)}"

    # -- API calls -------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """One OData call with a token; on a 401 renew the token and retry once."""
        url = f"{self.base_url}/odata/{path}"
        for _ in range(2):
            headers = {
                **self._headers,
                "Authorization": f"Bearer {await self.tokens.get()}",
            }
            try:
                response = await send(
                    self.client,
                    self.name,
                    method,
                    url,
                    what=what,
                    expect=(*expect, 401),
                    headers=headers,
                    **kwargs,
                )
            except ProviderUnavailable:
                raise
            except ProviderError as exc:
                if "folder" in exc.message.lower() and not self._folder:
                    raise ProviderError(
                        self.name,
                        f"{exc.message}; set folder_id or folder_path for "
                        f"providers.{self.name} in rpa.yml",
                    ) from exc
                raise
            if response.status_code != 401:
                return response
            self.tokens.invalidate()
        raise ProviderError(
            self.name,
            f"{what}: {url} answered 401 even with a new token: check that the "
            "external application has access to Orchestrator and this folder",
        )

    async def _release_key(self, task: str) -> str:
        """The ReleaseKey for ``Process`` or ``Process@version``, looked up once."""
        if task in self._releases:
            return self._releases[task]
        process, _, version = task.partition("@")
        quoted = process.replace("'", "''")
        response = await self._call(
            "GET",
            "Releases",
            what=f"looking up process {process!r}",
            params={"$filter": f"ProcessKey eq '{quoted}'"},
        )
        releases = [r for r in response.json().get("value", []) if isinstance(r, dict)]
        if not releases:
            raise ProviderError(
                self.name, f"unknown process {process!r} in this folder"
            )
        matching = [
            r for r in releases if not version or r.get("ProcessVersion") == version
        ]
        versions = ", ".join(sorted({str(r.get("ProcessVersion")) for r in releases}))
        if not matching:
            raise ProviderError(
                self.name,
                f"process {process!r} has no version {version} in this folder "
                f"(found: {versions})",
            )
        if len(matching) > 1:
            raise ProviderError(
                self.name,
                f"process {process!r} has {len(matching)} releases in this folder "
                f"(versions {versions}): name one as {process}@<version>",
            )
        key = str(matching[0]["Key"])
        self._releases[task] = key
        return key

    async def start(self, request: StartRequest) -> str | None:
        job, creds = request.job, request.credentials
        arguments = {
            **request.inputs,
            "rasa_rpa_job_id": job.id,
            "rasa_rpa_conversation_id": job.conversation_id,
            "rasa_rpa_events_url": creds.events_url,
            "rasa_rpa_token": creds.token,
        }
        try:
            start_info = {
                "ReleaseKey": await self._release_key(request.task),
                "Strategy": self.strategy,
                "JobsCount": 1,
                "RobotIds": [],
                "Source": "Manual",
                "InputArguments": json.dumps(arguments, default=str),
            }
            response = await self._call(
                "POST",
                _API + "StartJobs",
                what="starting the job",
                expect=(200, 201),
                json={"startInfo": start_info},
            )
            return str(response.json()["value"][0]["Id"])
        except ProviderError as exc:
            if not isinstance(exc, ProviderUnavailable):
                # The release may have been deleted or re-created: look it up again.
                self._releases.pop(request.task, None)
            exc.job_id = exc.job_id or job.id
            raise
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError(
                self.name,
                "Orchestrator started the job but sent no job Id",
                job_id=job.id,
            ) from None

    async def _job_record(self, ref: str) -> dict[str, Any]:
        response = await self._call("GET", f"Jobs({ref})", what="checking the job")
        record = response.json()
        return record if isinstance(record, dict) else {}

    async def poll(self, job: Job) -> list[JobEvent]:
        ref = job.provider_ref
        if not ref or not ref.isdigit():
            return []
        record = await self._job_record(ref)
        kind = JOB_STATES.get(str(record.get("State")))
        if kind is None:
            return []
        return [
            JobEvent(
                _event_id(ref, kind),
                job.id,
                kind,
                _event_data(kind, record),
                source="uipath-poll",
            )
        ]

    async def cancel(self, job: Job) -> None:
        ref = job.provider_ref
        if not ref or not ref.isdigit():
            return
        await self._call(
            "POST",
            _API + "StopJobs",
            what="stopping the job",
            expect=(200, 204),
            json={"jobIds": [int(ref)], "strategy": "SoftStop"},
        )

    # -- webhooks --------------------------------------------------------------

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self._secret("webhook_secret")
        if not secret:
            raise AuthenticationFailed(
                f"set webhook_secret for providers.{self.name} to the Orchestrator "
                "webhook's secret to receive its webhooks"
            )
        offered = headers.get("x-uipath-signature", "").strip()
        if not offered:
            raise AuthenticationFailed("the X-UiPath-Signature header is missing")
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode()
        # Base64 is documented; "sha256=<hex>" is tolerated for older proxies.
        if not (
            same_text(expected, offered) or same_text(f"sha256={digest.hex()}", offered)
        ):
            raise AuthenticationFailed("the X-UiPath-Signature does not match")

    def webhook_credential(self, headers: Mapping[str, str], body: bytes) -> None:
        """Verify X-UiPath-Signature: the body is trusted as a whole after this."""
        self._verify(headers, body)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes
    ) -> list[WebhookEvent]:
        try:
            payload = strictjson.loads(body)
        except ValueError:
            raise InvalidPayload("the body is not JSON", status=400) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("Type"), str):
            raise InvalidPayload("not an Orchestrator webhook: Type is missing")
        kind = WEBHOOK_TYPES.get(payload["Type"])
        if kind is None:
            return []
        record = payload.get("Job")
        if not isinstance(record, dict) or record.get("Id") is None:
            raise InvalidPayload(f"{clip(payload['Type'])} webhook without a Job.Id")
        ref = str(record["Id"])
        data = {**_event_data(kind, record), "uipath_event_id": payload.get("EventId")}
        # Webhooks may carry null or {} outputs; the job record has them.
        incomplete = kind is EventType.SUCCEEDED and not _outputs(
            record.get("OutputArguments")
        )
        return [
            WebhookEvent(
                _event_id(ref, kind),
                kind,
                data,
                provider_ref=ref,
                incomplete=incomplete,
            )
        ]

    async def complete_webhook(
        self, event: WebhookEvent, job: Job
    ) -> WebhookEvent | None:
        """A success without outputs, with the outputs from the job record."""
        if not event.incomplete or not event.provider_ref:
            return event
        try:
            record = await self._job_record(event.provider_ref)
        except ProviderError as exc:
            log.warning(
                "%s: job %s completed; outputs unreadable (%s); polling will finish it",
                self.name,
                job.id,
                exc.message,
                extra=job_fields(job),
            )
            return None
        data = {**event.data, **_event_data(event.type, record)}
        return replace(event, data=data, incomplete=False)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
