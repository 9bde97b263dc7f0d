"""The fake Control Room's records and formats: deployments, typed values, errors.

Kept apart from :mod:`rasa_rpa.fakes.automation_anywhere` (the server) so
each stays small; nothing here talks HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FINAL",
    "MANAGE_ACTIONS",
    "Deployment",
    "error",
    "manage_ids",
    "typed",
    "untyped",
]

FINAL = frozenset({"COMPLETED", "RUN_FAILED", "RUN_ABORTED"})
#: What ``/v3/activity/manage`` can be asked to do, one key per request.
MANAGE_ACTIONS = frozenset(
    {"stop_executions", "pause_executions", "resume_executions", "archive_executions"}
)


@dataclass
class Deployment:
    """One deployed bot run, as the fake's activity record keeps it."""

    id: str
    activity_id: str
    bot_id: int
    bot_name: str
    automation_name: str
    inputs: dict[str, Any]
    callback: dict[str, Any]
    status: str = "QUEUED"
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    stop: threading.Event = field(default_factory=threading.Event)
    #: When the deployment was made (time.monotonic()).
    created: float = field(default_factory=time.monotonic)

    def activity(self, with_outputs: bool = True) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.activity_id,
            "deploymentId": self.id,
            "automationName": self.automation_name,
            "fileId": self.bot_id,
            "fileName": self.bot_name,
            "status": self.status,
            "message": self.message,
        }
        if with_outputs:
            item["botOutVariables"] = {"values": dict(self.outputs)}
        return item


def typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "BOOLEAN", "boolean": "true" if value else "false"}
    if isinstance(value, (int, float)):
        return {"type": "NUMBER", "number": str(value)}
    return {"type": "STRING", "string": "" if value is None else str(value)}


def untyped(value: dict[str, Any]) -> Any:
    kind = str(value.get("type")).upper()
    if kind == "NUMBER":
        number = float(value.get("number") or 0)
        return int(number) if number.is_integer() else number
    if kind == "BOOLEAN":
        return str(value.get("boolean")).lower() == "true"
    return value.get(kind.lower())


def manage_ids(body: Any) -> list[str] | None:
    """The execution ids of a well-formed manage body, None for any other."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    action, target = next(iter(body.items()))
    if action not in MANAGE_ACTIONS or not isinstance(target, dict):
        return None
    ids = target.get("execution_ids")
    if set(target) != {"execution_ids"} or not isinstance(ids, list) or not ids:
        return None
    if not all(isinstance(i, str) and i for i in ids):
        return None
    return list(ids)


def error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "details": message, "message": message}
