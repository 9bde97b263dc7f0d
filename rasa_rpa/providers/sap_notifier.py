"""SAP API notifiers and trigger answers: the formats, without the HTTP.

Notifier bodies come as SAP's default body or as a user's template, so the
status, the failure details and a 422's missing inputs are read from every
shape SAP (or a template) gives them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from rasa_rpa import strictjson
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.models import EventType

__all__ = [
    "NOTIFIER_EVENTS",
    "STATUS_EVENTS",
    "STATUS_FIELDS",
    "WAITING_STATUSES",
    "error_details",
    "event_data",
    "invocation_context",
    "missing_inputs",
    "notifier_event",
    "notifier_payload",
]

#: Notifier event names (any case) and what each means for the job. Expired
#: is a failure, not a cancellation: nobody asked for it to stop, and the user
#: should hear that the automation did not finish.
NOTIFIER_EVENTS: dict[str, tuple[str, EventType]] = {
    "start": ("Start", EventType.STARTED),
    "success": ("Success", EventType.SUCCEEDED),
    "failure": ("Failure", EventType.FAILED),
    "cancel": ("Cancel", EventType.CANCELLED),
    "expired": ("Expired", EventType.FAILED),
}
#: Job statuses (any case) -> the notifier event they mean. GUESS: SAP
#: documents the notifier events, not the default body's status values; these
#: are the statuses Control Tower shows for a job, in both spellings.
STATUS_EVENTS: dict[str, str] = {
    "running": "start",
    "started": "start",
    "completed": "success",
    "successful": "success",
    "succeeded": "success",
    "failed": "failure",
    "error": "failure",
    "canceled": "cancel",
    "cancelled": "cancel",
}
#: Statuses that bring no news: the job has not run yet.
WAITING_STATUSES = frozenset({"pending", "ready", "queued", "scheduled"})
#: Where a notifier body may carry the status. ``event`` is rasa-rpa's own
#: template; GUESS: ``status`` is SAP's default body, the others are spellings
#: seen in SAP's job APIs.
STATUS_FIELDS = ("event", "status", "jobStatus", "state")


def missing_inputs(response: httpx.Response) -> list[str]:
    """Input names a 422 answer points at (``details[].target``), if any.

    GUESS: SAP documents only that a 422 means the inputs do not match the
    trigger's; its API errors carry ``{"error": {"message", "details"}}``.
    """
    try:
        body = response.json()
    except ValueError:
        return []
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    names: list[str] = []
    for item in details if isinstance(details, list) else []:
        target = item.get("target") if isinstance(item, dict) else None
        if isinstance(target, str) and target.strip("/."):
            name = target.replace("/", ".").strip(".")
            names.append(name.removeprefix("input."))
    return names


def notifier_event(raw: str | None) -> tuple[str, EventType] | None:
    """The notifier event a status or event name means, None if unknown."""
    if not raw:
        return None
    key = raw.strip().lower()
    return NOTIFIER_EVENTS.get(STATUS_EVENTS.get(key, key))


def error_details(payload: dict[str, Any]) -> str:
    """The failure reason, whatever shape SAP or a template gave the details."""
    error = payload.get("error")
    if isinstance(error, dict) and ("details" in error or "message" in error):
        error = error.get("details") or error.get("message")
    if error is None or error == "":
        error = payload.get("errorDetails")
    reason = _reason(error)
    return reason or "the SAP automation failed"


def _reason(details: Any, depth: int = 0) -> str:
    """Readable text from failure details: text, JSON text, object or list."""
    if depth > 3 or details is None:
        return ""
    if isinstance(details, str):
        text = details.strip()
        if text[:1] in "{[":
            try:
                parsed = json.loads(text)
            except ValueError:
                return text
            return _reason(parsed, depth + 1) or text
        return text
    if isinstance(details, dict):
        for key in ("message", "details", "detail", "description", "text"):
            found = _reason(details.get(key), depth + 1)
            if found:
                return found
        return json.dumps(details, sort_keys=True)
    if isinstance(details, list):
        parts = [_reason(item, depth + 1) for item in details]
        return "; ".join(p for p in parts if p)
    return json.dumps(details)


def notifier_payload(body: bytes) -> dict[str, Any]:
    """The notifier body as an object (400 or 422 when it is none)."""
    try:
        payload = strictjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload(
            "the notifier body is not valid JSON", status=400, code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidPayload("the notifier body must be a JSON object")
    return payload


def invocation_context(payload: dict[str, Any]) -> dict[str, Any]:
    """The echoed ``invocationContext`` (422 when it is not the object sent)."""
    context = payload.get("invocationContext")
    if isinstance(context, str):  # templated as a string: "${...}"
        try:
            context = strictjson.loads(context)
        except ValueError:
            context = None
    if not isinstance(context, dict):
        raise InvalidPayload(
            "invocationContext must be the object the trigger was called with"
        )
    return context


def event_data(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The event's data from a notifier payload (outputs or error text)."""
    if name == "Success":
        output = payload.get("output")
        if isinstance(output, str):  # templated as a JSON string
            try:
                output = strictjson.loads(output) if output.strip() else {}
            except ValueError:
                raise InvalidPayload("output must be a JSON object") from None
        if output is None:
            output = {}
        if not isinstance(output, dict):
            raise InvalidPayload("output must be a JSON object")
        return {"outputs": output}
    if name == "Failure":
        return {"error": error_details(payload)}
    if name == "Expired":
        return {"error": "the SAP job expired"}
    if name == "Cancel":
        return {"message": "the SAP job was cancelled"}
    return {}
