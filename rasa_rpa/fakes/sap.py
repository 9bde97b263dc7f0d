"""A fake SAP Intelligent RPA tenant: OAuth, API triggers and API notifiers.

Faithful to what SAP documents:

* ``POST /oauth/token?grant_type=client_credentials`` with HTTP Basic
  ``clientid:clientsecret`` answers ``{access_token, token_type, expires_in}``;
  bad credentials answer 401 ``{"error": "unauthorized", ...}`` like XSUAA.
* ``POST /runtime/v1/apiTriggers/<triggerId>/runs`` needs
  ``Authorization: Bearer``, ``irpa-api-key`` and ``Content-Type:
  application/json``; the body is ``{"invocationContext": {...}, "input":
  {...}}`` and the answer carries ``jobUid``. Errors follow SAP's: 401 bad
  token, 403 bad API key, 404 unknown trigger, 415 wrong Content-Type, 422
  body that does not match the inputs (a trigger given ``trigger_inputs``
  names the missing ones).
* ``invocationContext`` is not given to the automation; it is echoed to the
  API notifiers, which fire on Start, Success, Failure (with
  ``error.details``), Cancel and Expired.
* An API notifier without a custom payload sends SAP's default body;
  ``notifier_template`` makes it render a custom payload instead, with the
  ``${...}`` variables SAP offers.

Guessed, because SAP does not publish them (each is marked ``GUESS`` below):
the default notifier body's field names and status values, how a template
variable is rendered (text as is, anything else as JSON), the 422 body, and
the trigger's 200 (the exact success status is undocumented). The "bot"
posts one ``job.progress`` to the ``rasaRpaEventsUrl`` it was given, as an
automation step calling rasa-rpa's callback API would.

Sources: SAP tutorial ``irpa-cai-integration``; help.sap.com "Add an API
Notifier"; SAP Community "API Trigger Fail? Here's why you got 422".
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from rasa_rpa.fakes.base import FakeRequest, FakeServer, Reply
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process
from rasa_rpa.fakes.sap_notifier import DEFAULT_STATUS, render_template

__all__ = ["DEFAULT_STATUS", "FakeSapIrpa", "render_template"]

TRIGGER_PATH = "/runtime/v1/apiTriggers/{trigger}/runs"
FINAL = ("SUCCESS", "FAILURE", "CANCEL", "EXPIRED")


class FakeSapIrpa:
    """SAP's token endpoint, API triggers and API notifiers on 127.0.0.1.

    ``triggers`` maps trigger ids to process names from
    :data:`~rasa_rpa.fakes.processes.PROCESSES` (default: one trigger per
    process, named after it). Test knobs: :meth:`fail_next_requests`,
    ``drop_notifications``, :meth:`expire_tokens`, :meth:`cancel_run`,
    :meth:`expire_run`; records: ``runs``, ``notifications``,
    ``token_requests``, ``progress_posts``.
    """

    def __init__(
        self,
        *,
        client_id: str = "sb-fake-client",
        client_secret: str = "fake-secret",
        api_key: str = "fake-api-key",
        token_ttl: float = 3600,
        triggers: Mapping[str, str] | None = None,
        notifier_url: str | None = None,
        notifier_template: str | None = None,
        trigger_inputs: Mapping[str, Sequence[str]] | None = None,
        step_delay: float = 0.3,
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.triggers = dict(triggers or {name: name for name in PROCESSES})
        self.notifier_url = notifier_url
        #: A custom notifier payload; None sends SAP's default body.
        self.notifier_template = notifier_template
        #: Trigger id -> the input parameters it requires.
        self.trigger_inputs = {k: list(v) for k, v in (trigger_inputs or {}).items()}
        self.step_delay = step_delay
        #: When true, notifier payloads are recorded but not sent.
        self.drop_notifications = False
        #: jobUid → {trigger, process, input, invocationContext, status, ...}.
        self.runs: dict[str, dict[str, Any]] = {}
        #: Every notifier payload produced, sent or dropped, in order.
        self.notifications: list[dict[str, Any]] = []
        #: (url, HTTP status or error name) of each progress call the bot made.
        self.progress_posts: list[tuple[str, str]] = []
        #: How many tokens were issued.
        self.token_requests = 0
        self._tokens: dict[str, float] = {}
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server = FakeServer(port)
        self.server.route("POST", "/oauth/token", self._token)
        self.server.route(
            "POST", TRIGGER_PATH.format(trigger="(?P<trigger>[^/]+)"), self._trigger
        )

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL; it is both the service key's url and the API host."""
        return self.server.url

    def provider_options(self, **extra: Any) -> dict[str, Any]:
        """The ``providers.<name>`` entry of an rpa.yml that uses this fake."""
        return {
            "type": "sap",
            "service_key_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "api_key": self.api_key,
            "trigger_url_template": f"{self.url}/runtime/v1/apiTriggers/{{task}}/runs",
            **extra,
        }

    def trigger_url(self, task: str) -> str:
        """The full API trigger URL for a trigger id or the process it runs."""
        trigger = task
        if task not in self.triggers:
            trigger = next((t for t, p in self.triggers.items() if p == task), task)
        return self.url + TRIGGER_PATH.format(trigger=trigger)

    def start(self) -> FakeSapIrpa:
        """Serve in the background."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving and end running jobs without notifying."""
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self.server.stop()

    def __enter__(self) -> FakeSapIrpa:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs ---------------------------------------------------------------

    def fail_next_requests(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` requests (any route) with ``status``."""
        with self._lock:
            self._failures.extend([status] * n)

    def expire_tokens(self) -> None:
        """Make every issued token invalid, as if it had expired."""
        with self._lock:
            self._tokens.clear()

    def cancel_run(self, job_uid: str) -> None:
        """Cancel a running job, as a user would in Control Tower."""
        self._finish(job_uid, "CANCEL", "Cancel")

    def expire_run(self, job_uid: str) -> None:
        """Let a job expire, as SAP does when no agent takes it in time."""
        self._finish(job_uid, "EXPIRED", "Expired")

    def fail_run(self, job_uid: str, details: Any) -> None:
        """End a job as failed with ``details`` of any shape (text, object...)."""
        self._finish(job_uid, "FAILURE", "Failure", error=details)

    def wait(self, job_uid: str, timeout: float = 10) -> dict[str, Any]:
        """The run once it is final (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                run = dict(self.runs[job_uid])
            if run["status"] in FINAL:
                return run
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise AssertionError(f"SAP job {job_uid} is still {run['status']}")

    # -- routes --------------------------------------------------------------

    def _injected(self) -> Reply | None:
        with self._lock:
            status = self._failures.pop(0) if self._failures else None
        if status is None:
            return None
        return status, {"message": f"injected failure ({status})"}

    def _token(self, request: FakeRequest) -> Reply:
        failure = self._injected()
        if failure:
            return failure
        grant = request.query.get("grant_type")
        if grant is None and request.body:
            grant = request.form().get("grant_type")
        if grant != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"Unsupported grant type: {grant}",
            }
        if not self._basic_ok(request.headers.get("authorization", "")):
            return 401, {
                "error": "unauthorized",
                "error_description": "Bad credentials",
            }
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl
            self.token_requests += 1
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.token_ttl),
            "scope": "uaa.resource",
            "jti": uuid.uuid4().hex,
        }

    def _basic_ok(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(
            user.encode(), self.client_id.encode()
        ) and secrets.compare_digest(password.encode(), self.client_secret.encode())

    def _trigger(self, request: FakeRequest) -> Reply:
        failure = self._injected()
        if failure:
            return failure
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires < time.time():
            return 401, {"error": "invalid_token", "error_description": "Unauthorized"}
        key = request.headers.get("irpa-api-key", "")
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            return 403, {"message": "Forbidden: invalid or missing API key"}
        trigger = request.params["trigger"]
        if trigger not in self.triggers:
            return 404, {"message": f"API trigger {trigger} not found"}
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return 415, {"message": f"Unsupported Media Type: {content_type!r}"}
        try:
            body = request.json()
        except ValueError:
            return 422, {"message": "the request body is not valid JSON"}
        if not isinstance(body, dict) or "input" not in body:
            return 422, {"message": "Invalid input: the body must contain input"}
        if not isinstance(body["input"], dict):
            return 422, {"message": "Invalid input: input must be an object"}
        missing = [
            name
            for name in self.trigger_inputs.get(trigger, [])
            if name not in body["input"]
        ]
        if missing:
            # GUESS: SAP documents that a 422 means the inputs do not match
            # the trigger's (names are case-sensitive), not the body's exact
            # shape; this follows its other API errors ({"error": {...}}).
            return 422, {
                "error": {
                    "code": "bpm.irpa.trigger.input.invalid",
                    "message": "The request body does not match the trigger's inputs",
                    "details": [
                        {"target": f"input.{name}", "message": "is required"}
                        for name in missing
                    ],
                }
            }
        context = body.get("invocationContext") or {}
        if not isinstance(context, dict):
            return 422, {"message": "invocationContext must be an object"}
        job_uid = str(uuid.uuid4())
        with self._lock:
            self.runs[job_uid] = {
                "trigger": trigger,
                "process": self.triggers[trigger],
                "input": body["input"],
                "invocationContext": context,
                "status": "PENDING",
                "output": None,
                "error": None,
            }
        thread = threading.Thread(target=self._run, args=(job_uid,), daemon=True)
        self._threads.append(thread)
        thread.start()
        # GUESS: 200; SAP documents the jobUid in the answer, not the status.
        return 200, {"jobUid": job_uid}

    # -- the job -------------------------------------------------------------

    def _run(self, job_uid: str) -> None:
        if self._stopping.wait(self.step_delay):
            return
        with self._lock:
            run = self.runs[job_uid]
            if run["status"] != "PENDING":
                return
            run["status"] = "RUNNING"
            process, inputs = run["process"], dict(run["input"])
            context = dict(run["invocationContext"])
        self._notify(job_uid, "Start")
        self._report_progress(context)
        if self._stopping.wait(self.step_delay):
            return
        try:
            if process not in PROCESSES:
                raise ProcessFailed(f"the automation {process!r} is not deployed")
            output = run_process(process, inputs)
        except ProcessFailed as exc:
            self._finish(job_uid, "FAILURE", "Failure", error=str(exc))
            return
        self._finish(job_uid, "SUCCESS", "Success", output=output)

    def _finish(
        self,
        job_uid: str,
        status: str,
        event: str,
        *,
        output: dict[str, Any] | None = None,
        error: Any = None,
    ) -> None:
        with self._lock:
            run = self.runs[job_uid]
            if run["status"] in FINAL:
                return
            run.update(status=status, output=output, error=error)
        self._notify(job_uid, event)

    def _notify(self, job_uid: str, event: str) -> None:
        """The API notifier's call: SAP's default body or the custom template.

        ``notifications`` records the body as sent: a dict, or the rendered
        text when a template made it something else than a JSON object.
        """
        with self._lock:
            run = self.runs[job_uid]
            # GUESS: the default body's names; SAP's notifier editor shows
            # the job's uid, status, invocation context, output and error.
            payload: dict[str, Any] = {
                "jobUid": job_uid,
                "status": DEFAULT_STATUS[event],
                "invocationContext": dict(run["invocationContext"]),
            }
            if event == "Success":
                payload["output"] = run["output"] or {}
            if event == "Failure":
                payload["error"] = {"details": run["error"]}
            body = self._render(event, payload)
            try:
                sent: Any = json.loads(body)
            except ValueError:
                sent = body
            self.notifications.append(sent)
        if self.drop_notifications or not self.notifier_url:
            return
        headers = {"Content-Type": "application/json"}
        try:
            httpx.post(self.notifier_url, content=body, headers=headers, timeout=5)
        except httpx.HTTPError:
            pass  # SAP does not document notifier retries; a lost call is lost

    def _render(self, event: str, payload: dict[str, Any]) -> str:
        """The notifier's body text for one event."""
        if self.notifier_template is None:
            return json.dumps(payload)
        variables = {
            "event": event,
            "status": payload["status"],
            "jobUid": payload["jobUid"],
            "invocation_context": payload["invocationContext"],
            "output": payload.get("output"),
            "error": payload.get("error"),
        }
        return render_template(self.notifier_template, variables)

    def _report_progress(self, context: dict[str, Any]) -> None:
        url, token = context.get("rasaRpaEventsUrl"), context.get("rasaRpaToken")
        if not (isinstance(url, str) and isinstance(token, str)):
            return
        body = {
            "id": uuid.uuid4().hex,
            "type": "job.progress",
            "data": {"progress": 50, "message": "Processing in SAP"},
        }
        try:
            response = httpx.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        with self._lock:
            self.progress_posts.append((url, outcome))
