"""Questions at work: answers from the chat, robots waiting, questions expiring.

The store decides what an answer does (:mod:`rasa_rpa.stores.questions`:
open questions only, the first answer wins); :class:`QuestionDesk` brings
it the answers the actions take, holds the robots' long polls until there
is news, and lets the reconciler expire what nobody answered. All three go
through :meth:`JobService.record`, so an answer is committed before the
user hears it was passed on, and is on the job's timeline.

A robot's wait looks at the question's row every :data:`POLL_INTERVAL`
seconds, so an answer given to another worker or replica (PostgreSQL)
reaches it within that; an answer given to this worker wakes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from dataclasses import dataclass

from rasa_rpa.cleantext import clean
from rasa_rpa.errors import Forbidden, QuestionNotFound, RateLimited
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.questions import Question, QuestionStatus
from rasa_rpa.service import JobService

__all__ = [
    "MAX_WAIT",
    "MAX_WAITERS",
    "POLL_INTERVAL",
    "AnswerOutcome",
    "Answered",
    "QuestionDesk",
]

log = logging.getLogger(__name__)
#: Longest a robot's long poll is held (Sanic answers 503 after 60 s).
MAX_WAIT = 50.0
#: Seconds between looks at a waited-for question's row.
POLL_INTERVAL = 0.5
#: Long polls one worker holds at once; more get 429 and retry.
MAX_WAITERS = 256


class AnswerOutcome(str, enum.Enum):
    """What became of an answer the user gave."""

    #: Recorded: the robot gets it.
    TAKEN = "taken"
    #: Someone answered first; the first answer stands.
    ALREADY_ANSWERED = "already_answered"
    #: Too late: the question's timeout passed.
    EXPIRED = "expired"
    #: Too late: the job ended.
    JOB_ENDED = "job_ended"
    #: No such question in this conversation (another's, or none at all).
    UNKNOWN = "unknown"
    #: A button value that is none of the question's choices.
    NOT_A_CHOICE = "not_a_choice"


@dataclass(frozen=True)
class Answered:
    """The outcome of an answer, and the question as it stands after it."""

    outcome: AnswerOutcome
    question: Question | None = None


_CLOSED = {
    QuestionStatus.ANSWERED: AnswerOutcome.ALREADY_ANSWERED,
    QuestionStatus.EXPIRED: AnswerOutcome.EXPIRED,
    QuestionStatus.CLOSED: AnswerOutcome.JOB_ENDED,
}


class QuestionDesk:
    """Takes answers, holds robots' waits, expires what nobody answered."""

    def __init__(
        self,
        service: JobService,
        *,
        max_waiters: int = MAX_WAITERS,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.service = service
        self.max_waiters = max_waiters
        self.poll_interval = poll_interval
        #: Long polls held right now.
        self.waiting = 0
        self._wakeups: dict[tuple[str, str], asyncio.Event] = {}
        self._waiters: dict[tuple[str, str], int] = {}
        self._closing = asyncio.Event()

    async def answer(
        self,
        conversation_id: str,
        question_id: str,
        given: str,
        *,
        typed: bool,
        message_id: str | None = None,
    ) -> Answered:
        """Record ``given`` as the answer to ``question_id`` of this conversation.

        ``typed``: the user's own words (a button sends a choice's value).
        ``message_id`` (Rasa's, of the user's message) makes the answer's
        event id, so an action Rasa retries records it once.
        """
        store = self.service.store
        question = await store.find_question(conversation_id, question_id)
        if question is None:
            return Answered(AnswerOutcome.UNKNOWN)
        status = question.status(time.time())
        if status in (QuestionStatus.EXPIRED, QuestionStatus.CLOSED):
            return Answered(_CLOSED[status], question)
        value = question.answer_for(given, typed=typed)
        if value is None:
            if status is QuestionStatus.OPEN:
                return Answered(AnswerOutcome.NOT_A_CHOICE, question)
            value = str(clean(given))  # a late answer: on the timeline, ignored
        # An answered question is tried all the same: Rasa retrying this very
        # answer finds it recorded, and a second answer lands on the timeline.
        unique = message_id or uuid.uuid4().hex
        event = JobEvent(
            f"answer:{question_id}:{unique}"[:200],
            question.job_id,
            EventType.ANSWER,
            {
                "question_id": question_id,
                "answer": value,
                "by": "text" if typed else "button",
            },
            source="chat",
        )

        def same_conversation(job: Job) -> None:
            # Found by conversation already; checked again on the locked job.
            if job.conversation_id != conversation_id:
                raise Forbidden("only the job's own conversation answers it")

        try:
            result = await self.service.record(event, same_conversation)
        except Forbidden:
            return Answered(AnswerOutcome.UNKNOWN)
        after = await store.get_question(question.job_id, question_id) or question
        if result.applied:
            self._wake(after)
            log.info(
                "job %s: question %s answered",
                question.job_id,
                question_id,
                extra={"job_id": question.job_id, "conversation_id": conversation_id},
            )
            return Answered(AnswerOutcome.TAKEN, after)
        if result.duplicate and after.answer == value:
            return Answered(AnswerOutcome.TAKEN, after)  # a retry of this answer
        status = after.status(time.time())
        return Answered(_CLOSED.get(status, AnswerOutcome.ALREADY_ANSWERED), after)

    async def wait(self, job_id: str, question_id: str, seconds: float) -> Question:
        """The question once it is no longer open, or as it is after ``seconds``.

        Raises:
            QuestionNotFound: the job asked no such question (404).
            RateLimited: this worker holds :attr:`max_waiters` polls already.
        """
        if self.waiting >= self.max_waiters:
            raise RateLimited("too many robots are waiting for answers; retry", 1.0)
        key = (job_id, question_id)
        self.waiting += 1
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await self._wait(job_id, question_id, seconds)
        finally:
            self.waiting -= 1
            self._waiters[key] -= 1
            if not self._waiters[key]:  # nobody left to wake
                del self._waiters[key]
                self._wakeups.pop(key, None)

    async def _wait(self, job_id: str, question_id: str, seconds: float) -> Question:
        store = self.service.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        key = (job_id, question_id)
        while True:
            question = await store.get_question(job_id, question_id)
            if question is None:
                raise QuestionNotFound(job_id, question_id)
            now = time.time()
            remaining = deadline - loop.time()
            status = question.status(now)
            if status is QuestionStatus.EXPIRED and question.expired_at is None:
                # The robot learns of the timeout before the reconciler's next
                # pass: tell the user first, so the news keeps its order.
                await self._expire(question, now)
            if (
                status is not QuestionStatus.OPEN
                or remaining <= 0
                or self._closing.is_set()
            ):
                return question
            # Wake at the answer (this worker), the next look, or the timeout.
            nap = min(self.poll_interval, remaining, question.expires_at - now)
            wakeup = self._wakeups.setdefault(key, asyncio.Event())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wakeup.wait(), max(nap, 0.0))

    def _wake(self, question: Question) -> None:
        wakeup = self._wakeups.pop((question.job_id, question.question_id), None)
        if wakeup is not None:
            wakeup.set()

    def release(self) -> None:
        """Answer every held poll now (the server is stopping); robots ask again."""
        self._closing.set()
        for wakeup in self._wakeups.values():
            wakeup.set()
        self._wakeups.clear()

    async def expire_due(self, now: float | None = None) -> int:
        """Expire the questions whose timeout passed; the user is told. How many."""
        now = time.time() if now is None else now
        expired = 0
        for question in await self.service.store.due_questions(now):
            expired += await self._expire(question, now)
        return expired

    async def _expire(self, question: Question, now: float) -> bool:
        """Record that ``question`` expired (once, whoever notices first)."""
        result = await self.service.record(
            JobEvent(
                f"question-expired:{question.question_id}",
                question.job_id,
                EventType.QUESTION_EXPIRED,
                {"question_id": question.question_id, "question": question.text},
                source="reconciler",
                received_at=now,
            )
        )
        self._wake(question)
        return result.applied
