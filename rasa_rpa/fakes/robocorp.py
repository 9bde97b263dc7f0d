"""A fake Robocorp / Sema4.ai Control Room API: processes, runs, work items.

Faithful to the Control Room API v1 as documented (robocorp.com/api; the
OpenAPI client generated from it in robocorp/robocorp, branch
``package/robocorp-workspace``, ``workspace/src/robocorp/workspace``;
robocorp.com/docs/control-room/unattended/process-runs):

* every call needs ``Authorization: RC-WSKEY <workspace API key>``;
* ``GET /api/v1/workspaces/{ws}`` answers ``{id, name, organization}``;
  ``GET .../processes`` answers ``{next, has_more, data: [{id, name,
  created_at}]}``;
* ``POST .../processes/{id}/process-runs`` takes ``{"type": "with_payloads",
  "payloads": [...]}`` (one input work item per payload), ``{"type":
  "with_work_item_ids", ...}``, ``{"type": "with_inputs"}`` or no body (one
  empty work item), and answers 200 ``{"started": true, "id"}``; 400 for a
  body it cannot read, 409 when it will not start a run now (``busy``);
* ``GET .../process-runs/{id}`` answers ``ProcessRunResource`` (``state``:
  new, in_progress, completed, unresolved, stopping); a run with a failed
  work item ends ``unresolved``;
* ``GET .../work-items?process_run_id=&state=`` lists work items with their
  ``exception {code, type, message}``; ``GET .../outputs?process_run_id=``
  lists output work items with their ``payload``;
* ``POST .../process-runs/{id}/stop`` needs the booleans
  ``set_remaining_work_items_as_done`` and ``terminate_ongoing_activity_runs``
  and answers ``{"accepted": true}``;
* errors are ``{"error": {"code", "message"}}``.

Guessed (marked ``GUESS`` where they are made): the exact error codes and
messages, 401 for a bad key and 403 for another workspace, 404 for an
unknown process or run, 400 for stopping a finished run, and what a
stopped run leaves behind (:mod:`rasa_rpa.fakes.robocorp_runs`). The
"robots" are :mod:`rasa_rpa.fakes.processes`; a payload that carries
``rasa_rpa_events_url`` and ``rasa_rpa_token`` also gets a progress report.
The failure knobs are :class:`~rasa_rpa.fakes.base.FakeVendor`'s.
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from rasa_rpa.fakes.base import FakeRequest, FakeVendor, Handler, Reply
from rasa_rpa.fakes.processes import PROCESSES
from rasa_rpa.fakes.robocorp_runs import FINAL, ControlRoomRuns, Run, now

__all__ = ["FINAL", "FakeRobocorp", "Run"]

API = "/api/v1"
_WS = API + r"/workspaces/(?P<ws>[^/]+)"
_START_TYPES = ("with_payloads", "with_work_item_ids", "with_inputs")


def error(status: int, code: str, message: str) -> Reply:
    """Control Room's ``GenericErrorResponse``."""
    return status, {"error": {"code": code, "message": message}}


class FakeRobocorp(ControlRoomRuns, FakeVendor):
    """The Control Room API on 127.0.0.1, with knobs for failure tests."""

    def __init__(
        self,
        *,
        workspace_id: str = "fake-workspace",
        api_key: str = "fake-rc-api-key",
        processes: Iterable[str] | None = None,
        step_delay: float = 0.3,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.workspace_id = workspace_id
        self.api_key = api_key
        self.step_delay = step_delay
        #: Process name -> process id.
        self.process_ids = {
            name: uuid.uuid4().hex for name in (processes or sorted(PROCESSES))
        }
        self.created_at = now()
        self.runs = {}
        self.progress_posts = []
        #: When true, starting a run answers 409 (Control Room will not take it).
        self.busy = False
        self._lock = threading.Lock()
        self._threads = []
        routes: list[tuple[str, str, Handler]] = [
            ("GET", _WS, self._workspace),
            ("GET", _WS + "/processes", self._processes),
            ("POST", _WS + "/processes/(?P<pid>[^/]+)/process-runs", self._start),
            ("GET", _WS + "/process-runs/(?P<rid>[^/]+)", self._get_run),
            ("POST", _WS + "/process-runs/(?P<rid>[^/]+)/stop", self._stop_run),
            ("GET", _WS + "/work-items", self._work_items),
            ("GET", _WS + "/outputs", self._outputs),
        ]
        for method, pattern, handler in routes:
            self.route(method, pattern, self._authorized(handler))

    @property
    def api_url(self) -> str:
        """What a provider's ``url:`` points at (https://cloud.robocorp.com/api/v1)."""
        return self.url + API

    def provider_options(self, **extra: Any) -> dict[str, Any]:
        """The ``providers.<name>`` entry of an rpa.yml that uses this fake."""
        return {
            "type": "robocorp",
            "url": self.api_url,
            "workspace_id": self.workspace_id,
            "api_key": self.api_key,
            **extra,
        }

    def outage(self, status: int) -> Reply:
        return error(status, "SERVICE_UNAVAILABLE", f"injected failure {status}")

    def stop(self) -> None:
        """Stop serving; running robots end without finishing their runs."""
        self._closing.set()
        for run in list(self.runs.values()):
            run.stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        super().stop()

    # -- checks ----------------------------------------------------------------

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: FakeRequest) -> Reply:
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            if scheme != "RC-WSKEY" or not hmac.compare_digest(key, self.api_key):
                # GUESS: the status and words for a missing or wrong key.
                return error(401, "UNAUTHORIZED", "Invalid API key")
            if request.params.get("ws") != self.workspace_id:
                # GUESS: keys are workspace-scoped; another workspace is 403.
                return error(403, "FORBIDDEN", "API key has no access to workspace")
            return handler(request)

        return checked

    def _run_of(self, request: FakeRequest) -> Run | None:
        return self.runs.get(request.params["rid"])

    # -- routes ----------------------------------------------------------------

    def _workspace(self, request: FakeRequest) -> Reply:
        org = {"id": "fake-organization", "name": "Fake organization"}
        return 200, {
            "id": self.workspace_id,
            "name": "Fake workspace",
            "organization": org,
        }

    def _processes(self, request: FakeRequest) -> Reply:
        data = [
            {"id": pid, "name": name, "created_at": self.created_at}
            for name, pid in self.process_ids.items()
        ]
        return 200, {"next": None, "has_more": False, "data": data}

    def _start(self, request: FakeRequest) -> Reply:
        names = {pid: name for name, pid in self.process_ids.items()}
        name = names.get(request.params["pid"])
        if name is None:
            # GUESS: the documented answers are 200/400/403/409; an unknown
            # process id is taken to be 404, as for an unknown run.
            return error(404, "NOT_FOUND", "Process not found")
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return error(400, "BAD_REQUEST", "The body is not valid JSON")
        payloads = self._payloads(body)
        if isinstance(payloads, str):
            return error(400, "BAD_REQUEST", payloads)
        if self.busy:
            # GUESS: the words of the documented 409 Conflict.
            return error(409, "CONFLICT", "The process cannot start a new run now")
        run = self._create(self.process_ids[name], name, payloads)
        return 200, {"started": True, "id": run.id}

    @staticmethod
    def _payloads(body: Any) -> list[Any] | str:
        """The input work items a start body asks for, or what is wrong with it."""
        if not isinstance(body, dict):
            return "The body must be a JSON object"
        kind = body.get("type")
        if kind is None or kind == "with_inputs":
            return [{}]  # "Omitting the request body" starts with an empty item
        if kind not in _START_TYPES:
            return f"type must be one of {', '.join(_START_TYPES)}"
        if kind == "with_work_item_ids":
            ids = body.get("work_item_ids")
            if not isinstance(ids, list) or not ids:
                return "work_item_ids must be a non-empty list"
            return [{} for _ in ids]  # the fake keeps no queues: empty items
        payloads = body.get("payloads")
        if not isinstance(payloads, list) or not payloads:
            return "payloads must be a non-empty list"
        return list(payloads)

    def _get_run(self, request: FakeRequest) -> Reply:
        with self._lock:
            run = self._run_of(request)
            if run is None:
                return error(404, "NOT_FOUND", "Process run not found")
            return 200, run.record()

    def _stop_run(self, request: FakeRequest) -> Reply:
        try:
            body = request.json()
        except ValueError:
            body = None
        flags = ("set_remaining_work_items_as_done", "terminate_ongoing_activity_runs")
        if not isinstance(body, dict) or not all(
            isinstance(body.get(f), bool) for f in flags
        ):
            return error(400, "BAD_REQUEST", f"{' and '.join(flags)} are required")
        with self._lock:
            run = self._run_of(request)
            if run is None:
                return error(404, "NOT_FOUND", "Process run not found")
            if run.state in FINAL or run.state == "stopping":
                # GUESS: the answer for a run that is not running any more.
                return error(400, "BAD_REQUEST", f"Process run is {run.state}")
            reason = body.get("reason")
            self._stop(run, reason if isinstance(reason, str) else "")
        return 200, {"accepted": True}

    def _work_items(self, request: FakeRequest) -> Reply:
        wanted = request.query.get("process_run_id")
        state = request.query.get("state")
        with self._lock:
            items = [
                {k: v for k, v in item.items() if k != "payload"}
                for run in self.runs.values()
                if wanted is None or run.id == wanted
                for item in run.items
                if state is None or item["state"] == state
            ]
        return 200, {"next": None, "has_more": False, "data": items}

    def _outputs(self, request: FakeRequest) -> Reply:
        wanted = request.query.get("process_run_id")
        with self._lock:
            items = [
                dict(output)
                for run in self.runs.values()
                if wanted is None or run.id == wanted
                for output in run.outputs
            ]
        return 200, {"next": None, "has_more": False, "data": items}

    # -- knobs -----------------------------------------------------------------

    def wait(self, run_id: str, timeout: float = 10) -> dict[str, Any]:
        """The run's record once it is final (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                record = self.runs[run_id].record()
            if record["state"] in FINAL:
                return record
            time.sleep(0.02)
        raise AssertionError(f"process run {run_id} is still {record['state']}")
