"""The fake Power Automate's desktop flow runs: flow sessions and callbacks.

:mod:`rasa_rpa.fakes.power_automate` is the HTTP face (Entra, Dataverse and
their checks); this is what happens once ``RunDesktopFlow`` made a flow
session. A thread takes it Waiting (3) → Running (2) → Succeeded (4) |
Failed (8), or Cancelled (7) when cancelled, with the shared scripted
processes; a running flow posts one progress report to rasa-rpa as an
*Invoke web service* action would, and a completed run POSTs the documented
callback to its ``callbackUrl``. Nothing here parses a request.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from rasa_rpa.fakes.base import progress_event
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process

__all__ = ["FINAL", "FlowSessions", "Session", "now"]

#: statuscode values a session does not leave.
FINAL = frozenset({4, 7, 8})


def now() -> str:
    """A Dataverse date and time (ISO 8601, UTC, whole seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Session:
    """One desktop flow run (a ``flowsession`` row)."""

    id: str
    workflow_id: str
    flow_name: str
    inputs: dict[str, Any]
    connection: str
    callback_url: str | None
    statuscode: int = 3  # Waiting: queued for a machine
    statecode: int = 0
    startedon: str | None = None
    completedon: str | None = None
    errorcode: str | None = None
    errormessage: str | None = None
    outputs: dict[str, Any] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def row(self, select: str | None = None) -> dict[str, Any]:
        """The row as ``GET flowsessions(<id>)`` answers, ``$select`` applied."""
        row = {
            "flowsessionid": self.id,
            "statuscode": self.statuscode,
            "statecode": self.statecode,
            "startedon": self.startedon,
            "completedon": self.completedon,
            "errorcode": self.errorcode,
            "errormessage": self.errormessage,
            "_regardingobjectid_value": self.workflow_id,
        }
        if select:
            wanted = {name.strip() for name in select.split(",")}
            row = {k: v for k, v in row.items() if k in wanted}
        return {"@odata.etag": f'W/"{uuid.uuid4().int % 10**7}"', **row}


class FlowSessions:
    """Creates, runs and cancels the fake's flow sessions.

    A mixin of :class:`~rasa_rpa.fakes.power_automate.FakePowerAutomate`,
    which sets the attributes below in its ``__init__``.
    """

    sessions: dict[str, Session]
    step_delay: float
    #: Seconds between callback attempts (the service waits 1 second).
    callback_retry_delay: float
    #: When true, completed runs send no callback.
    drop_callbacks: bool
    #: When true, no machine takes a run: it fails as having no machine.
    machines_offline: bool
    #: Every callback attempt: {"url", "headers", "body", "status"}.
    callbacks: list[dict[str, Any]]
    #: Every progress report a flow sent to rasa-rpa: {"url", "status"}.
    progress_posts: list[dict[str, Any]]
    _closing: threading.Event
    _lock: threading.Lock
    _threads: list[threading.Thread]

    def _create(self, session: Session) -> None:
        with self._lock:
            self.sessions[session.id] = session
        thread = threading.Thread(target=self._life, args=(session,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _life(self, session: Session) -> None:
        if session.cancel.wait(self.step_delay):
            return self._end(session, 7)
        if self.machines_offline:
            # GUESS: the code and words of a run no machine took.
            message = "There is no machine available in the machine group to run"
            return self._end(session, 8, "NoCandidateMachine", message)
        with self._lock:
            session.statuscode, session.startedon = 2, now()
        self._report_progress(session)
        if session.cancel.wait(self.step_delay):
            return self._end(session, 7)
        inputs = {
            k: v for k, v in session.inputs.items() if not k.startswith("rasaRpa")
        }
        try:
            if session.flow_name not in PROCESSES:
                raise ProcessFailed(f"desktop flow {session.flow_name!r} has no script")
            outputs = run_process(session.flow_name, inputs)
        except ProcessFailed as exc:
            # GUESS: the errorcode of a flow that raised an error.
            return self._end(session, 8, "ActionFailed", str(exc))
        self._end(session, 4, outputs=outputs)

    def _end(
        self,
        session: Session,
        statuscode: int,
        errorcode: str | None = None,
        errormessage: str | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        if self._closing.is_set():
            return
        with self._lock:
            if session.statuscode in FINAL:
                return
            session.statuscode = statuscode
            session.completedon = now()
            session.errorcode, session.errormessage = errorcode, errormessage
            session.outputs = outputs
        self._callback(session)

    def _callback(self, session: Session) -> None:
        """The documented completion POST, retried 3 times at 1-second intervals
        on a 5xx or 408 answer.

        GUESS: it is sent for every end (succeeded, failed, cancelled); the
        documentation says "when the script is complete".
        """
        if not session.callback_url or self.drop_callbacks:
            return
        headers = {
            "User-Agent": "EnterpriseConnectors/1.0",
            "Content-Type": "application/json; charset=utf-8",
            "x-ms-workflow-id": session.workflow_id,
            "x-ms-run-id": session.id,
        }
        with self._lock:
            body = {
                "statuscode": session.statuscode,
                "statecode": session.statecode,
                "startedon": session.startedon,
                "completedon": session.completedon,
                "flowsessionid": session.id,
            }
        for attempt in range(4):  # the call and three retries
            if attempt:
                time.sleep(self.callback_retry_delay)
            record: dict[str, Any] = {
                "url": session.callback_url,
                "headers": headers,
                "body": body,
            }
            try:
                response = httpx.post(
                    session.callback_url,
                    content=json.dumps(body).encode(),
                    headers=headers,
                    timeout=5,
                )
                record["status"] = status = response.status_code
            except httpx.HTTPError as exc:
                record["status"] = type(exc).__name__
                status = 0  # GUESS: a connection error is not retried
            with self._lock:
                self.callbacks.append(record)
            if not (status >= 500 or status == 408):
                return

    def _report_progress(self, session: Session) -> None:
        """What an *Invoke web service* action posting ``job.progress`` does."""
        url = session.inputs.get("rasaRpaEventsUrl")
        token = session.inputs.get("rasaRpaToken")
        if not (isinstance(url, str) and isinstance(token, str)):
            return
        record: dict[str, Any] = {"url": url}
        try:
            response = httpx.post(
                url,
                json=progress_event("Power Automate"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["status"] = type(exc).__name__
        with self._lock:
            self.progress_posts.append(record)

    # -- knobs -----------------------------------------------------------------

    def wait(self, session_id: str, timeout: float = 10) -> dict[str, Any]:
        """The session's row once it is final (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                row = self.sessions[session_id].row()
            if row["statuscode"] in FINAL:
                return row
            time.sleep(0.02)
        raise AssertionError(f"flow session {session_id} is still {row['statuscode']}")
