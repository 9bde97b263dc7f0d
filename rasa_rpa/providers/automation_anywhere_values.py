"""Automation 360 values: typed bot variables, activity statuses, token expiry.

The pure half of the Automation Anywhere provider: no HTTP here, so the
provider module keeps the calls and this one the Control Room's formats
(the deploy callback's body included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import jwt

from rasa_rpa import strictjson
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.logs import clip
from rasa_rpa.models import EventType
from rasa_rpa.providers.base import WebhookEvent

__all__ = [
    "FINAL_FAILURES",
    "STATUS_EVENTS",
    "TOKEN_LIFETIME",
    "WAITING_STATUSES",
    "callback_events",
    "event_for",
    "from_bot_value",
    "outputs_of",
    "to_bot_input",
    "to_bot_value",
    "token_expiry",
]

log = logging.getLogger("rasa_rpa.providers.automation_anywhere")

#: Control Room tokens live 20 minutes (Authentication API docs); used only
#: for a token whose ``exp`` claim cannot be read.
TOKEN_LIFETIME = 20 * 60

#: Activity status -> the event it means; statuses not listed mean "no news".
STATUS_EVENTS: dict[str, EventType] = {
    "RUNNING": EventType.STARTED,
    "RUN_PAUSED": EventType.STARTED,
    "UPDATE": EventType.STARTED,
    "COMPLETED": EventType.SUCCEEDED,
    "DEPLOY_FAILED": EventType.FAILED,
    "RUN_FAILED": EventType.FAILED,
    "RUN_TIMED_OUT": EventType.FAILED,
    "RUN_ABORTED": EventType.CANCELLED,
}
#: Final statuses other than COMPLETED: nothing left to stop.
FINAL_FAILURES = ("DEPLOY_FAILED", "RUN_FAILED", "RUN_TIMED_OUT", "RUN_ABORTED")
#: Statuses that say the deployment has not run yet (QUEUED and friends).
WAITING_STATUSES = frozenset({"QUEUED", "PENDING_EXECUTION", "DEPLOYED", "UNKNOWN"})


def to_bot_value(value: Any) -> dict[str, Any]:
    """One Python value as a typed Control Room variable (numbers are strings)."""
    if value is None:
        return {"type": "STRING", "string": ""}
    if isinstance(value, bool):  # before int: bool is an int
        return {"type": "BOOLEAN", "boolean": "true" if value else "false"}
    if isinstance(value, (int, float)):
        return {"type": "NUMBER", "number": str(value)}
    if isinstance(value, (list, tuple)):
        return {"type": "LIST", "list": [to_bot_value(v) for v in value]}
    if isinstance(value, dict):
        return {
            "type": "DICTIONARY",
            "dictionary": [
                {"key": str(k), "value": to_bot_value(v)} for k, v in value.items()
            ],
        }
    return {"type": "STRING", "string": str(value)}


def to_bot_input(inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``botInput`` for a deployment: every input as a typed variable."""
    return {key: to_bot_value(value) for key, value in inputs.items()}


def _number(text: Any) -> Any:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    try:
        number = float(str(text))
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in str(text) else number


def from_bot_value(value: Any) -> Any:
    """A typed Control Room variable back as Python; unknown shapes pass through."""
    if not isinstance(value, dict) or "type" not in value:
        return value
    kind = str(value["type"]).upper()
    if kind == "NUMBER":
        return _number(value.get("number"))
    if kind == "BOOLEAN":
        flag = value.get("boolean")
        return flag if isinstance(flag, bool) else str(flag).lower() == "true"
    if kind == "LIST":
        return [from_bot_value(v) for v in value.get("list") or []]
    if kind == "DICTIONARY":
        entries = value.get("dictionary") or []
        return {str(e.get("key")): from_bot_value(e.get("value")) for e in entries}
    if kind == "STRING":
        return value.get("string", "")
    return value.get(kind.lower(), value)


def outputs_of(activity: Mapping[str, Any]) -> dict[str, Any]:
    """The bot's output variables from an activity or callback body."""
    variables = activity.get("botOutVariables") or {}
    values = variables.get("values") if isinstance(variables, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): from_bot_value(v) for k, v in values.items()}


def event_for(
    status: str, activity: Mapping[str, Any]
) -> tuple[EventType, dict[str, Any]] | None:
    """The event type and data an activity status means, None for "no news"."""
    kind = STATUS_EVENTS.get(status)
    if kind is None:
        if status not in WAITING_STATUSES:
            log.info("automation anywhere: ignoring unknown status %s", clip(status))
        return None
    if kind is EventType.SUCCEEDED:
        return kind, {"outputs": outputs_of(activity)}
    if kind is EventType.FAILED:
        reason = activity.get("message") or activity.get("progressMessage")
        return kind, {"error": str(reason) if reason else f"the bot ended {status}"}
    return kind, {}


def token_expiry(token: str) -> float:
    """When ``token`` stops working: its ``exp`` claim, read without verifying.

    Only the Control Room can verify its signature; the claim is read to
    renew in time rather than wait for a 401.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        # GUESS: an opaque token lives the documented 20 minutes.
        return time.time() + TOKEN_LIFETIME


def callback_events(body: bytes) -> list[WebhookEvent]:
    """The deploy callback's body as events (pure: the caller is verified)."""
    try:
        raw = strictjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload(
            "the body is not valid JSON", status=400, code="invalid_json"
        ) from None
    if not isinstance(raw, dict):
        raise InvalidPayload("the body must be a JSON object")
    deployment, status = raw.get("deploymentId"), raw.get("status")
    if not deployment or not status:
        raise InvalidPayload('"deploymentId" and "status" are required')
    found = event_for(str(status), raw)
    if found is None:
        return []
    kind, data = found
    return [
        WebhookEvent(
            event_id=f"aa:{deployment}:{status}",
            type=kind,
            data=data,
            provider_ref=str(deployment),
            # Outputs are the point of the job: complete_webhook asks for
            # them rather than record a success without them (the event
            # id would then be taken).
            incomplete=kind is EventType.SUCCEEDED and "botOutVariables" not in raw,
        )
    ]
