"""Parsing what robots send: the native event body, checked before anything is stored.

``{"id": "<unique>", "type": "job.progress", "data": {"progress": 40}}``.
A malformed body raises :class:`~rasa_rpa.errors.InvalidPayload` naming the
field, so the robot developer sees what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rasa_rpa import strictjson
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.models import ROBOT_EVENT_TYPES, EventType, JobEvent
from rasa_rpa.questions import check_question, check_question_id
from rasa_rpa.strictjson import NOT_FINITE

__all__ = ["EventBody", "check_data", "load_json_object", "parse_event"]


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
        _check(self.type, self.data, "data")
        return self


def check_data(
    event_type: EventType, data: dict[str, Any], *, where: str = "data"
) -> None:
    """Hold an event's data to the native API's rules, whichever way it came in.

    The Botpress route and vendor webhooks build their events' data
    themselves; checking it here means a message refused on the native route
    (``text`` not a string, ``buttons`` not a list of buttons, a NaN
    anywhere) is refused on every route. ``where`` names the data in the
    caller's own terms (``message`` for a Botpress body).

    Raises:
        InvalidPayload: 422, naming the field.
    """
    try:
        _check(event_type, data, where)
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from None


def _check(event_type: EventType, data: dict[str, Any], where: str) -> None:
    _finite(data, where)
    check = _CHECKS.get(event_type)
    if check is not None:
        check(data, where)


def _finite(value: Any, where: str) -> None:
    """A body parsed by strictjson has none; data built by a provider might."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number: {NOT_FINITE}")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            _finite(item, f"{where}[{n}]")


def _progress(data: dict[str, Any], where: str) -> None:
    value = data.get("progress")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}.progress must be a number from 0 to 100")
        if not 0 <= value <= 100:
            raise ValueError(f"{where}.progress must be between 0 and 100")
    _optional_text(data, "message", where)


def _message(data: dict[str, Any], where: str) -> None:
    if not any(
        data.get(k) for k in ("text", "image", "buttons", "attachment", "custom")
    ):
        raise ValueError(
            f"a message needs {where}.text, {where}.image or {where}.buttons"
        )
    _optional_text(data, "text", where)
    _optional_text(data, "image", where)
    buttons = data.get("buttons")
    if buttons is not None:
        if not isinstance(buttons, list):
            raise ValueError(f"{where}.buttons must be a list of {{title, payload}}")
        for n, button in enumerate(buttons):
            try:
                Button.model_validate(button)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                problem = f"{field}: {first['msg']}" if field else first["msg"]
                raise ValueError(f"{where}.buttons[{n}] {problem}") from None


def _slots(data: dict[str, Any], where: str) -> None:
    slots = data.get("slots")
    if not isinstance(slots, dict) or not slots:
        raise ValueError(
            f'slots events need {where}.slots, e.g. {{"slots": {{"name": "v"}}}}'
        )
    if not all(isinstance(k, str) and k for k in slots):
        raise ValueError("slot names must be non-empty strings")


def _outputs(data: dict[str, Any], where: str) -> None:
    outputs = data.get("outputs")
    if outputs is not None and not isinstance(outputs, dict):
        raise ValueError(f"{where}.outputs must be an object")
    _optional_text(data, "message", where)


def _failure(data: dict[str, Any], where: str) -> None:
    _optional_text(data, "error", where)
    _optional_text(data, "message", where)


def _optional_text(data: dict[str, Any], key: str, where: str) -> None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string")


_CHECKS: dict[EventType, Callable[[dict[str, Any], str], None]] = {
    EventType.PROGRESS: _progress,
    EventType.MESSAGE: _message,
    EventType.SLOTS: _slots,
    EventType.SUCCEEDED: _outputs,
    EventType.FAILED: _failure,
    EventType.CANCELLED: _failure,
    EventType.STARTED: _progress,
    EventType.QUESTION: check_question,
}


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidPayload saying why not.

    Bodies too deeply nested for the parser and strings with lone surrogates
    (valid JSON escapes that no database can store) are refused here, before
    anything is recorded.
    """
    try:
        # strictjson decodes strict UTF-8 (json.loads would also guess
        # UTF-16/32 and let encoded surrogates through). NaN, Infinity, 1e999
        # and a repeated key are a 422 of their own (not caught here:
        # InvalidPayload is no ValueError).
        raw = strictjson.loads(body)
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
    if parsed.type is EventType.QUESTION:
        try:
            check_question_id(event_id)
        except ValueError as exc:
            raise InvalidPayload(f"id: {exc}") from None
    return JobEvent(event_id, job_id, parsed.type, parsed.data)
