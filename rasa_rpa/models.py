"""Jobs, their events and the state machine every provider is mapped onto.

``pending -> running -> succeeded | failed | cancelled | expired``. The last
four are final: nothing moves a final job, so a late or duplicated event is
recorded and ignored. Progress and chat messages do not change the state
(progress may move ``pending`` to ``running``: a robot that reports progress
has obviously started).
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from rasa_rpa.jobref import job_ref

__all__ = [
    "FINAL_STATES",
    "EventType",
    "Job",
    "JobEvent",
    "JobState",
    "OutboxMessage",
    "StoredFile",
    "new_job_id",
]

JsonDict = dict[str, Any]


class JobState(str, enum.Enum):
    """Where a job is in its life."""

    #: Recorded and handed to the provider, not yet reported as started.
    PENDING = "pending"
    #: The robot reported that it started (or reported progress).
    RUNNING = "running"
    #: Finished well; outputs are on the job.
    SUCCEEDED = "succeeded"
    #: Finished badly; ``error`` says why.
    FAILED = "failed"
    #: Stopped on request.
    CANCELLED = "cancelled"
    #: Ran past its timeout and was stopped by the reconciler.
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        """Whether no further event may change this state."""
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}
)


class EventType(str, enum.Enum):
    """What a robot (or the plugin itself) can say about a job."""

    STARTED = "job.started"
    PROGRESS = "job.progress"
    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"
    #: Internal only: the reconciler's verdict on an overdue job.
    EXPIRED = "job.expired"
    MESSAGE = "message"
    SLOTS = "slots"
    #: The robot asks the user something (see :mod:`rasa_rpa.questions`).
    QUESTION = "question"
    #: Internal only: the user answered a question in the chat.
    ANSWER = "answer"
    #: Internal only: the reconciler's verdict on a question nobody answered.
    QUESTION_EXPIRED = "question.expired"
    #: Internal only: a file the job's robot uploaded (``POST .../files``)
    #: is stored and the user gets a link to it. Not a state change.
    FILE = "file"

    @property
    def target_state(self) -> JobState | None:
        """The state this event moves a job to, if it moves it at all."""
        return _TARGETS.get(self)


_TARGETS = {
    EventType.STARTED: JobState.RUNNING,
    EventType.PROGRESS: JobState.RUNNING,
    EventType.SUCCEEDED: JobState.SUCCEEDED,
    EventType.FAILED: JobState.FAILED,
    EventType.CANCELLED: JobState.CANCELLED,
    EventType.EXPIRED: JobState.EXPIRED,
}

#: Event types a robot may send as JSON: expiries are the reconciler's alone,
#: answers come from the chat, and ``file`` is recorded by the upload route
#: once the file is stored.
ROBOT_EVENT_TYPES = frozenset(EventType) - {
    EventType.EXPIRED,
    EventType.ANSWER,
    EventType.QUESTION_EXPIRED,
    EventType.FILE,
}


def new_job_id() -> str:
    """A job id that is unguessable and safe in URLs and Robot variables."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """One run of an automation, started from one conversation."""

    id: str
    automation: str
    provider: str
    conversation_id: str
    state: JobState = JobState.PENDING
    output_channel: str | None = None
    inputs: JsonDict = field(default_factory=dict)
    outputs: JsonDict = field(default_factory=dict)
    progress: float | None = None
    message: str | None = None
    error: str | None = None
    provider_ref: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    deadline_at: float | None = None

    def evolve(self, **changes: Any) -> Job:
        """A copy with ``changes`` applied (jobs are immutable values).

        Copies the attributes instead of calling ``dataclasses.replace``: a
        progress event evolves a job on the callback hot path, and
        re-running the frozen ``__init__`` over 17 fields cost 2% of it.
        """
        unknown = changes.keys() - _JOB_FIELDS
        if unknown:
            raise TypeError(f"Job has no field(s) {sorted(unknown)}")
        copy = object.__new__(Job)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    def elapsed(self, now: float | None = None) -> float:
        """Seconds from creation to the end (or to now, if still going)."""
        end = self.finished_at or (time.time() if now is None else now)
        return max(0.0, end - self.created_at)

    def public(self) -> JsonDict:
        """The job as the jobs API shows it (no secrets live on a job)."""
        return {
            "id": self.id,
            "ref": job_ref(self.id),
            "automation": self.automation,
            "provider": self.provider,
            "conversation_id": self.conversation_id,
            "state": self.state.value,
            "progress": self.progress,
            "message": self.message,
            "error": self.error,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "deadline_at": self.deadline_at,
        }


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to a job, as received (robot) or decided (plugin).

    ``id`` is the sender's unique event id: the store keeps one event per
    ``(job_id, id)`` so a retried callback is acknowledged but not applied twice.
    ``notify`` is false for events the user has already been told about by
    the action that caused them (e.g. a start that failed).
    """

    id: str
    job_id: str
    type: EventType
    data: JsonDict = field(default_factory=dict)
    source: str = "robot"
    received_at: float = field(default_factory=time.time)
    notify: bool = True


@dataclass(frozen=True)
class OutboxMessage:
    """One call to make to Rasa, in order per conversation.

    ``kind`` is ``intent`` (payload ``{"name", "entities"}`` for
    ``trigger_intent``) or ``events`` (payload ``{"events": [...]}`` for
    ``tracker/events``).
    """

    conversation_id: str
    job_id: str
    kind: str
    payload: JsonDict
    seq: int | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    created_at: float = field(default_factory=time.time)
    #: Rasa may already have it (an attempt got no answer, or a claimer's lease
    #: ran out before it reported): check the tracker before sending. Stays
    #: set through later failures until a delivery settles it.
    in_doubt: bool = False

    @property
    def delivery_id(self) -> str:
        """The id Rasa's tracker keeps, to tell whether this message arrived."""
        return f"{self.job_id}:{self.seq}"

    def public(self) -> JsonDict:
        """The message as operators see it (admin API, ``rasa-rpa jobs show``)."""
        return {
            "seq": self.seq,
            "job_id": self.job_id,
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "payload": self.payload,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class StoredFile:
    """A file a job's robot sent, kept in the store for its user to download.

    The bytes live in the store too (in chunks, see the stores), so any
    replica serves them; ``sha256`` is checked when they are read back.
    ``upload_id`` is the uploader's id for the upload: a retried upload
    finds the file it already stored instead of storing it twice.
    """

    id: str
    job_id: str
    upload_id: str
    name: str
    title: str
    content_type: str
    size: int
    sha256: str
    created_at: float = field(default_factory=time.time)

    def public(self) -> JsonDict:
        """The file as operators see it (admin API, monitor); no bytes, no link."""
        return {
            "id": self.id,
            "job_id": self.job_id,
            "name": self.name,
            "title": self.title,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": self.created_at,
        }
