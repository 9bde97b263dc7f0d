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

This module is the HTTP face: OAuth and the API triggers with their checks.
What a run does once triggered, and the notifiers it fires, is
:mod:`rasa_rpa.fakes.sap_runs`; the failure knobs are
:class:`~rasa_rpa.fakes.base.FakeVendor`'s.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from rasa_rpa.fakes.base import FakeRequest, FakeVendor, Reply
from rasa_rpa.fakes.processes import PROCESSES
from rasa_rpa.fakes.sap_notifier import DEFAULT_STATUS, render_template
from rasa_rpa.fakes.sap_runs import FINAL, SapRuns

__all__ = ["DEFAULT_STATUS", "FINAL", "FakeSapIrpa", "render_template"]

TRIGGER_PATH = "/runtime/v1/apiTriggers/{trigger}/runs"


class FakeSapIrpa(SapRuns, FakeVendor):
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
        super().__init__(port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.triggers = dict(triggers or {name: name for name in PROCESSES})
        self.notifier_url = notifier_url
        self.notifier_template = notifier_template
        #: Trigger id -> the input parameters it requires.
        self.trigger_inputs = {k: list(v) for k, v in (trigger_inputs or {}).items()}
        self.step_delay = step_delay
        self.drop_notifications = False
        self.runs = {}
        self.notifications = []
        self.progress_posts = []
        self._lock = threading.Lock()
        self._threads = []
        self.route("POST", "/oauth/token", self._token)
        self.route(
            "POST", TRIGGER_PATH.format(trigger="(?P<trigger>[^/]+)"), self._trigger
        )

    # -- lifecycle -----------------------------------------------------------

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

    def stop(self) -> None:
        """Stop serving and end running jobs without notifying."""
        self._closing.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        super().stop()

    # -- routes --------------------------------------------------------------

    def _token(self, request: FakeRequest) -> Reply:
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
        self.keep_token(token, time.time() + self.token_ttl)
        with self._lock:
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
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.token_alive(token):
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
        self._begin(job_uid)
        # GUESS: 200; SAP documents the jobUid in the answer, not the status.
        return 200, {"jobUid": job_uid}
