"""A fake Power Automate: Microsoft Entra's token endpoint and the Dataverse
Web API's desktop flow calls, served together on 127.0.0.1.

Faithful to what Microsoft documents (sources: "Work with desktop flows
using code", MicrosoftDocs/power-automate-docs ``articles/developer/
desktop-flow-public-apis.md``; the RunDesktopFlow action reference; the
flowsession table reference; the Microsoft identity platform's client
credentials flow; the WhoAmI function):

* ``POST /{tenant}/oauth2/v2.0/token`` (form ``grant_type=client_credentials,
  client_id, client_secret, scope``) answers ``{token_type, expires_in,
  access_token}``; errors are ``{error, error_description, error_codes}``
  (AADSTS7000215 a wrong secret, AADSTS700016 an unknown application);
  the scope must be ``<organization URL>/.default``;
* under ``/api/data/v9.2/``: ``GET workflows?$filter=category eq 6 [and name
  eq '…']`` lists desktop flows (``name``, ``workflowid``);
  ``POST workflows(<id>)/Microsoft.Dynamics.CRM.RunDesktopFlow`` takes
  ``runMode`` (attended | unattended), ``runPriority``, ``connectionName``,
  ``connectionType`` (1 a connection, 2 a connection reference),
  ``timeout`` (seconds, at most 24 hours), ``inputs`` (a JSON *string* of
  at most 2 MB) and ``callbackUrl`` (HTTPS and a DNS name only, no
  localhost), and answers ``{flowsessionId}``; ``GET flowsessions(<id>)``
  honours ``$select``; ``GET flowsessions(<id>)/outputs/$value`` gives the
  outputs; ``POST flowsessions(<id>)/Microsoft.Dynamics.CRM.
  CancelDesktopFlowRun`` answers 204; ``GET WhoAmI`` answers ``{BusinessUnitId,
  UserId, OrganizationId}``; errors are ``{"error": {"code", "message"}}``;
* 70 runs per minute per connection (``runs_per_minute``);
* the completion callback: POST ``{statuscode, statecode, startedon,
  completedon, flowsessionid}`` with ``x-ms-workflow-id`` and ``x-ms-run-id``,
  unauthenticated, retried 3 times at 1-second intervals on 5xx or 408.

Guessed (marked ``GUESS`` where made): HTTP statuses and Dataverse error
codes other than the documented 403 example, 429 as the answer beyond the
run limit, 401 with an empty body for a missing or dead token, how a
refused callback URL, an unknown connection and a cancel of a finished run
are answered, the errorcode of a failed run, the callback on every end, and
that inputs the flow does not declare are ignored. ``insecure_callbacks``
lets tests on loopback receive callbacks, which the service never would.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from rasa_rpa.fakes.base import FakeRequest, FakeVendor, Handler, Reply
from rasa_rpa.fakes.power_automate_runs import FINAL, FlowSessions, Session
from rasa_rpa.fakes.processes import PROCESSES

__all__ = ["FINAL", "FakePowerAutomate", "Session"]

API = "/api/data/v9.2/"
_ID = r"\((?P<id>[0-9a-fA-F-]{36})\)"
_MAX_INPUTS = 2 * 1024 * 1024
_NAME_EQ = re.compile(r"name eq '((?:[^']|'')*)'")


def dataverse_error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"code": code, "message": message}}


def entra_error(status: int, error: str, code: int, description: str) -> Reply:
    text = f"AADSTS{code}: {description}\r\nTrace ID: {uuid.uuid4()}"
    return status, {"error": error, "error_description": text, "error_codes": [code]}


def refused_callback(url: str) -> str | None:
    """Why the service refuses ``url`` as ``callbackUrl`` (the documented rules)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https":
        return "only the HTTPS protocol is allowed"
    if host == "localhost":
        return "access to localhost (loopback) isn't permitted"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return "IP addresses can't be used; use a named web address"


class FakePowerAutomate(FlowSessions, FakeVendor):
    """Entra and a Dataverse environment with desktop flows, on 127.0.0.1."""

    def __init__(
        self,
        *,
        tenant_id: str = "fake-tenant",
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        connection_name: str = "shared-uiflow-fake",
        connection_reference: str = "rasa_desktopflowconnection",
        flows: Iterable[str] | None = None,
        token_ttl: float = 3599,
        step_delay: float = 0.3,
        runs_per_minute: int = 70,
        insecure_callbacks: bool = False,
        callback_retry_delay: float = 1.0,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.connection_name = connection_name
        self.connection_reference = connection_reference
        #: Desktop flow name -> workflowid.
        self.flow_ids = {
            name: str(uuid.uuid4()) for name in (flows or sorted(PROCESSES))
        }
        self.token_ttl = token_ttl
        self.step_delay = step_delay
        self.runs_per_minute = runs_per_minute
        self.insecure_callbacks = insecure_callbacks
        self.callback_retry_delay = callback_retry_delay
        #: False: the app registration is no application user of the environment.
        self.app_user = True
        #: False: the application user lacks the privilege to read workflows.
        self.privileged = True
        self.machines_offline = False
        self.drop_callbacks = False
        self.sessions = {}
        self.callbacks = []
        self.progress_posts = []
        self._starts: list[float] = []
        self._lock = threading.Lock()
        self._threads = []
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self._token)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "WhoAmI", self._who_am_i),
            ("GET", "workflows", self._workflows),
            (
                "POST",
                f"workflows{_ID}/Microsoft.Dynamics.CRM.RunDesktopFlow",
                self._run,
            ),
            ("GET", f"flowsessions{_ID}", self._session),
            ("GET", f"flowsessions{_ID}/outputs/\\$value", self._outputs),
            (
                "POST",
                f"flowsessions{_ID}/Microsoft.Dynamics.CRM.CancelDesktopFlowRun",
                self._cancel,
            ),
        ]
        for method, pattern, handler in routes:
            self.route(
                method, API.replace(".", r"\.") + pattern, self._dataverse(handler)
            )

    def provider_options(self, **extra: Any) -> dict[str, Any]:
        """The ``providers.<name>`` entry of an rpa.yml that uses this fake."""
        return {
            "type": "power_automate",
            "url": self.url,
            "login_url": self.url,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "connection_name": self.connection_name,
            **extra,
        }

    def outage(self, status: int) -> Reply:
        return dataverse_error(status, "0x80040216", f"injected failure {status}")

    def stop(self) -> None:
        """Stop serving; running flows end without a callback."""
        self._closing.set()
        for session in list(self.sessions.values()):
            session.cancel.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        super().stop()

    # -- Microsoft Entra -------------------------------------------------------

    def _token(self, request: FakeRequest) -> Reply:
        form = request.form()
        if request.params["tenant"] != self.tenant_id:
            # GUESS: the status; the code is what Entra clients handle.
            return entra_error(400, "invalid_request", 90002, "Tenant not found.")
        if form.get("grant_type") != "client_credentials":
            return entra_error(
                400, "unsupported_grant_type", 70003, "The grant is not supported."
            )
        if form.get("client_id") != self.client_id:
            # GUESS: the status and error name around the documented code.
            return entra_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{form.get('client_id')}' was not "
                "found in the directory.",
            )  # fmt: skip
        if not hmac.compare_digest(form.get("client_secret", ""), self.client_secret):
            # GUESS: the status and error name around the documented code.
            return entra_error(
                401, "invalid_client", 7000215, "Invalid client secret provided."
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return entra_error(
                400, "invalid_scope", 1002012,
                "Client credential flows must have a scope value with /.default "
                "suffixed to the resource identifier.",
            )  # fmt: skip
        if scope.removesuffix("/.default").rstrip("/") != self.url:
            # GUESS: the answer for a resource that is not this environment.
            return entra_error(
                400, "invalid_resource", 500011,
                f"The resource principal named {scope.removesuffix('/.default')} "
                "was not found in the tenant.",
            )  # fmt: skip
        token = uuid.uuid4().hex + uuid.uuid4().hex
        with self._lock:
            self.token_requests += 1
        self.keep_token(token, time.time() + self.token_ttl)
        return 200, {
            "token_type": "Bearer",
            "expires_in": int(self.token_ttl),
            "ext_expires_in": int(self.token_ttl),
            "access_token": token,
        }

    # -- Dataverse ---------------------------------------------------------------

    def _dataverse(self, handler: Handler) -> Handler:
        def checked(request: FakeRequest) -> Reply:
            auth = request.headers.get("authorization", "")
            if not (auth.startswith("Bearer ") and self.token_alive(auth[7:])):
                # GUESS: an empty 401 with a challenge, as for a dead token.
                return 401, None, {"WWW-Authenticate": "Bearer"}
            if not self.app_user:
                # GUESS: the code and words for an app with no application user.
                return dataverse_error(
                    403, "0x80072560", "The user is not a member of the organization."
                )
            if not self.privileged:
                return dataverse_error(  # the documented example
                    403,
                    "0x80040220",
                    f"Principal user (Id={self.client_id}, type=8) is missing "
                    "prvReadworkflow privilege",
                )
            return handler(request)

        return checked

    def _context(self, what: str) -> str:
        return f"{self.url}{API}$metadata#{what}"

    def _who_am_i(self, request: FakeRequest) -> Reply:
        return 200, {
            "@odata.context": self._context("Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": str(uuid.UUID(int=1)),
            "UserId": str(uuid.UUID(int=2)),
            "OrganizationId": str(uuid.UUID(int=3)),
        }

    def _workflows(self, request: FakeRequest) -> Reply:
        """Desktop flows are the workflows of ``category eq 6``; ``name eq``
        narrows them (an OData string literal doubles its quotes)."""
        wanted = request.query.get("$filter", "")
        named = _NAME_EQ.search(wanted)
        flows = [
            {"@odata.etag": 'W/"1"', "name": name, "workflowid": flow_id}
            for name, flow_id in self.flow_ids.items()
            if "category eq 6" in wanted
            and (named is None or named.group(1).replace("''", "'") == name)
        ]
        context = self._context("workflows(name,workflowid)")
        return 200, {"@odata.context": context, "value": flows}

    def _run(self, request: FakeRequest) -> Reply:
        names = {flow_id: name for name, flow_id in self.flow_ids.items()}
        name = names.get(request.params["id"])
        if name is None:
            # GUESS: Dataverse's usual answer for a row that does not exist.
            return dataverse_error(
                404,
                "0x80040217",
                f"workflow With Id = {request.params['id']} Does Not Exist",
            )
        try:
            body = request.json()
        except ValueError:
            body = None
        problem, inputs = self._check_run(body)
        if problem:
            # GUESS: the status and code of a request the action refuses.
            return dataverse_error(400, "0x80040203", problem)
        now = time.monotonic()
        with self._lock:
            self._starts = [t for t in self._starts if now - t < 60]
            if len(self._starts) >= self.runs_per_minute:
                # GUESS: "up to 70 desktop flows runs per minute for every
                # connection"; beyond it, Dataverse's 429 with Retry-After.
                return (
                    *dataverse_error(429, "0x80072322", "Too many desktop flow runs"),
                    {"Retry-After": "60"},
                )
            self._starts.append(now)
        session = Session(
            str(uuid.uuid4()),
            request.params["id"],
            name,
            inputs,
            str(body.get("connectionName")),
            body.get("callbackUrl"),
        )
        self._create(session)
        return 200, {
            "@odata.context": self._context(
                "Microsoft.Dynamics.CRM.RunDesktopFlowResponse"
            ),
            "flowsessionId": session.id,
        }

    def _check_run(self, body: Any) -> tuple[str, dict[str, Any]]:
        """What is wrong with a RunDesktopFlow body ("" if nothing), and its inputs."""
        if not isinstance(body, dict):
            return "The body must be a JSON object", {}
        if body.get("runMode") not in ("attended", "unattended"):
            return "runMode must be attended or unattended", {}
        kind = body.get("connectionType", 1)
        expected = {1: self.connection_name, 2: self.connection_reference}.get(kind)
        if expected is None:
            return "connectionType must be 1 or 2", {}
        if body.get("connectionName") != expected:
            # GUESS: how an unknown connection is answered.
            return f"Connection {body.get('connectionName')!r} was not found", {}
        timeout = body.get("timeout")
        if timeout is not None and (
            not isinstance(timeout, int) or not 0 < timeout <= 86400
        ):
            return "timeout must be a number of seconds, at most 24 hours", {}
        raw = body.get("inputs")
        if isinstance(raw, str) and len(raw.encode()) > _MAX_INPUTS:
            return "The input field content size is limited to 2 MB", {}
        try:
            inputs = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            inputs = None
        if not isinstance(inputs, dict):
            return "inputs must be a JSON serialized object string", {}
        callback = body.get("callbackUrl")
        if callback is not None and not self.insecure_callbacks:
            refusal = refused_callback(str(callback))
            if refusal:
                return f"Invalid callbackUrl: {refusal}", {}  # GUESS: the words
        # GUESS: inputs the flow does not declare are ignored, not refused.
        return "", inputs

    def _session(self, request: FakeRequest) -> Reply:
        with self._lock:
            session = self.sessions.get(request.params["id"].lower())
            if session is None:
                return dataverse_error(
                    404,
                    "0x80040217",
                    f"flowsession With Id = {request.params['id']} Does Not Exist",
                )
            return 200, session.row(request.query.get("$select"))

    def _outputs(self, request: FakeRequest) -> Reply:
        with self._lock:
            session = self.sessions.get(request.params["id"].lower())
            if session is None:
                return dataverse_error(404, "0x80040217", "flowsession Does Not Exist")
            # GUESS: a run without outputs answers an empty object.
            return 200, dict(session.outputs or {})

    def _cancel(self, request: FakeRequest) -> Reply:
        with self._lock:
            session = self.sessions.get(request.params["id"].lower())
            if session is None:
                return dataverse_error(404, "0x80040217", "flowsession Does Not Exist")
            if session.statuscode in FINAL:
                # GUESS: the answer for a run that is not queued or running.
                return dataverse_error(
                    400, "0x80040203", "The flow session is not running"
                )
            session.cancel.set()
        return 204, None
