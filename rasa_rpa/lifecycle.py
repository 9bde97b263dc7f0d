"""What an event does to a job, and what the user is told about it.

:func:`apply_event` is pure: the store calls it inside the transaction that
records the event, so the job update and the outbox rows it produces commit
together or not at all. That is what makes "acknowledged" mean "will be
delivered".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rasa_rpa.models import EventType, Job, JobEvent, JobState, OutboxMessage
from rasa_rpa.variables import file_variables, job_variables

__all__ = [
    "FILE_INTENT",
    "FREE_TEXT_QUESTION_INTENT",
    "QUESTION_EXPIRED_INTENT",
    "QUESTION_INTENT",
    "Links",
    "Outcome",
    "Planner",
    "apply_event",
    "intent_for",
    "question_entities",
    "status_entities",
    "with_handover",
]

#: Prefix of the intents Rasa receives; Rasa's convention for external events.
INTENT_PREFIX = "EXTERNAL_rpa_job_"
#: A robot's question the user answers with a button.
QUESTION_INTENT = INTENT_PREFIX + "question"
#: A robot's question the user may also answer in words: the bot's rules
#: start a form whose one slot takes the user's next message.
FREE_TEXT_QUESTION_INTENT = INTENT_PREFIX + "question_free_text"
#: Nobody answered a question in time.
QUESTION_EXPIRED_INTENT = INTENT_PREFIX + "question_expired"
#: The intent a file the robot sent arrives with (``utter_rpa_job_file``).
FILE_INTENT = INTENT_PREFIX + "file"
#: ``links(file_id, now)``: the download link of a file, good from ``now``.
Links = Callable[[str, float], str]


@dataclass(frozen=True)
class Outcome:
    """The job after an event, whether the event changed it, and what to send."""

    job: Job
    applied: bool
    outbox: list[OutboxMessage]


def apply_event(
    job: Job,
    event: JobEvent,
    titles: Mapping[str, str] | None = None,
    links: Links | None = None,
) -> Outcome:
    """Fold ``event`` into ``job``; final jobs never move.

    ``titles`` (automation key to its rpa.yml ``description``) names the
    automation to the user in the entities sent along; ``links`` makes the
    download link of a file the robot sent.
    """
    if event.type is EventType.FILE:
        # Not a change of state, so a final job takes it too: a file sent
        # as the job ends (or uploaded for it once it succeeded) still counts.
        return Outcome(
            job, True, _maybe(event, [_file_news(job, event, titles, links)])
        )
    if job.state.is_final:
        return Outcome(job, applied=False, outbox=[])
    now = event.received_at
    if event.type is EventType.MESSAGE:
        return Outcome(job, True, _maybe(event, _message_events(job, event.data)))
    if event.type is EventType.SLOTS:
        return Outcome(job, True, _maybe(event, _slot_events(job, event.data)))
    if event.type in _QUESTION_NEWS:
        return Outcome(job, True, _maybe(event, [_question(job, event, titles)]))
    if event.type is EventType.ANSWER:
        # The answering action tells the user itself; the robot polls for it.
        return Outcome(job, True, [])

    target = event.type.target_state
    assert target is not None  # every other type moves the state
    changes: dict[str, Any] = {"state": target, "updated_at": now}
    data = event.data
    if job.started_at is None:
        changes["started_at"] = now
    if "message" in data and data["message"] is not None:
        changes["message"] = str(data["message"])
    if event.type is EventType.PROGRESS and data.get("progress") is not None:
        changes["progress"] = float(data["progress"])
    if event.type is EventType.SUCCEEDED:
        changes["progress"] = 100.0
        changes["outputs"] = {**job.outputs, **(data.get("outputs") or {})}
    if event.type in (EventType.FAILED, EventType.EXPIRED, EventType.CANCELLED):
        reason = data.get("error") or data.get("reason")
        if reason:
            changes["error"] = str(reason)
    if target.is_final:
        changes["finished_at"] = now

    updated = job.evolve(**changes)
    was_running = job.state is JobState.RUNNING
    if event.type is EventType.STARTED and was_running:
        # A second "started" (a robot retrying with a new id) says nothing new.
        return Outcome(updated, True, [])
    intent = intent_for(event.type)
    message = OutboxMessage(
        conversation_id=job.conversation_id,
        job_id=job.id,
        kind="intent",
        payload={"name": intent, "entities": status_entities(updated, titles, now)},
        created_at=now,
    )
    return Outcome(updated, True, _maybe(event, [message]))


Planner = Callable[[Job, JobEvent], Outcome]


def with_handover(
    plan: Planner,
    intent: str,
    states: frozenset[JobState],
    opted_out: frozenset[str],
    titles: Mapping[str, str] | None = None,
) -> Planner:
    """``plan``, plus a hand-over intent when a job ends in one of ``states``.

    The hand-over is queued in the same transaction as the failure, right
    after it, so the user first hears what went wrong, then gets a human.
    """

    def planned(job: Job, event: JobEvent) -> Outcome:
        outcome = plan(job, event)
        ended = outcome.job.state
        if (
            not outcome.applied
            or ended is job.state
            or ended not in states
            or not event.notify
            or job.automation in opted_out
        ):
            return outcome
        handover = OutboxMessage(
            conversation_id=job.conversation_id,
            job_id=job.id,
            kind="intent",
            payload={
                "name": intent,
                "entities": status_entities(outcome.job, titles, event.received_at),
            },
            created_at=event.received_at,
        )
        return Outcome(outcome.job, True, [*outcome.outbox, handover])

    return planned


def intent_for(event_type: EventType) -> str:
    """The EXTERNAL_ intent Rasa receives for a status event."""
    if event_type is EventType.PROGRESS:
        return INTENT_PREFIX + "progress"
    target = event_type.target_state
    assert target is not None
    return INTENT_PREFIX + target.value


def status_entities(
    job: Job, titles: Mapping[str, str] | None = None, now: float | None = None
) -> dict[str, Any]:
    """Entities sent with a status intent; the bot's slots pick up what they map.

    The response variables of :mod:`rasa_rpa.variables`, the job id (for the
    bot's own actions, never for its words), and the outputs flattened in as
    their own entities (``order_count``...) so responses can use them as
    slots directly.
    """
    entities: dict[str, Any] = {
        "rpa_job_id": job.id,
        **job_variables(job, titles, now),
    }
    for key, value in job.outputs.items():
        entities.setdefault(str(key), _scalar(value))
    return entities


_QUESTION_NEWS = frozenset({EventType.QUESTION, EventType.QUESTION_EXPIRED})


def question_entities(
    job: Job,
    question_id: str,
    text: str,
    titles: Mapping[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Entities sent with the question intents: the job's, and the question's."""
    return {
        **status_entities(job, titles, now),
        "rpa_question": text,
        "rpa_question_id": question_id,
    }


def _question(
    job: Job, event: JobEvent, titles: Mapping[str, str] | None
) -> OutboxMessage:
    """The intent that asks a question, or tells the user it expired.

    A question's id is its event's id; the expiry names it in its data.
    """
    data = event.data
    if event.type is EventType.QUESTION:
        name = FREE_TEXT_QUESTION_INTENT if data.get("free_text") else QUESTION_INTENT
        question_id, text = event.id, str(data.get("text") or "")
    else:
        name = QUESTION_EXPIRED_INTENT
        question_id = str(data.get("question_id") or "")
        text = str(data.get("question") or "")
    entities = question_entities(job, question_id, text, titles, event.received_at)
    return OutboxMessage(
        conversation_id=job.conversation_id,
        job_id=job.id,
        kind="intent",
        payload={"name": name, "entities": entities},
        created_at=event.received_at,
    )


def _file_news(
    job: Job, event: JobEvent, titles: Mapping[str, str] | None, links: Links | None
) -> OutboxMessage:
    """``EXTERNAL_rpa_job_file`` with the job's variables and the file's.

    The link is minted here, from the time the file arrived: the same
    event always makes the same message.
    """
    file_id = event.data.get("file_id")
    url = links(str(file_id), event.received_at) if links and file_id else None
    entities = {
        **status_entities(job, titles, event.received_at),
        **file_variables(event.data, url),
    }
    return OutboxMessage(
        conversation_id=job.conversation_id,
        job_id=job.id,
        kind="intent",
        payload={"name": FILE_INTENT, "entities": entities},
        created_at=event.received_at,
    )


def _message_events(job: Job, data: dict[str, Any]) -> list[OutboxMessage]:
    bot: dict[str, Any] = {"event": "bot", "text": data.get("text")}
    extra = {
        k: data[k] for k in ("buttons", "image", "attachment", "custom") if k in data
    }
    if extra:
        bot["data"] = extra
    bot["metadata"] = {"rpa_job_id": job.id}
    return [_events_message(job, [bot], side_effects=True)]


def _slot_events(job: Job, data: dict[str, Any]) -> list[OutboxMessage]:
    slots = data.get("slots", data)
    events = [{"event": "slot", "name": k, "value": v} for k, v in slots.items()]
    return [_events_message(job, events, side_effects=False)]


def _events_message(
    job: Job, events: list[dict[str, Any]], *, side_effects: bool
) -> OutboxMessage:
    return OutboxMessage(
        conversation_id=job.conversation_id,
        job_id=job.id,
        kind="events",
        payload={"events": events, "execute_side_effects": side_effects},
    )


def _maybe(event: JobEvent, messages: list[OutboxMessage]) -> list[OutboxMessage]:
    return messages if event.notify else []


def _scalar(value: Any) -> Any:
    """Rasa entities hold scalars well; anything nested travels as JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, separators=(",", ":"))
