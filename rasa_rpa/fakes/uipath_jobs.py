"""The fake Orchestrator's jobs: their records, the "robot" and the webhooks.

:mod:`rasa_rpa.fakes.uipath` is the HTTP face (identity, OData routes,
folders); this is what happens behind it once a job exists. A job is the
OData record ``GET Jobs(<Id>)`` shows; a thread runs it Pending → Running →
Successful | Faulted (or Stopped) with the shared scripted processes,
reports progress to rasa-rpa as a workflow would, and sends Orchestrator's
webhooks, signed and never retried. Nothing here parses a request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

from rasa_rpa.fakes.base import progress_event
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process

__all__ = ["FINAL", "OrchestratorJobs", "now", "sign"]

#: States a job never leaves.
FINAL = frozenset({"Successful", "Faulted", "Stopped"})


def sign(secret: str, body: bytes) -> str:
    """Orchestrator's ``X-UiPath-Signature`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def now() -> str:
    """The time as Orchestrator writes it (ISO 8601, UTC, ``Z``)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class OrchestratorJobs:
    """Creates, runs and stops the fake Orchestrator's jobs.

    A mixin of :class:`~rasa_rpa.fakes.uipath.FakeOrchestrator`, which sets
    the attributes below in its ``__init__``.
    """

    #: Jobs by Id, as ``GET odata/Jobs(<Id>)`` shows them.
    jobs: dict[int, dict[str, Any]]
    folder_id: int
    step_delay: float
    webhook_url: str | None
    webhook_secret: str | None
    #: Lose every webhook, as when Orchestrator's circuit breaker is open.
    drop_webhooks: bool
    #: Webhook bodies sent (not dropped), in order.
    webhooks_sent: list[dict[str, Any]]
    #: Status of each progress call the "robot" made (or the error's name).
    progress_posts: list[int | str]
    _stops: dict[int, threading.Event]
    _closing: threading.Event
    _lock: threading.RLock
    _next_id: int

    def _create(self, release: dict[str, Any], arguments: dict[str, Any]) -> Any:
        with self._lock:
            self._next_id += 1
            job_id = self._next_id
            job = {
                "Id": job_id,
                "Key": str(uuid.uuid4()),
                "State": "Pending",
                "StartTime": None,
                "EndTime": None,
                "Info": None,
                "InputArguments": json.dumps(arguments),
                "OutputArguments": None,
                "JobError": None,
                "HasErrors": False,
                "ReleaseName": release["Name"],
                "ProcessKey": release["ProcessKey"],
                "Source": "Manual",
                "CreationTime": now(),
                "OrganizationUnitId": self.folder_id,
            }
            self.jobs[job_id] = job
            self._stops[job_id] = threading.Event()
            snapshot = dict(job)
        threading.Thread(target=self._run, args=(job_id,), daemon=True).start()
        return snapshot

    def _stop(self, job_ids: list[int], soft: bool) -> None:
        """Ask running jobs to stop (the caller holds the lock)."""
        for job_id in job_ids:
            job = self.jobs[job_id]
            if job["State"] not in FINAL:
                job["State"] = "Stopping" if soft else "Terminating"
                self._stops[job_id].set()

    def _run(self, job_id: int) -> None:
        """One job's life; a stop request or shutdown cuts the waits short."""
        stop = self._stops[job_id]
        if stop.wait(self.step_delay):
            return self._finish(job_id, "Stopped")
        arguments = self._set(job_id, State="Running", StartTime=now())
        self._webhook("job.started", job_id)
        self._report_progress(arguments)
        if stop.wait(self.step_delay):
            return self._finish(job_id, "Stopped")
        process = self.jobs[job_id]["ProcessKey"]
        inputs = {k: v for k, v in arguments.items() if not k.startswith("rasa_rpa_")}
        try:
            if process not in PROCESSES:
                raise ProcessFailed(f"process {process!r} has no script in the fake")
            outputs = run_process(process, inputs)
        except ProcessFailed as exc:
            error = {"Code": "Robot", "Title": "Job faulted", "Detail": str(exc)}
            return self._finish(job_id, "Faulted", Info=str(exc), JobError=error)
        self._finish(
            job_id,
            "Successful",
            Info="Job completed",
            OutputArguments=json.dumps(outputs),
        )

    def _set(self, job_id: int, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self.jobs[job_id].update(changes)
            arguments: dict[str, Any] = json.loads(self.jobs[job_id]["InputArguments"])
            return arguments

    def _finish(self, job_id: int, state: str, **changes: Any) -> None:
        if self._closing.is_set():
            return
        self._set(
            job_id, State=state, EndTime=now(), HasErrors=state == "Faulted", **changes
        )
        kind = {"Successful": "job.completed", "Faulted": "job.faulted"}
        self._webhook(kind.get(state, "job.stopped"), job_id)

    def _report_progress(self, arguments: dict[str, Any]) -> None:
        url = arguments.get("rasa_rpa_events_url")
        token = arguments.get("rasa_rpa_token")
        if not (isinstance(url, str) and isinstance(token, str)):
            return
        event = progress_event("UiPath")
        headers = {"Authorization": f"Bearer {token}"}
        self.progress_posts.append(self._post(url, event, headers))

    def _webhook(self, kind: str, job_id: int) -> None:
        if self.webhook_url is None or self._closing.is_set():
            return
        with self._lock:
            job = self.jobs[job_id]
            outputs = job["OutputArguments"]
            body = {
                "Type": kind,
                "EventId": uuid.uuid4().hex,
                "Timestamp": now(),
                "Job": {
                    "Id": job["Id"],
                    "Key": job["Key"],
                    "State": job["State"],
                    "StartTime": job["StartTime"],
                    "EndTime": job["EndTime"],
                    "Info": job["Info"],
                    "OutputArguments": json.loads(outputs) if outputs else None,
                    "Release": {"ProcessKey": job["ProcessKey"]},
                },
                "TenantId": 1,
                "OrganizationUnitId": self.folder_id,
            }
        if self.drop_webhooks:
            return
        self.webhooks_sent.append(body)
        raw = json.dumps(body).encode()
        headers = {}
        if self.webhook_secret:
            headers["X-UiPath-Signature"] = sign(self.webhook_secret, raw)
        self._post(self.webhook_url, raw, headers)

    @staticmethod
    def _post(url: str, body: Any, headers: dict[str, str]) -> int | str:
        """POST once and never retry, like Orchestrator; failures are ignored."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except Exception as exc:  # a lost callback is part of the simulation
            return getattr(exc, "code", None) or type(exc).__name__
