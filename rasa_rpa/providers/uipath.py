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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from rasa_rpa import strictjson
from rasa_rpa.errors import (
    AuthenticationFailed,
    InvalidPayload,
    ProviderError,
    ProviderUnavailable,
)
from rasa_rpa.logs import clip, job_fields
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.auth import AccessToken, TokenAuth
from rasa_rpa.providers.base import (
    Capabilities,
    Diagnosis,
    Provider,
    StartRequest,
    WebhookEvent,
    diagnose_tasks,
)
from rasa_rpa.providers.http import LazyClient, send
from rasa_rpa.providers.options import reveal
from rasa_rpa.providers.uipath_auth import UiPathOptions, fetch_token
from rasa_rpa.providers.uipath_records import (
    JOB_STATES,
    WEBHOOK_TYPES,
    event_data,
    event_id,
    outputs_of,
)
from rasa_rpa.security import same_text

__all__ = ["JOB_STATES", "WEBHOOK_TYPES", "UiPathProvider"]

log = logging.getLogger(__name__)

_API = "Jobs/UiPath.Server.Configuration.OData."
#: Vendor error text -> the fix, for ``rasa-rpa doctor``'s task findings.
FIXES = {
    "unknown process": "publish the process to this folder, or correct the task",
    "no version": "publish that version, or correct the task's @version",
    "releases in this folder": "pin a version: task: <process>@<version>",
}

class UiPathProvider(Provider):
    """Runs UiPath processes through the Orchestrator OData API."""

    type_name = "uipath"

    Options = UiPathOptions
    options: UiPathOptions
    capabilities = Capabilities(poll=True, cancel=True, webhooks=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.options
        self.base_url = options.url.rstrip("/")
        self.token_url = options.token_endpoint
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if options.folder_id is not None:
            self._headers["X-UIPATH-OrganizationUnitId"] = str(options.folder_id)
        elif options.folder_path:
            self._headers["X-UIPATH-FolderPath"] = options.folder_path
        self._folder = len(self._headers) > 1
        if options.tenant_name:
            self._headers["X-UIPATH-TenantName"] = options.tenant_name
        self.auth = TokenAuth(self._fetch_token)
        self._releases: dict[str, str] = {}
        self._pool = LazyClient(self.options.timeout)

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider (see LazyClient)."""
        return self._pool.get()

    async def _fetch_token(self) -> AccessToken:
        return await fetch_token(self.client, self.name, self.options)

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Get a token, then find each task's release as a start would."""
        await self.auth.token()  # a ProviderError here names the cause
        ok = Diagnosis("ok", "uipath: the vendor accepts the credentials")
        return [ok, *await diagnose_tasks("uipath", tasks, self._release_key, FIXES)]

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
        """One OData call; ``self.auth`` sets the token and renews it on a 401."""
        url = f"{self.base_url}/odata/{path}"
        try:
            response = await send(
                self.client,
                self.name,
                method,
                url,
                what=what,
                expect=(*expect, 401),
                headers=self._headers,
                auth=self.auth,
                **kwargs,
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            if "folder" in exc.message.lower() and not self._folder:
                raise ProviderError(
                    self.name,
                    f"{exc.message}; set folder_id or folder_path for "
                    f"providers.{self.name} in {self.config.source}",
                ) from exc
            raise
        if response.status_code != 401:
            return response
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
                "Strategy": self.options.strategy,
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
                event_id(ref, kind),
                job.id,
                kind,
                event_data(kind, record),
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
        secret = reveal(self.options.webhook_secret)
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
        data = {**event_data(kind, record), "uipath_event_id": payload.get("EventId")}
        # Webhooks may carry null or {} outputs; the job record has them.
        incomplete = kind is EventType.SUCCEEDED and not outputs_of(
            record.get("OutputArguments")
        )
        return [
            WebhookEvent(
                event_id(ref, kind),
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
        data = {**event.data, **event_data(event.type, record)}
        return replace(event, data=data, incomplete=False)

    async def aclose(self) -> None:
        await self._pool.aclose()
