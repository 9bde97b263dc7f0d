"""The fake Control Room's process runs: their records, work items and "robot".

:mod:`rasa_rpa.fakes.robocorp` is the HTTP face (the key, the routes and
their checks); this is what happens once a run exists. A run is the record
``GET /workspaces/{ws}/process-runs/{id}`` shows, with its input work items
and the output work items its robot creates. A thread takes it ``new`` →
``in_progress`` → ``completed`` | ``unresolved`` with the shared scripted
processes, and reports progress to rasa-rpa as a robot with the rasa-rpa
keywords would. Nothing here parses a request.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from rasa_rpa.fakes.base import progress_event
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process

__all__ = ["FINAL", "ControlRoomRuns", "Run", "now"]

#: States a run does not leave by itself.
FINAL = frozenset({"completed", "unresolved"})


def now() -> str:
    """A timestamp as the API writes it (ISO 8601, UTC)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Run:
    """One process run and its work items."""

    id: str
    process_id: str
    process_name: str
    payloads: list[Any]
    state: str = "new"
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    #: Input work items (``WorkItemWithoutDataResource`` plus ``payload``).
    items: list[dict[str, Any]] = field(default_factory=list)
    #: Output work items the robot created.
    outputs: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""

    def __post_init__(self) -> None:
        self.items = [self._item(payload) for payload in self.payloads]

    def _item(self, payload: Any) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "created_at": now(),
            "state": "pending",
            "state_updated_at": None,
            "process": {"id": self.process_id},
            "process_run": {"id": self.id},
            "step": {"id": "step-1"},
            "step_run": None,
            "exception": None,
            "payload": payload,
        }

    def record(self) -> dict[str, Any]:
        """``ProcessRunResource``."""
        return {
            "id": self.id,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "process": {"id": self.process_id, "name": self.process_name},
            "started_by": {"type": "api", "details": None},
            "duration": None,
        }


class ControlRoomRuns:
    """Creates, runs and stops the fake's process runs.

    A mixin of :class:`~rasa_rpa.fakes.robocorp.FakeRobocorp`, which sets the
    attributes below in its ``__init__``.
    """

    runs: dict[str, Run]
    step_delay: float
    #: Every progress report a robot sent to rasa-rpa: {"url", "status"}.
    progress_posts: list[dict[str, Any]]
    _closing: threading.Event
    _lock: threading.Lock
    _threads: list[threading.Thread]

    def _create(self, process_id: str, name: str, payloads: list[Any]) -> Run:
        run = Run(uuid.uuid4().hex, process_id, name, payloads)
        with self._lock:
            self.runs[run.id] = run
        thread = threading.Thread(target=self._life, args=(run,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return run

    def _life(self, run: Run) -> None:
        """new → in_progress → completed | unresolved; a stop cuts it short."""
        if run.stop.wait(self.step_delay):
            return self._stopped(run)
        with self._lock:
            run.state, run.started_at = "in_progress", now()
        for item in run.items:
            self._set_item(run, item, "in_progress")
            self._report_progress(item.get("payload"))
            if run.stop.wait(self.step_delay):
                return self._stopped(run)
            self._work(run, item)
        with self._lock:
            failed = any(i["state"] == "failed" for i in run.items)
            if not self._closing.is_set():
                run.state = "unresolved" if failed else "completed"
                run.ended_at = now()

    def _work(self, run: Run, item: dict[str, Any]) -> None:
        """What the robot does with one input work item."""
        payload = item.get("payload")
        inputs = payload if isinstance(payload, dict) else {}
        inputs = {k: v for k, v in inputs.items() if not k.startswith("rasa_rpa_")}
        try:
            if run.process_name not in PROCESSES:
                raise ProcessFailed(f"process {run.process_name!r} has no robot")
            outputs = run_process(run.process_name, inputs)
        except ProcessFailed as exc:
            # As RPA.Robocorp.WorkItems' ``Release Input Work Item  FAILED
            # exception_type=BUSINESS  message=...`` leaves it.
            exception = {"code": "PROCESS_FAILED", "type": "business"}
            self._set_item(run, item, "failed", {**exception, "message": str(exc)})
            return
        with self._lock:
            run.outputs.append(
                {
                    "id": uuid.uuid4().hex,
                    "created_at": now(),
                    "process": {"id": run.process_id},
                    "process_run": {"id": run.id},
                    "payload": outputs,
                    "files": [],
                }
            )
        self._set_item(run, item, "done")

    def _stopped(self, run: Run) -> None:
        """A stopped run's unfinished items fail; the run ends unresolved.

        GUESS: Control Room documents the stop, not what it leaves behind;
        with ``set_remaining_work_items_as_done: false`` the remaining items
        cannot be done, so they are failed by the orchestrator and the run,
        having failed items, ends unresolved.
        """
        if self._closing.is_set():
            return
        exception = {
            "code": "PROCESS_RUN_STOPPED",  # GUESS: the code is undocumented
            "type": "orchestrator",
            "message": run.stop_reason or "The process run was stopped",
        }
        for item in run.items:
            if item["state"] not in ("done", "failed"):
                self._set_item(run, item, "failed", exception)
        with self._lock:
            run.state, run.ended_at = "unresolved", now()

    def _stop(self, run: Run, reason: str) -> None:
        """Start stopping ``run`` (the caller holds the lock)."""
        run.state = "stopping"
        run.stop_reason = reason
        run.stop.set()

    def _set_item(
        self,
        run: Run,
        item: dict[str, Any],
        state: str,
        exception: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            item["state"] = state
            item["state_updated_at"] = now()
            item["step_run"] = {"id": f"{run.id}-step-run"}
            if exception is not None:
                item["exception"] = exception

    def _report_progress(self, payload: Any) -> None:
        """Post ``job.progress`` as a robot using the rasa-rpa keywords would."""
        if not isinstance(payload, dict) or self._closing.is_set():
            return
        url, token = payload.get("rasa_rpa_events_url"), payload.get("rasa_rpa_token")
        if not (isinstance(url, str) and isinstance(token, str)):
            return
        record: dict[str, Any] = {"url": url}
        try:
            response = httpx.post(
                url,
                json=progress_event("Robocorp"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["status"] = type(exc).__name__
        with self._lock:
            self.progress_posts.append(record)
