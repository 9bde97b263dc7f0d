"""Robot Framework listener that reports a job's life to the bot.

Used by the local provider (``--listener rasa_rpa_robot.listener.JobListener``)
and usable by any robot run with the ``RASA_RPA_*`` environment set:

* the top-level suite starting sends ``job.started``;
* with several tasks, each finished task sends ``job.progress``;
* the top-level suite ending sends ``job.succeeded`` with the outputs set by
  ``Set Job Output``, or ``job.failed`` with the first failing task's message
  (the failing keyword's message, as Robot Framework reports it).

A deliberate ``Fail    Unknown customer 'X'`` is meant for the user and is
the job's error as it stands. A Python exception's text is not: Robot
Framework reports it as ``FileNotFoundError: [Errno 2] ... '/srv/...'``,
with paths and internals the user must not read. Then the error is
:data:`UNEXPECTED` and the raw message travels as ``detail``, which the
operator reads in the job's event log and the monitor.
"""

from __future__ import annotations

import builtins
import re
import sys
from typing import Any

from rasa_rpa_robot.client import RobotClient, current_client

__all__ = ["UNEXPECTED", "JobListener", "is_exception_text"]

#: What the user reads when a robot stopped on an exception it did not expect.
UNEXPECTED = "the robot stopped on an unexpected error"
#: Robot Framework names a non-generic exception's class before its text
#: (``KeyError: 'x'``, or the bare name when the text is empty), also inside
#: "Several failures occurred" lists (``1) ...``) and setup/teardown reports.
_LEADING_NAME = re.compile(r"^(?:\*HTML\* )?(?:\d+\) )?([A-Za-z_]\w*)(?::\s|$)", re.M)


def is_exception_text(message: str) -> bool:
    """Whether ``message`` is (or contains) a Python exception as Robot
    Framework reports it, rather than words a robot chose for the user."""
    return any(_names_exception(m.group(1)) for m in _LEADING_NAME.finditer(message))


def _names_exception(name: str) -> bool:
    """Whether ``name`` is an exception class's: by convention, or because a
    loaded module (the library that raised it is loaded) defines one."""
    if name.endswith(("Error", "Exception")):
        return True
    for module in (builtins, *list(sys.modules.values())):
        try:
            candidate = getattr(module, name, None)
        except Exception:  # a lazy module may fail to load its attribute
            continue
        if isinstance(candidate, type) and issubclass(candidate, BaseException):
            return True
    return False


class JobListener:
    """Listener API v3."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self) -> None:
        self._client: RobotClient | None = current_client()
        self._depth = 0
        self._total = 0
        self._done = 0
        self._failure: str | None = None

    def start_suite(self, data: Any, result: Any) -> None:
        self._depth += 1
        if self._depth == 1:
            self._total = data.test_count
            self._send("job.started", {"message": f"Started {data.name}"})

    def end_test(self, data: Any, result: Any) -> None:
        self._done += 1
        if result.status == "FAIL" and self._failure is None:
            self._failure = result.message or f"task '{data.name}' failed"
        if self._total > 1 and self._done < self._total:
            percent = round(100 * self._done / self._total)
            self._send(
                "job.progress",
                {"progress": percent, "message": f"Finished {data.name}"},
            )

    def end_suite(self, data: Any, result: Any) -> None:
        self._depth -= 1
        if self._depth:
            return
        if result.status == "FAIL" or self._failure:
            error = self._failure or result.message or "the robot failed"
            if is_exception_text(error):
                self._send("job.failed", {"error": UNEXPECTED, "detail": error})
            else:
                self._send("job.failed", {"error": error})
        else:
            outputs = self._client.outputs if self._client else {}
            self._send(
                "job.succeeded", {"outputs": outputs, "message": result.message or None}
            )

    def _send(self, event_type: str, data: dict[str, Any]) -> None:
        if self._client is not None:
            self._client.send(event_type, data)
