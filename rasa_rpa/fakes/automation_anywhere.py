"""A fake Automation 360 Control Room: login, deploy, activity and callbacks.

What is faithful to the documented API (Automation Anywhere "Authentication
API", "Deploy bots API", "Request bot progress"; pixiebrix-extension
``contrib/automationanywhere``):

* ``POST /v2/authentication`` takes ``{"username", "apiKey"|"password"}`` and
  answers ``{"token", "user"}``. Automation 360 retires ``/v1/authentication``
  from v.33, so the fake serves only v2 unless ``auth_versions`` says
  otherwise (an older Control Room: ``("v1",)``). Tokens are JWTs whose
  ``exp`` claim says when they stop working (20 minutes by default) and are
  sent back as ``X-Authorization``. Bad credentials answer 401 with code
  ``UM1110``.
* ``POST /v4/automations/deploy`` takes ``botId``, typed ``botInput`` values
  (``{"type": "STRING", "string": "x"}``; numbers and booleans as strings),
  ``unattendedRequest`` and ``callbackInfo {url, headers}``, and answers
  ``{"deploymentId", "automationName"}``.
* ``POST /v3/activity/list`` filters by deploymentId; statuses go QUEUED →
  RUNNING → COMPLETED | RUN_FAILED, or RUN_ABORTED after
  ``POST /v3/activity/manage {"stop_executions": {"execution_ids": [...]}}``
  (the body independent Control Room clients send; any other shape answers
  400). A deployment is listed only ``list_delay`` seconds after it was
  made, as the real list lags the deployment by a few seconds.
  ``GET /v3/activity/execution/<id>`` returns one activity with its
  ``botOutVariables``.

What is assumed: no schema for the callback body is published, so the fake
POSTs ``{"deploymentId", "status", "botOutVariables", "message",
"activityId"}`` with the ``callbackInfo.headers`` given at deployment, once
per status change after QUEUED. The real list may leave ``botOutVariables``
to the execution endpoint; set ``list_outputs = False`` to behave that way.
Error bodies are ``{"code", "details", "message"}`` as the Control Room's.

The "bots" are :mod:`rasa_rpa.fakes.processes`, so ACME has 3 orders here
as everywhere. A bot given ``rasaRpaEventsUrl`` and ``rasaRpaToken`` inputs
also reports progress to rasa-rpa's callback API, as a real bot would.

The records and value formats live in
:mod:`rasa_rpa.fakes.automation_anywhere_records`; the failure knobs are
:class:`~rasa_rpa.fakes.base.FakeVendor`'s.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any

import httpx
import jwt

from rasa_rpa.fakes.automation_anywhere_records import (
    MANAGE_ACTIONS,
    Deployment,
    error,
    manage_ids,
    typed,
    untyped,
)
from rasa_rpa.fakes.base import (
    FakeRequest,
    FakeVendor,
    Handler,
    Reply,
    progress_event,
)
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process

__all__ = ["Deployment", "FakeControlRoom"]


class FakeControlRoom(FakeVendor):
    """The Control Room's bot API over real HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        username: str = "rasa-bot",
        api_key: str = "fake-api-key",
        password: str = "fake-password",
        bots: dict[str, int] | None = None,
        token_ttl: float = 1200,
        step_delay: float = 0.3,
        auth_versions: tuple[str, ...] = ("v2",),
        list_delay: float = 0.0,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.username = username
        self._api_key = api_key
        self._password = password
        names = sorted(PROCESSES)
        #: Bot name -> botId.
        self.bot_ids: dict[str, int] = dict(
            bots if bots is not None else {n: i for i, n in enumerate(names, 1)}
        )
        self._bots = {bot_id: name for name, bot_id in self.bot_ids.items()}
        self.token_ttl = token_ttl
        self.step_delay = step_delay
        #: Deployments by deploymentId.
        self.deployments: dict[str, Deployment] = {}
        #: When true, the Control Room "forgets" to POST callbacks.
        self.drop_callbacks = False
        #: When false, activity/list leaves outputs to activity/execution.
        self.list_outputs = True
        #: Seconds after a deployment before activity/list shows it.
        #: GUESS: "a few seconds" in the docs; 0 by default to keep demos fast.
        self.list_delay = list_delay
        #: When true, stop requests are refused (403), as for a user without
        #: the right to manage other users' executions.
        self.refuse_stops = False
        #: Every token issued, with its claims (tests read ``exp`` here).
        self.issued: list[dict[str, Any]] = []
        self._signing_key = secrets.token_bytes(32)
        #: Every callback sent: {"url", "headers", "body", "status"}.
        self.callbacks: list[dict[str, Any]] = []
        #: Every progress report a bot sent to rasa-rpa: {"url", "status"}.
        self.progress_posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._runners: list[threading.Thread] = []
        routes: list[tuple[str, str, Handler]] = [
            ("POST", f"/{version}/authentication", self._login)
            for version in auth_versions
        ]
        routes += [
            ("POST", "/v4/automations/deploy", self._deploy),
            ("POST", "/v3/activity/list", self._list),
            ("GET", "/v3/activity/execution/(?P<id>[^/]+)", self._execution),
            ("POST", "/v3/activity/manage", self._manage),
        ]
        for method, pattern, handler in routes:
            self.route(method, pattern, handler)

    # -- knobs ---------------------------------------------------------------

    def provider_options(self, **extra: Any) -> dict[str, Any]:
        """The ``providers.<name>`` entry of an rpa.yml that uses this fake."""
        return {
            "type": "automation_anywhere",
            "url": self.url,
            "username": self.username,
            "api_key": self._api_key,
            "run_as_user_ids": [7],  # the user _login answers with
            "bots": dict(self.bot_ids),
            **extra,
        }

    def outage(self, status: int) -> Reply:
        return status, error("FAKE", f"injected failure {status}")

    def stop(self) -> None:
        """Stop serving; running bots end without a callback."""
        self._closing.set()
        for deployment in list(self.deployments.values()):
            deployment.stop.set()
        super().stop()
        for runner in self._runners:
            runner.join(timeout=2)

    # -- routes --------------------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:
        return self.token_alive(request.headers.get("x-authorization", ""))

    def _login(self, request: FakeRequest) -> Reply:
        with self._lock:
            self.token_requests += 1
        body = request.json() or {}
        good = body.get("username") == self.username and (
            body.get("apiKey") == self._api_key
            or body.get("password") == self._password
        )
        if not good:
            return 401, error("UM1110", "Invalid credentials")
        now = time.time()
        expires = int(now + self.token_ttl)
        claims = {
            "sub": "7",
            "clientType": "WEB",
            "iat": int(now),
            "exp": expires,
            "iss": "AutomationAnywhere",
            "nanoTime": time.monotonic_ns(),
        }
        # GUESS: the Control Room signs with RS512 and its own key; clients
        # only read the claims, so an HS256 signature with a key nobody else
        # holds is as opaque to them.
        token = jwt.encode(claims, self._signing_key, algorithm="HS256")
        self.keep_token(token, float(expires))
        with self._lock:
            self.issued.append(claims)
        user = {"id": 7, "username": self.username, "tenantId": 1}
        return 200, {"token": token, "user": user}

    def _deploy(self, request: FakeRequest) -> Reply:
        if not self._authorized(request):
            return 401, error("UM1100", "Token is invalid or has expired")
        body = request.json() or {}
        bot_input = body.get("botInput") or {}
        inputs: dict[str, Any] = {}
        for key, value in bot_input.items():
            if not isinstance(value, dict) or "type" not in value:
                return 400, error(
                    "BAD_REQUEST",
                    f"botInput.{key} must be a typed value such as "
                    '{"type": "STRING", "string": "..."}',
                )
            inputs[key] = untyped(value)
        bot_id = body.get("botId")
        name = self._bots.get(bot_id) if isinstance(bot_id, int) else None
        if name is None or not isinstance(bot_id, int):
            return 404, error("NOT_FOUND", f"Bot {bot_id} not found")
        deployment = Deployment(
            id=str(uuid.uuid4()),
            activity_id=uuid.uuid4().hex,
            bot_id=bot_id,
            bot_name=name,
            automation_name=str(body.get("automationName") or name),
            inputs=inputs,
            callback=dict(body.get("callbackInfo") or {}),
        )
        with self._lock:
            self.deployments[deployment.id] = deployment
        runner = threading.Thread(target=self._run, args=(deployment,), daemon=True)
        self._runners.append(runner)
        runner.start()
        return 200, {
            "deploymentId": deployment.id,
            "automationName": deployment.automation_name,
        }

    def _list(self, request: FakeRequest) -> Reply:
        if not self._authorized(request):
            return 401, error("UM1100", "Token is invalid or has expired")
        wanted = ((request.json() or {}).get("filter") or {}).get("value")
        shown_before = time.monotonic() - self.list_delay
        with self._lock:
            items = [
                d.activity(self.list_outputs)
                for d in self.deployments.values()
                if (wanted is None or d.id == wanted) and d.created <= shown_before
            ]
        page = {"offset": 0, "total": len(self.deployments), "totalFilter": len(items)}
        return 200, {"page": page, "list": items}

    def _execution(self, request: FakeRequest) -> Reply:
        if not self._authorized(request):
            return 401, error("UM1100", "Token is invalid or has expired")
        with self._lock:
            for deployment in self.deployments.values():
                if deployment.activity_id == request.params["id"]:
                    return 200, deployment.activity()
        return 404, error("NOT_FOUND", "Execution not found")

    def _manage(self, request: FakeRequest) -> Reply:
        if not self._authorized(request):
            return 401, error("UM1100", "Token is invalid or has expired")
        try:
            body = request.json()
        except ValueError:
            return 400, error("BAD_REQUEST", "the body is not valid JSON")
        ids = manage_ids(body)
        if ids is None:
            return 400, error(
                "BAD_REQUEST",
                "expected one of "
                + ", ".join(sorted(MANAGE_ACTIONS))
                + ' as {"execution_ids": ["..."]}',
            )
        action = next(iter(body))
        if action != "stop_executions":
            # GUESS: pause/resume/archive answer as stop does; the fake's
            # bots cannot pause, so these change nothing.
            return 200, {}
        if self.refuse_stops:
            return 403, error(
                "FORBIDDEN", "You are not allowed to manage this execution"
            )
        with self._lock:
            known = {d.activity_id: d for d in self.deployments.values()}
            unknown = [i for i in ids if i not in known]
            if unknown:
                # GUESS: the Control Room's answer for an id it does not know.
                return 400, error("NOT_FOUND", f"Execution {unknown[0]} not found")
            for execution_id in ids:
                known[execution_id].stop.set()
        return 200, {}

    # -- the bot -------------------------------------------------------------

    def _run(self, deployment: Deployment) -> None:
        if deployment.stop.wait(self.step_delay):
            self._finish_aborted(deployment)
            return
        self._set(deployment, "RUNNING")
        self._report_progress(deployment)
        if deployment.stop.wait(self.step_delay):
            self._finish_aborted(deployment)
            return
        inputs = {
            k: v for k, v in deployment.inputs.items() if not k.startswith("rasaRpa")
        }
        try:
            outputs = run_process(deployment.bot_name, inputs)
        except ProcessFailed as exc:
            self._set(deployment, "RUN_FAILED", message=str(exc))
            return
        values = {k: typed(v) for k, v in outputs.items()}
        self._set(deployment, "COMPLETED", outputs=values)

    def _finish_aborted(self, deployment: Deployment) -> None:
        if not self._closing.is_set():
            self._set(deployment, "RUN_ABORTED", message="Stopped by user")

    def _set(
        self,
        deployment: Deployment,
        status: str,
        *,
        message: str = "",
        outputs: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            deployment.status = status
            deployment.message = message
            if outputs is not None:
                deployment.outputs = outputs
        self._send_callback(deployment)

    def _send_callback(self, deployment: Deployment) -> None:
        url = deployment.callback.get("url")
        if not url or self.drop_callbacks or self._closing.is_set():
            return
        headers = {
            str(k): str(v)
            for k, v in (deployment.callback.get("headers") or {}).items()
        }
        # GUESS: no schema for the callback body is published (module notes).
        body = {
            "deploymentId": deployment.id,
            "status": deployment.status,
            "botOutVariables": {"values": dict(deployment.outputs)},
            "message": deployment.message,
            "activityId": deployment.activity_id,
        }
        record: dict[str, Any] = {"url": url, "headers": headers, "body": body}
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=5)
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["status"] = type(exc).__name__
        with self._lock:
            self.callbacks.append(record)

    def _report_progress(self, deployment: Deployment) -> None:
        url = deployment.inputs.get("rasaRpaEventsUrl")
        token = deployment.inputs.get("rasaRpaToken")
        if not url or not token or self._closing.is_set():
            return
        event = progress_event("Automation Anywhere")
        record: dict[str, Any] = {"url": url}
        try:
            response = httpx.post(
                str(url),
                json=event,
                timeout=5,
                headers={"Authorization": f"Bearer {token}"},
            )
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["status"] = type(exc).__name__
        with self._lock:
            self.progress_posts.append(record)
