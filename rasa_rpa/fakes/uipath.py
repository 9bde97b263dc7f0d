"""A fake UiPath Orchestrator: identity server, releases, jobs and webhooks.

Faithful to what rasa-rpa relies on, as documented (sources: docs.uipath.com
"Authenticating with an external application", "About webhooks", "Types of
events", the Orchestrator API guide's JobState enum; UiPath/uipath-python's
processes, jobs and external-application services; Botpress v12's uipath
module for the legacy refresh-token flow; see /work/shared/research):

* ``POST /identity_/connect/token`` (form, ``grant_type=client_credentials``)
  answers ``{access_token, expires_in, token_type, scope}``; a wrong client is
  400 ``invalid_client``, an unknown scope 400 ``invalid_scope``, another grant
  400 ``unsupported_grant_type`` (IdentityServer's behaviour).
* ``POST /oauth/token`` (JSON refresh-token grant, the legacy cloud flow).
* OData under any base path (``/org/tenant/orchestrator_/odata/...`` or an
  on-prem ``/odata/...``): ``GET Releases?$filter=ProcessKey eq '...'``,
  ``POST Jobs/UiPath.Server.Configuration.OData.StartJobs`` (201, one job per
  ``JobsCount``; ``InputArguments`` must be a JSON *string*),
  ``GET Jobs(<Id>)`` (``OutputArguments`` is a JSON string) and
  ``POST Jobs/UiPath.Server.Configuration.OData.StopJobs``. Every OData call
  needs a live bearer token (else 401 "You are not authenticated!") and a
  folder header (else 400 "A folder is required for this action.").
* Jobs go Pending → Running → Successful | Faulted (or Stopped) in a thread,
  running the shared scripted processes; a running job reports progress to
  ``rasa_rpa_events_url`` with ``rasa_rpa_token``, as a workflow would.
* Webhooks (job.started/completed/faulted/stopped, one ``Job`` object) are
  signed ``X-UiPath-Signature: base64(HMAC-SHA256(secret, body))`` and, like
  Orchestrator's, are sent once and never retried.

Not faithful: numeric ``errorCode`` values are placeholders, there is one
folder, no robots or machines, no Suspended/Resumed states, and only the
fields listed above are filled in.

This module is the HTTP face: identity, the OData routes and their folder
and token checks. The jobs behind it (records, the "robot", webhooks) are
:mod:`rasa_rpa.fakes.uipath_jobs`; the failure knobs are
:class:`~rasa_rpa.fakes.base.FakeVendor`'s.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from rasa_rpa.fakes.base import FakeRequest, FakeVendor, Handler, Reply
from rasa_rpa.fakes.processes import PROCESSES
from rasa_rpa.fakes.uipath_jobs import OrchestratorJobs, sign

__all__ = ["DEFAULT_SCOPES", "FakeOrchestrator", "sign"]

#: Scopes an external application may be granted in the fake.
DEFAULT_SCOPES = frozenset(
    {"OR.Jobs", "OR.Jobs.Read", "OR.Jobs.Write", "OR.Folders.Read", "OR.Execution"}
)
_ODATA = r"(?:/.*)?/odata/"
_JOBS = _ODATA + r"Jobs/UiPath\.Server\.Configuration\.OData\."
_FILTER = re.compile(r"^\s*(ProcessKey|Name)\s+eq\s+'((?:[^']|'')*)'\s*$")
_STRATEGIES = {"All", "Specific", "JobsCount", "ModernJobsCount", "RobotCount"}


def _error(status: int, message: str, code: int = 0) -> Reply:
    return status, {"message": message, "errorCode": code, "traceId": uuid.uuid4().hex}


class FakeOrchestrator(OrchestratorJobs, FakeVendor):
    """UiPath Orchestrator on 127.0.0.1, with knobs for failure tests."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client",
        client_secret: str = "fake-secret",
        refresh_token: str | None = None,
        token_ttl: float = 3600,
        folder_id: int = 1,
        folder_path: str = "Shared",
        processes: Iterable[str] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        step_delay: float = 0.3,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_ttl = token_ttl
        self.folder_id = folder_id
        self.folder_path = folder_path
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.step_delay = step_delay
        self.releases = [
            {
                "Id": n,
                "Key": str(uuid.uuid4()),
                "Name": name,
                "ProcessKey": name,
                "ProcessVersion": "1.0.0",
                "IsLatestVersion": True,
                "OrganizationUnitId": folder_id,
            }
            for n, name in enumerate(processes or PROCESSES, start=1)
        ]
        self.jobs = {}
        self.drop_webhooks = False
        self.webhooks_sent = []
        self.progress_posts = []
        self._stops = {}
        self._lock = threading.RLock()
        self._next_id = 1000
        routes: list[tuple[str, str, Handler, bool]] = [
            ("POST", r"(?:/[^/]+)?/identity_?/connect/token", self._token, False),
            ("POST", r"/oauth/token", self._legacy_token, False),
            ("GET", _ODATA + "Releases", self._get_releases, True),
            ("POST", _JOBS + "StartJobs", self._start_jobs, True),
            ("POST", _JOBS + "StopJobs", self._stop_jobs, True),
            ("GET", _ODATA + r"Jobs\((?P<id>\d+)\)", self._get_job, True),
        ]
        for method, pattern, handler, odata in routes:
            self.route(method, pattern, self._odata(handler) if odata else handler)

    @property
    def orchestrator_url(self) -> str:
        """The Orchestrator base a provider's ``url:`` points at, cloud style."""
        return self.server.url + "/org/tenant/orchestrator_"

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint."""
        return self.server.url + "/identity_/connect/token"

    def outage(self, status: int) -> Reply:
        return _error(status, "The service is temporarily unavailable.")

    def stop(self) -> None:
        """Stop serving and end every job thread."""
        self._closing.set()
        for event in list(self._stops.values()):
            event.set()
        super().stop()

    # -- plumbing --------------------------------------------------------------

    def _odata(self, handler: Handler) -> Handler:
        """``handler`` once the request has a live token and the folder."""

        def checked(request: FakeRequest) -> Reply:
            auth = request.headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not self.token_alive(token):
                return _error(401, "You are not authenticated!")
            folder_id = request.headers.get("x-uipath-organizationunitid")
            folder_path = request.headers.get("x-uipath-folderpath")
            if folder_id is None and folder_path is None:
                return _error(400, "A folder is required for this action.", 1101)
            if (folder_id is not None and folder_id != str(self.folder_id)) or (
                folder_id is None and folder_path != self.folder_path
            ):
                return _error(
                    403, "You do not have permissions on the selected folder."
                )
            return handler(request)

        return checked

    def _issue(self) -> dict[str, Any]:
        token = uuid.uuid4().hex
        with self._lock:
            self.token_requests += 1
            self.keep_token(token, time.time() + self.token_ttl)
        return {"access_token": token, "expires_in": self.token_ttl}

    # -- identity --------------------------------------------------------------

    def _token(self, request: FakeRequest) -> Reply:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if not (
            hmac.compare_digest(form.get("client_id", ""), self.client_id)
            and hmac.compare_digest(form.get("client_secret", ""), self.client_secret)
        ):
            return 400, {"error": "invalid_client"}
        scopes = form.get("scope", "OR.Execution").split()
        if not set(scopes) <= DEFAULT_SCOPES:
            return 400, {"error": "invalid_scope"}
        return 200, {**self._issue(), "token_type": "Bearer", "scope": " ".join(scopes)}

    def _legacy_token(self, request: FakeRequest) -> Reply:
        body = request.json()
        if not isinstance(body, dict) or body.get("grant_type") != "refresh_token":
            return 403, {"error": "unsupported_grant_type"}
        if body.get("client_id") != self.client_id:
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}
        if (
            self.refresh_token is None
            or body.get("refresh_token") != self.refresh_token
        ):
            return 403, {
                "error": "invalid_grant",
                "error_description": "Unknown or invalid refresh token.",
            }
        return 200, {**self._issue(), "token_type": "Bearer"}

    # -- OData -----------------------------------------------------------------

    def _context(self, request: FakeRequest, what: str) -> str:
        base = request.path.split("/odata/", 1)[0]
        return f"{self.url}{base}/odata/$metadata#{what}"

    def _get_releases(self, request: FakeRequest) -> Reply:
        found = self.releases
        raw = request.query.get("$filter")
        if raw is not None:
            match = _FILTER.match(raw)
            if match is None:
                return _error(
                    400, f"The query specified in the URI is not valid: {raw}"
                )
            field, value = match.group(1), match.group(2).replace("''", "'")
            found = [r for r in found if r[field] == value]
        return 200, {
            "@odata.context": self._context(request, "Releases"),
            "@odata.count": len(found),
            "value": found,
        }

    def _start_jobs(self, request: FakeRequest) -> Reply:
        body = request.json()
        info = body.get("startInfo") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            return _error(400, "startInfo is required.", 1000)
        release = next(
            (
                r
                for r in self.releases
                if r["Key"] == info.get("ReleaseKey")
                or (info.get("ReleaseName") and r["Name"] == info.get("ReleaseName"))
            ),
            None,
        )
        if release is None:
            return _error(404, "Release does not exist.", 1002)
        if info.get("Strategy", "ModernJobsCount") not in _STRATEGIES:
            return _error(400, f"Invalid strategy: {info.get('Strategy')!r}.", 1000)
        raw = info.get("InputArguments")
        try:
            arguments = json.loads(raw) if raw is not None else {}
        except (TypeError, ValueError):
            arguments = None
        if not isinstance(arguments, dict):
            return _error(
                400, "InputArguments must be a JSON-encoded object string.", 1000
            )
        jobs = [
            self._create(release, arguments) for _ in range(info.get("JobsCount", 1))
        ]
        return 201, {"@odata.context": self._context(request, "Jobs"), "value": jobs}

    def _get_job(self, request: FakeRequest) -> Reply:
        with self._lock:
            job = self.jobs.get(int(request.params["id"]))
            if job is None:
                return _error(404, "Job does not exist.", 1002)
            return 200, {
                "@odata.context": self._context(request, "Jobs/$entity"),
                **job,
            }

    def _stop_jobs(self, request: FakeRequest) -> Reply:
        body = request.json()
        ids = body.get("jobIds") if isinstance(body, dict) else None
        strategy = str(body.get("strategy", "")) if isinstance(body, dict) else ""
        if not isinstance(ids, list) or strategy not in {"SoftStop", "Kill", "1", "2"}:
            return _error(400, "jobIds and a strategy (SoftStop or Kill) are required.")
        with self._lock:
            if any(i not in self.jobs for i in ids):
                return _error(404, "Job does not exist.", 1002)
            self._stop(ids, soft=strategy in {"SoftStop", "1"})
        return 200, None
