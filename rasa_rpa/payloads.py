"""Parsing what robots send: the native event body, checked before anything is stored.

``{"id": "<unique>", "type": "job.progress", "data": {"progress": 40}}``.
A malformed body raises :class:`~rasa_rpa.errors.InvalidPayload` naming the
field, so the robot developer sees what to fix.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rasa_rpa.errors import InvalidPayload
from rasa_rpa.models import ROBOT_EVENT_TYPES, EventType, JobEvent

__all__ = ["EventBody", "load_json_object", "parse_event"]


class Button(BaseModel):
    """A quick reply button, as Rasa's bot events carry them."""

    model_config = ConfigDict(extra="allow")
    title: str
    payload: str


class EventBody(BaseModel):
    """The native callback body."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, min_length=1, max_length=200)
    type: EventType
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_data(self) -> EventBody:
        if self.type not in ROBOT_EVENT_TYPES:
            raise ValueError(f"robots cannot send {self.type.value}")
        check = _CHECKS.get(self.type)
        if check is not None:
            check(self.data)
        return self


def _progress(data: dict[str, Any]) -> None:
    value = data.get("progress")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("data.progress must be a number from 0 to 100")
        if not 0 <= value <= 100:
            raise ValueError("data.progress must be between 0 and 100")
    _optional_text(data, "message")


def _message(data: dict[str, Any]) -> None:
    if not any(
        data.get(k) for k in ("text", "image", "buttons", "attachment", "custom")
    ):
        raise ValueError("a message needs data.text, data.image or data.buttons")
    _optional_text(data, "text")
    _optional_text(data, "image")
    buttons = data.get("buttons")
    if buttons is not None:
        if not isinstance(buttons, list):
            raise ValueError("data.buttons must be a list of {title, payload}")
        for button in buttons:
            Button.model_validate(button)


def _slots(data: dict[str, Any]) -> None:
    slots = data.get("slots")
    if not isinstance(slots, dict) or not slots:
        raise ValueError('slots events need data.slots, e.g. {"slots": {"name": "v"}}')
    if not all(isinstance(k, str) and k for k in slots):
        raise ValueError("slot names must be non-empty strings")


def _outputs(data: dict[str, Any]) -> None:
    outputs = data.get("outputs")
    if outputs is not None and not isinstance(outputs, dict):
        raise ValueError("data.outputs must be an object")
    _optional_text(data, "message")


def _failure(data: dict[str, Any]) -> None:
    _optional_text(data, "error")
    _optional_text(data, "message")


def _optional_text(data: dict[str, Any], key: str) -> None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"data.{key} must be a string")


_CHECKS = {
    EventType.PROGRESS: _progress,
    EventType.MESSAGE: _message,
    EventType.SLOTS: _slots,
    EventType.SUCCEEDED: _outputs,
    EventType.FAILED: _failure,
    EventType.CANCELLED: _failure,
    EventType.STARTED: _progress,
}


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidPayload saying why not.

    Bodies too deeply nested for the parser and strings with lone surrogates
    (valid JSON escapes that no database can store) are refused here, before
    anything is recorded.
    """
    try:
        # Strict UTF-8 (what RFC 8259 requires): json.loads would also guess
        # UTF-16/32 and let encoded surrogates through.
        raw = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidPayload(
            "the body is not valid JSON (or is nested too deeply)",
            status=400,
            code="invalid_json",
        ) from None
    if not isinstance(raw, dict):
        raise InvalidPayload(
            "the body must be a JSON object", status=400, code="invalid_json"
        )
    # Strictly decoded UTF-8 holds no surrogates, so one can only come from a
    # \\uD800-\\uDFFF escape: look closer only when the body has one.
    escaped = b"\\ud" in body or b"\\uD" in body
    if escaped and not _encodable(raw):
        raise InvalidPayload(
            "the body contains text that is not valid Unicode (a lone surrogate)"
        )
    return raw


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_event(
    job_id: str, body: bytes, *, fallback_id: str | None = None
) -> JobEvent:
    """A JobEvent from a raw body; ``fallback_id`` is the ``webhook-id`` header."""
    raw = load_json_object(body)
    try:
        parsed = EventBody.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidPayload(f"{where}: {message}") from None
    event_id = parsed.id or fallback_id
    if not event_id:
        raise InvalidPayload('"id" is required: a unique id for this event')
    return JobEvent(event_id, job_id, parsed.type, parsed.data)
