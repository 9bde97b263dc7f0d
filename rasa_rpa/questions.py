"""Questions a robot asks the user in the chat, and the answers that go back.

A robot sends a ``question`` event (``{"id": "q-1", "type": "question",
"data": {"text": "Which customer?", "choices": [...], "free_text": false,
"timeout": 600}}``); the event's id is the question's id. The store keeps
the question beside the job, the bot asks it (buttons for the choices), and
the robot long-polls ``GET /rpa/v1/jobs/{job_id}/questions/{id}`` for the
answer. The rules for answers, which the store enforces in the transaction
that records them:

* only the job's own conversation answers, and only while the question is
  open: not answered, not past its timeout, the job not ended;
* the first answer wins; later ones are recorded (for the timeline) as
  ignored and change nothing;
* an answer is committed before the user is told it was passed on.

This module is the domain part, pure: what a question is, what a robot may
send, what an answer stands for. It knows no HTTP and no store.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any

from rasa_rpa.cleantext import clean
from rasa_rpa.configvalues import parse_duration

__all__ = [
    "ANSWERING_SLOT",
    "ANSWER_INTENT",
    "ANSWER_SLOT",
    "CHOICE_ENTITY",
    "DEFAULT_TIMEOUT",
    "FORM",
    "MAX_CHOICES",
    "MAX_TIMEOUT",
    "MIN_TIMEOUT",
    "QUESTION_ID_ENTITY",
    "Choice",
    "Question",
    "QuestionStatus",
    "check_question",
    "check_question_id",
    "choices_of",
    "question_from_data",
]

#: Seconds a question stays open when the robot names no timeout.
DEFAULT_TIMEOUT = 600.0
MIN_TIMEOUT = 1.0
#: A week: longer than any job should wait on a person.
MAX_TIMEOUT = 7 * 86400.0
#: Buttons a chat can show sensibly.
MAX_CHOICES = 20
MAX_TEXT = 2000
MAX_TITLE = 200
MAX_VALUE = 1000
#: Question ids appear in URLs and button payloads: URL-safe characters only.
QUESTION_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")

# The names the bot's domain and the actions share (rasa_rpa.question_actions,
# rasa_rpa.ops.question_domain).
#: The intent a button sends, with the question's id and the choice's value.
ANSWER_INTENT = "rpa_answer"
QUESTION_ID_ENTITY = "rpa_question_id"
CHOICE_ENTITY = "rpa_choice"
#: The form that takes the user's next message as the answer.
FORM = "rpa_answer_form"
#: The form's one slot: the user's words.
ANSWER_SLOT = "rpa_answer"
#: The id of the question the form collects words for.
ANSWERING_SLOT = "rpa_answering"


class QuestionStatus(str, enum.Enum):
    """Where a question is, as the robot's long poll reports it."""

    #: Waiting for the user.
    OPEN = "open"
    #: The user answered; the answer is final.
    ANSWERED = "answered"
    #: Its timeout passed without an answer.
    EXPIRED = "expired"
    #: Its job ended before anyone answered.
    CLOSED = "closed"


@dataclass(frozen=True)
class Choice:
    """One button: what the user reads, and what the robot gets."""

    title: str
    value: str


@dataclass(frozen=True)
class Question:
    """One question of one job, with its answer once there is one."""

    job_id: str
    question_id: str
    conversation_id: str
    text: str
    choices: tuple[Choice, ...] = ()
    free_text: bool = False
    asked_at: float = 0.0
    expires_at: float = 0.0
    answer: str | None = None
    answered_at: float | None = None
    expired_at: float | None = None
    #: Filled in by readers that know the job; see :meth:`status`.
    job_final: bool = field(default=False, compare=False)

    def is_open(self, now: float) -> bool:
        """Whether an answer given at ``now`` may still be taken."""
        return (
            self.answer is None
            and self.expired_at is None
            and now < self.expires_at
            and not self.job_final
        )

    def status(self, now: float) -> QuestionStatus:
        """Answered, expired (timeout passed), closed (job ended) or open.

        A question past its timeout is expired from that moment, whether or
        not the reconciler has told the user yet: the robot's wait ends on time.
        """
        if self.answer is not None:
            return QuestionStatus.ANSWERED
        if self.expired_at is not None or now >= self.expires_at:
            return QuestionStatus.EXPIRED
        if self.job_final:
            return QuestionStatus.CLOSED
        return QuestionStatus.OPEN

    def answer_for(self, given: str, *, typed: bool) -> str | None:
        """The value an answer stands for, or None when it cannot be taken.

        A button sends a choice's value. Typed words that name a choice
        (its title or value, in any case) stand for that choice; any other
        words are taken as they are only when the question allows free text.
        """
        for choice in self.choices:
            if given == choice.value:
                return choice.value
        if not typed:
            return None
        words = " ".join(str(clean(given)).split())
        for choice in self.choices:
            if words.casefold() in (choice.title.casefold(), choice.value.casefold()):
                return choice.value
        return words if self.free_text and words else None

    def public(self, now: float) -> dict[str, Any]:
        """The question as the robot's long poll answers it."""
        return {
            "id": self.question_id,
            "job_id": self.job_id,
            "status": self.status(now).value,
            "text": self.text,
            "choices": [{"title": c.title, "value": c.value} for c in self.choices],
            "free_text": self.free_text,
            "asked_at": self.asked_at,
            "expires_at": self.expires_at,
            "answer": self.answer,
            "answered_at": self.answered_at,
        }


def choices_of(raw: Any) -> tuple[Choice, ...]:
    """Choices from what a robot sent: ``"ACME"`` or ``{"title", "value"}`` each.

    A choice without a value answers with its title. Assumes
    :func:`check_question` passed.
    """
    found: list[Choice] = []
    for item in raw or []:
        if isinstance(item, str):
            found.append(Choice(item, item))
        else:
            title = str(item["title"])
            value = item.get("value")
            found.append(Choice(title, title if value is None else str(value)))
    return tuple(found)


def timeout_of(data: dict[str, Any]) -> float:
    """The question's timeout in seconds (assumes :func:`check_question` passed)."""
    raw = data.get("timeout")
    return DEFAULT_TIMEOUT if raw is None else parse_duration(raw)


def question_from_data(
    job_id: str,
    question_id: str,
    conversation_id: str,
    data: dict[str, Any],
    asked_at: float,
) -> Question:
    """The question a checked ``question`` event asks."""
    return Question(
        job_id=job_id,
        question_id=question_id,
        conversation_id=conversation_id,
        text=str(data.get("text") or ""),
        choices=choices_of(data.get("choices")),
        free_text=bool(data.get("free_text")),
        asked_at=asked_at,
        expires_at=asked_at + timeout_of(data),
    )


def check_question_id(event_id: str) -> None:
    """A question's id (its event's id) names it in URLs and button payloads."""
    if not QUESTION_ID.fullmatch(event_id):
        raise ValueError(
            "a question's id names it in URLs and buttons: use 1 to 100 of "
            "A-Z a-z 0-9 . _ ~ -"
        )


def check_question(data: dict[str, Any], where: str) -> None:
    """Hold a ``question`` event's data to the rules; ValueError names the field.

    Text goes into plain columns, so NUL characters are refused here, as
    they are in messages and errors.
    """
    _text(data.get("text"), f"{where}.text", MAX_TEXT)
    free_text = data.get("free_text", False)
    if not isinstance(free_text, bool):
        raise ValueError(f"{where}.free_text must be true or false")
    raw = data.get("choices")
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_CHOICES:
        raise ValueError(
            f"{where}.choices must be a list of at most {MAX_CHOICES} choices"
        )
    for n, item in enumerate(raw):
        _choice(item, f"{where}.choices[{n}]")
    if not raw and not free_text:
        raise ValueError(
            f"a question needs {where}.choices or {where}.free_text: true, "
            "or the user cannot answer it"
        )
    timeout = data.get("timeout")
    if timeout is not None:
        _timeout(timeout, f"{where}.timeout")


def _choice(item: Any, where: str) -> None:
    if isinstance(item, str):
        _text(item, where, MAX_TITLE)
        return
    if not isinstance(item, dict) or "title" not in item:
        raise ValueError(f'{where} must be a string or {{"title", "value"}}')
    _text(item["title"], f"{where}.title", MAX_TITLE)
    if item.get("value") is not None:
        _text(item["value"], f"{where}.value", MAX_VALUE)


def _text(value: Any, where: str, most: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string")
    if len(value) > most:
        raise ValueError(f"{where} must be at most {most} characters")
    if "\x00" in value:
        raise ValueError(f"{where} cannot contain NUL characters")


def _timeout(value: Any, where: str) -> None:
    problem = (
        f"{where} must be seconds ({MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}) or a "
        "duration such as 90s, 10m or 1h"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(problem)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(problem) from None
    if not math.isfinite(seconds) or not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise ValueError(problem)
