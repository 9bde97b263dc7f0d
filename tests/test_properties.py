"""Properties of the pure core, no server: parsing robots' bodies, the state machine.

``parse_event`` sees whatever a robot (or anyone holding its token) sends, so
it may answer nothing but an event or :class:`InvalidPayload` (a 400 or 422):
any other exception becomes a 500 and a robot retrying for minutes.
``apply_event`` folds events into a job: final states never move, states never
go back, and only applied events reach Rasa. Duplicate event ids are the
store's business (one event per job and id), so they are not covered here.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from rasa_rpa.errors import InvalidPayload
from rasa_rpa.http.payloads import parse_event
from rasa_rpa.lifecycle import FILE_INTENT, INTENT_PREFIX, apply_event
from rasa_rpa.models import (
    FINAL_STATES,
    ROBOT_EVENT_TYPES,
    EventType,
    Job,
    JobEvent,
    JobState,
    OutboxMessage,
)

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
JOB_ID = "job-1"

# -- what robots send ----------------------------------------------------------

#: Text as JSON can carry it: any code point, lone surrogates (``"\ud800"``) too.
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
TEXT = (
    st.text(max_size=12)
    | SURROGATES
    | st.tuples(st.text(max_size=4), SURROGATES).map("".join)
)
#: Text a well-behaved robot sends: no lone surrogates (those are refused).
CLEAN = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
TYPES = [t.value for t in EventType]
PROGRESS = (
    st.integers(-10, 110)
    | st.floats(-1, 101, allow_nan=False)
    | st.booleans()
    | st.none()
    | TEXT
)
BUTTONS = st.lists(st.fixed_dictionaries({"title": TEXT, "payload": TEXT}), max_size=3)
#: Mostly the keys the checks look at, with the right types more often than not.
DATA = st.fixed_dictionaries(
    {},
    optional={
        "progress": PROGRESS,
        "message": TEXT | JSON,
        "text": TEXT | JSON,
        "image": TEXT | JSON,
        "buttons": BUTTONS | JSON,
        "attachment": JSON,
        "custom": st.dictionaries(TEXT, JSON, max_size=3) | JSON,
        "slots": st.dictionaries(TEXT, JSON, max_size=3) | JSON,
        "outputs": st.dictionaries(TEXT, JSON, max_size=3) | JSON,
        "error": TEXT | JSON,
        "reason": TEXT | JSON,
    },
)
EVENT_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(min_size=1, max_size=220) | TEXT | JSON,
        "type": st.sampled_from(TYPES) | JSON,
        "data": DATA | JSON,
        "extra": JSON,
    },
)
FALLBACK_IDS = st.none() | st.text(max_size=20)


def event_data(
    kind: EventType, text: st.SearchStrategy[str] = TEXT
) -> st.SearchStrategy[dict[str, Any]]:
    """Data parse_event lets through for ``kind`` (and the plugin's own events)."""
    optional: dict[str, st.SearchStrategy[Any]] = {"message": st.none() | text}
    if kind in (EventType.STARTED, EventType.PROGRESS):
        optional["progress"] = st.none() | st.integers(0, 100) | st.floats(0, 100)
    elif kind is EventType.SUCCEEDED:
        optional["outputs"] = st.none() | st.dictionaries(text, JSON, max_size=3)
    elif kind in (EventType.FAILED, EventType.CANCELLED, EventType.EXPIRED):
        optional["error"] = st.none() | text
        optional["reason"] = text
    elif kind is EventType.MESSAGE:
        return st.fixed_dictionaries(
            {"text": text.filter(bool)},
            optional={"buttons": BUTTONS, "image": text},
        )
    elif kind is EventType.SLOTS:
        slots = st.dictionaries(text.filter(bool), JSON, min_size=1, max_size=3)
        return st.fixed_dictionaries({"slots": slots})
    elif kind is EventType.QUESTION:
        words = text.filter(lambda t: bool(t.strip()) and "\x00" not in t)
        return st.fixed_dictionaries(
            {"text": words, "choices": st.lists(words, min_size=1, max_size=3)},
            optional={"free_text": st.booleans(), "timeout": st.integers(1, 3600)},
        )
    elif kind in (EventType.ANSWER, EventType.QUESTION_EXPIRED):
        return st.fixed_dictionaries(
            {"question_id": st.sampled_from(["q1", "q2"]), "answer": text}
        )
    return st.fixed_dictionaries({}, optional=optional)


@st.composite
def robot_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies a well-behaved robot sends: mostly accepted."""
    kind = draw(st.sampled_from(sorted(ROBOT_EVENT_TYPES)))
    body: dict[str, Any] = {"type": kind.value, "data": draw(event_data(kind, CLEAN))}
    event_id = draw(
        st.none()
        | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200)
    )
    if event_id is not None:
        body["id"] = event_id
    return body


BODIES = robot_bodies() | EVENT_BODIES


def parse(body: bytes, fallback_id: str | None) -> JobEvent | None:
    """The event, or None for InvalidPayload; anything else fails the test."""
    try:
        return parse_event(JOB_ID, body, fallback_id=fallback_id)
    except InvalidPayload as exc:
        assert (exc.status, exc.code) in {(400, "invalid_json"), (422, "invalid_event")}
        assert exc.message
        return None


@given(body=st.binary(max_size=300), fallback_id=FALLBACK_IDS)
@PROPERTIES
def test_any_bytes_are_an_event_or_invalid_payload(body, fallback_id):
    parse(body, fallback_id)


@given(value=JSON | BODIES, fallback_id=FALLBACK_IDS)
@PROPERTIES
def test_any_json_is_an_event_or_invalid_payload(value, fallback_id):
    event = parse(json.dumps(value).encode(), fallback_id)
    if event is not None:
        assert isinstance(value, dict) and set(value) <= {"id", "type", "data"}


@given(raw=robot_bodies(), fallback_id=FALLBACK_IDS)
@PROPERTIES
def test_an_accepted_event_keeps_its_type_id_and_data(raw, fallback_id):
    body = json.dumps(raw).encode()
    event = parse(body, fallback_id)
    assume(event is not None)
    sent = json.loads(body)  # as the server reads it: a surrogate pair is one char
    assert event.job_id == JOB_ID
    assert event.type.value == sent["type"]
    assert event.type in ROBOT_EVENT_TYPES
    assert event.id == (sent.get("id") or fallback_id)
    assert 1 <= len(event.id)
    if sent.get("id"):
        assert len(sent["id"]) <= 200
    assert event.data == sent.get("data", {})
    progress = event.data.get("progress")
    if event.type in (EventType.STARTED, EventType.PROGRESS) and progress is not None:
        assert not isinstance(progress, bool) and 0 <= progress <= 100


@given(raw=robot_bodies(), fallback_id=FALLBACK_IDS)
@PROPERTIES
def test_an_accepted_event_holds_only_text_the_store_can_keep(raw, fallback_id):
    """Strings go to the database as UTF-8: a lone surrogate must be refused here.

    Otherwise it passes validation and fails in the store with a
    UnicodeEncodeError, a 500 the robot retries in vain.
    """
    event = parse(json.dumps(raw).encode(), fallback_id)
    assume(event is not None)
    event.id.encode("utf-8")
    json.dumps(event.data, ensure_ascii=False).encode("utf-8")


@given(depth=st.integers(1, 3000), shape=st.sampled_from(["[", '{"a":']))
@PROPERTIES
def test_deeply_nested_json_is_invalid_payload_not_a_crash(depth, shape):
    """A 256 KiB body nests far deeper than the JSON parser's recursion allows."""
    close = b"]" if shape == "[" else b"}"
    nested = shape.encode() * depth + b"1" + close * depth
    body = b'{"id": "e1", "type": "message", "data": {"text": "hi", "x": '
    parse(body + nested + b"}}", None)


# -- the state machine -----------------------------------------------------------

RANK = {JobState.PENDING: 0, JobState.RUNNING: 1}
FINAL_TYPES = {
    EventType.SUCCEEDED,
    EventType.FAILED,
    EventType.CANCELLED,
    EventType.EXPIRED,
}


def rank(state: JobState) -> int:
    return RANK.get(state, 2)


@st.composite
def events(draw: st.DrawFn) -> list[JobEvent]:
    count = draw(st.integers(0, 12))
    result = []
    now = 1000.0
    for n in range(count):
        kind = draw(st.sampled_from(list(EventType)))
        now += draw(st.floats(0, 10))
        result.append(
            JobEvent(
                f"e{n}",
                JOB_ID,
                kind,
                draw(event_data(kind, st.text(max_size=10))),
                received_at=now,
                notify=draw(st.booleans()),
            )
        )
    return result


def new_job() -> Job:
    return Job(
        id=JOB_ID,
        automation="orders",
        provider="local",
        conversation_id="c1",
        created_at=999.0,
        updated_at=999.0,
    )


def check_message(message: OutboxMessage, job: Job) -> None:
    assert message.job_id == job.id
    assert message.conversation_id == job.conversation_id
    assert message.kind in ("intent", "events")
    json.dumps(message.payload)  # it must travel to Rasa as JSON


@given(sequence=events())
@PROPERTIES
def test_a_job_only_moves_forward_and_ends_once(sequence):
    job = new_job()
    endings = 0
    for event in sequence:
        outcome = apply_event(job, event)
        after = outcome.job
        if event.type is EventType.FILE:
            # A file is news, whatever the state, and moves nothing.
            assert after is job and outcome.applied
            names = [m.payload["name"] for m in outcome.outbox]
            assert names == ([FILE_INTENT] if event.notify else [])
            continue
        if job.state.is_final:
            # A final state never changes, and nothing is applied or sent.
            assert after == job
            assert not outcome.applied
            assert outcome.outbox == []
        else:
            assert outcome.applied
        assert rank(after.state) >= rank(job.state)
        if not outcome.applied or not event.notify:
            assert outcome.outbox == []
        for message in outcome.outbox:
            check_message(message, job)
        assert after.progress is None or 0 <= after.progress <= 100
        if event.type.target_state is None:  # messages, slots, questions
            assert after.state is job.state
        if job.started_at is not None:
            assert after.started_at == job.started_at
        if after.state.is_final and not job.state.is_final:
            endings += 1
            assert after.state is event.type.target_state
            assert after.finished_at == event.received_at
            if event.notify:
                names = [m.payload["name"] for m in outcome.outbox]
                assert names == [INTENT_PREFIX + after.state.value]
        assert after.state.is_final == (after.finished_at is not None)
        job = after
    ended = any(e.type in FINAL_TYPES for e in sequence)
    assert endings == (1 if ended else 0)
    assert job.state.is_final == ended


@given(sequence=events(), state=st.sampled_from(sorted(FINAL_STATES)))
@PROPERTIES
def test_nothing_moves_a_job_that_has_ended(sequence, state):
    ended = new_job().evolve(state=state, finished_at=999.5)
    for event in sequence:
        outcome = apply_event(ended, event)
        assert outcome.job is ended
        if event.type is EventType.FILE:
            continue  # still announced (tests/test_lifecycle.py), never a move
        assert not outcome.applied
        assert outcome.outbox == []
