"""The fake SAP tenant's runs: what a triggered job does, and its notifiers.

:mod:`rasa_rpa.fakes.sap` is the HTTP face (OAuth, API triggers and their
checks); this is what happens once a trigger made a run. A run is a record
in ``runs``; a thread takes it PENDING → RUNNING → SUCCESS | FAILURE with
the shared scripted processes, posts one progress report to rasa-rpa if
the invocation context asks for it, and fires the API notifiers (SAP's
default body or a custom template, :mod:`rasa_rpa.fakes.sap_notifier`).
Tests end runs by hand here too (cancel, expire, fail). Nothing here
parses a request.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from rasa_rpa.fakes.base import progress_event
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process
from rasa_rpa.fakes.sap_notifier import DEFAULT_STATUS, render_template

__all__ = ["FINAL", "SapRuns"]

#: Statuses a run never leaves.
FINAL = ("SUCCESS", "FAILURE", "CANCEL", "EXPIRED")


class SapRuns:
    """Runs the fake tenant's jobs and sends their notifications.

    A mixin of :class:`~rasa_rpa.fakes.sap.FakeSapIrpa`, which sets the
    attributes below in its ``__init__``.
    """

    #: jobUid → {trigger, process, input, invocationContext, status, ...}.
    runs: dict[str, dict[str, Any]]
    notifier_url: str | None
    #: A custom notifier payload; None sends SAP's default body.
    notifier_template: str | None
    step_delay: float
    #: When true, notifier payloads are recorded but not sent.
    drop_notifications: bool
    #: Every notifier payload produced, sent or dropped, in order.
    notifications: list[dict[str, Any]]
    #: (url, HTTP status or error name) of each progress call the bot made.
    progress_posts: list[tuple[str, str]]
    _closing: threading.Event
    _lock: threading.Lock
    _threads: list[threading.Thread]

    # -- knobs ---------------------------------------------------------------

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

    def _begin(self, job_uid: str) -> None:
        """Run a new job in the background."""
        thread = threading.Thread(target=self._run, args=(job_uid,), daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- the job -------------------------------------------------------------

    def _run(self, job_uid: str) -> None:
        if self._closing.wait(self.step_delay):
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
        if self._closing.wait(self.step_delay):
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
        body = progress_event("SAP")
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
