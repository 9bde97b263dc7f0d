"""Robots' bodies are checked field by field before anything is stored."""

from __future__ import annotations

import json

import pytest

from rasa_rpa.errors import InvalidPayload
from rasa_rpa.http.payloads import parse_event
from rasa_rpa.models import EventType


def parse(body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_event("j1", raw)


def test_valid_progress():
    event = parse({"id": "e1", "type": "job.progress", "data": {"progress": 40}})
    assert event.type is EventType.PROGRESS
    assert event.data == {"progress": 40}


def test_webhook_id_is_used_when_body_has_no_id():
    event = parse_event("j1", b'{"type": "job.started"}', fallback_id="wh-1")
    assert event.id == "wh-1"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        ({"id": "e1", "type": "job.exploded"}, 422, "type"),
        ({"id": "e1", "type": "job.expired"}, 422, "robots cannot send"),
        (
            {"id": "e1", "type": "job.progress", "data": {"progress": 140}},
            422,
            "between 0 and 100",
        ),
        (
            {"id": "e1", "type": "job.progress", "data": {"progress": "half"}},
            422,
            "number",
        ),
        ({"id": "e1", "type": "message", "data": {}}, 422, "data.text"),
        (
            {"id": "e1", "type": "message", "data": {"text": "x", "buttons": "no"}},
            422,
            "buttons",
        ),
        ({"id": "e1", "type": "slots", "data": {}}, 422, "data.slots"),
        (
            {"id": "e1", "type": "job.succeeded", "data": {"outputs": [1]}},
            422,
            "outputs",
        ),
        ({"type": "job.started"}, 422, '"id" is required'),
        # A lone surrogate, escaped (either case) or encoded in the bytes, or a
        # body in UTF-16 (JSON on the wire is UTF-8): never reaches a store.
        (b'{"id": "e1", "type": "job.started", "x": "\\udc80"}', 422, "surrogate"),
        (b'{"id": "e1", "type": "job.started", "x": "\\uDC80"}', 422, "surrogate"),
        (b'{"id": "e1", "type": "job.started", "x": "\xed\xb2\x80"}', 400, "JSON"),
        ('{"id": "e1", "type": "job.started"}'.encode("utf-16"), 400, "JSON"),
        ({"id": "e1", "type": "job.started", "extra": 1}, 422, "extra"),
        # NaN and Infinity are not JSON (Python's json.dumps emits them by
        # default); 1e999 overflows to infinity. Refused anywhere in the body.
        (
            b'{"id": "e1", "type": "job.progress", "data": {"progress": NaN}}',
            422,
            "finite",
        ),
        (
            b'{"id": "e1", "type": "message", "data": {"text": "hi", "x": [Infinity]}}',
            422,
            "finite",
        ),
        (
            b'{"id": "e1", "type": "job.succeeded", '
            b'"data": {"outputs": {"r": -Infinity}}}',
            422,
            "finite",
        ),
        (
            b'{"id": "e1", "type": "job.succeeded", "data": {"outputs": {"r": 1e999}}}',
            422,
            "finite",
        ),
    ],
)
def test_bad_bodies_say_what_is_wrong(body, status, fragment):
    with pytest.raises(InvalidPayload) as caught:
        parse(body)
    assert caught.value.status == status
    assert fragment in caught.value.message


def test_message_data_is_checked_the_same_way_for_every_route():
    """What the Botpress and vendor routes use: the native route's own rules."""
    from rasa_rpa.http.payloads import check_data

    check_data(
        EventType.MESSAGE, {"text": "hi", "buttons": [{"title": "a", "payload": "/a"}]}
    )
    for data, fragment in (
        ({"text": {"nested": "object"}}, "text must be a string"),
        ({"text": "hi", "buttons": "yes"}, "buttons must be a list"),
        ({"text": "hi", "buttons": [{"title": "a"}]}, "payload"),
        ({"text": "hi", "x": float("nan")}, "finite"),
    ):
        with pytest.raises(InvalidPayload) as caught:
            check_data(EventType.MESSAGE, data, where="message")
        assert caught.value.status == 422
        assert fragment in caught.value.message
        assert caught.value.message.startswith("message")
