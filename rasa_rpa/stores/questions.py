"""What both SQL stores do with questions: plan their rows, and read them.

A question's row is written in the transaction that records its
``question`` event; an answer or an expiry changes it in the transaction
that records the ``answer`` or ``question.expired`` event, after the job's
row is locked. Whether that event applies depends on the question as the
transaction sees it (:func:`fold_question`): so two answers racing, in two
workers or two replicas, are applied one after the other, and only the
first finds the question open.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rasa_rpa.lifecycle import Outcome
from rasa_rpa.models import EventType, JobEvent
from rasa_rpa.questions import Choice, Question, question_from_data
from rasa_rpa.stores.common import UNFINISHED, dump

__all__ = [
    "INSERT_QUESTION",
    "QUESTION_TYPES",
    "SELECT_QUESTIONS",
    "QuestionChanges",
    "QuestionFolder",
    "QuestionReads",
    "numbered",
    "question_from_row",
    "question_keys",
    "question_row",
]

#: The event types that touch a question's row.
QUESTION_TYPES = frozenset(
    {EventType.QUESTION, EventType.ANSWER, EventType.QUESTION_EXPIRED}
)
QUESTION_COLUMNS = (
    "job_id, question_id, conversation_id, text, choices, free_text, asked_at,"
    " expires_at, answer, answered_at, expired_at"
)
INSERT_QUESTION = (
    f"INSERT INTO questions ({QUESTION_COLUMNS}) VALUES ({', '.join('?' * 11)})"
)
#: Belt and braces: the plan only answers open questions, and so does the SQL.
ANSWER_QUESTION = (
    "UPDATE questions SET answer = ?, answered_at = ?"
    " WHERE job_id = ? AND question_id = ? AND answer IS NULL AND expired_at IS NULL"
)
EXPIRE_QUESTION = (
    "UPDATE questions SET expired_at = ?"
    " WHERE job_id = ? AND question_id = ? AND answer IS NULL AND expired_at IS NULL"
)
SELECT_QUESTIONS = (
    "SELECT q.job_id, q.question_id, q.conversation_id, q.text, q.choices,"
    " q.free_text, q.asked_at, q.expires_at, q.answer, q.answered_at,"
    " q.expired_at, j.state FROM questions q JOIN jobs j ON j.id = q.job_id"
)
_OPEN = "q.answer IS NULL AND q.expired_at IS NULL"
_JOB_UNFINISHED = "j." + UNFINISHED


@dataclasses.dataclass
class QuestionChanges:
    """The question rows a batch of events writes."""

    asked: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    answered: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    expired: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.asked or self.answered or self.expired)

    def statements(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """``(sql, rows)`` pairs to run, with ``?`` placeholders."""
        return [
            (sql, rows)
            for sql, rows in (
                (INSERT_QUESTION, self.asked),
                (ANSWER_QUESTION, self.answered),
                (EXPIRE_QUESTION, self.expired),
            )
            if rows
        ]


def question_keys(events: Iterable[JobEvent]) -> list[tuple[str, str]]:
    """``(job_id, question_id)`` of the questions answers and expiries name."""
    return sorted(
        {
            (event.job_id, str(event.data.get("question_id")))
            for event in events
            if event.type in (EventType.ANSWER, EventType.QUESTION_EXPIRED)
        }
    )


class QuestionFolder:
    """Folds a batch's question events into the question rows it has read.

    ``questions`` holds the rows the batch's answers and expiries name, as
    this transaction sees them (read after the jobs were locked); it is
    kept up to date as the batch goes on, and :attr:`changes` collects the
    writes.
    """

    def __init__(self, questions: dict[tuple[str, str], Question]) -> None:
        self.questions = questions
        self.changes = QuestionChanges()

    def fold(self, outcome: Outcome, event: JobEvent) -> Outcome:
        """``outcome`` of ``event``, once the question's row agrees.

        An answer applies only to an open question, an expiry only to one
        neither answered nor expired; otherwise the event is kept in the
        log, not applied, and sends nothing.
        """
        if not outcome.applied or event.type not in QUESTION_TYPES:
            return outcome
        job, now = outcome.job, event.received_at
        if event.type is EventType.QUESTION:
            asked = question_from_data(
                job.id, event.id, job.conversation_id, event.data, now
            )
            self.questions[(job.id, event.id)] = asked
            self.changes.asked.append(question_row(asked))
            return outcome
        key = (job.id, str(event.data.get("question_id")))
        found = self.questions.get(key)
        if event.type is EventType.ANSWER:
            answer = event.data.get("answer")
            if found is None or not found.is_open(now) or not isinstance(answer, str):
                return Outcome(job, False, [])
            self.questions[key] = dataclasses.replace(
                found, answer=answer, answered_at=now
            )
            self.changes.answered.append((answer, now, *key))
            return outcome
        if found is None or found.answer is not None or found.expired_at is not None:
            return Outcome(job, False, [])
        self.questions[key] = dataclasses.replace(found, expired_at=now)
        self.changes.expired.append((now, *key))
        return outcome


def question_row(question: Question) -> tuple[Any, ...]:
    choices = [{"title": c.title, "value": c.value} for c in question.choices]
    return (
        question.job_id,
        question.question_id,
        question.conversation_id,
        question.text,
        dump(choices),
        question.free_text,
        question.asked_at,
        question.expires_at,
        question.answer,
        question.answered_at,
        question.expired_at,
    )


def question_from_row(row: Mapping[str, Any]) -> Question:
    """A question from a row of :data:`SELECT_QUESTIONS` (SQLite's or asyncpg's)."""
    return Question(
        job_id=row["job_id"],
        question_id=row["question_id"],
        conversation_id=row["conversation_id"],
        text=row["text"],
        choices=tuple(
            Choice(c["title"], c["value"]) for c in json.loads(row["choices"])
        ),
        free_text=bool(row["free_text"]),
        asked_at=row["asked_at"],
        expires_at=row["expires_at"],
        answer=row["answer"],
        answered_at=row["answered_at"],
        expired_at=row["expired_at"],
        job_final=row["state"] not in ("pending", "running"),
    )


class QuestionReads:
    """The question queries, on a store that can run a ``?``-placeholder query."""

    async def _question_rows(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def _read(self, where: str, *args: Any) -> list[Question]:
        rows = await self._question_rows(f"{SELECT_QUESTIONS} WHERE {where}", *args)
        return [question_from_row(row) for row in rows]

    async def get_question(self, job_id: str, question_id: str) -> Question | None:
        found = await self._read(
            "q.job_id = ? AND q.question_id = ?", job_id, question_id
        )
        return found[0] if found else None

    async def find_question(
        self, conversation_id: str, question_id: str
    ) -> Question | None:
        # Two jobs of one conversation may both ask "customer": the open one
        # is meant, else the newest.
        found = await self._read(
            "q.conversation_id = ? AND q.question_id = ?"
            f" ORDER BY CASE WHEN {_OPEN} THEN 0 ELSE 1 END, q.asked_at DESC LIMIT 1",
            conversation_id,
            question_id,
        )
        return found[0] if found else None

    async def open_questions(self, conversation_id: str, now: float) -> list[Question]:
        return await self._read(
            f"q.conversation_id = ? AND {_OPEN} AND q.expires_at > ?"
            f" AND {_JOB_UNFINISHED} ORDER BY q.asked_at",
            conversation_id,
            now,
        )

    async def due_questions(self, now: float, *, limit: int = 100) -> list[Question]:
        return await self._read(
            f"{_OPEN} AND q.expires_at <= ? AND {_JOB_UNFINISHED}"
            " ORDER BY q.expires_at LIMIT ?",
            now,
            limit,
        )


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    parts = sql.split("?")
    return "".join(
        part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1)
    )

