"""QuestionDesk: answers from the chat, robots' waits, expiry; on one worker
and across two replicas sharing PostgreSQL.

Apps are served in process; the answers come in as ``action_rpa_answer``
hands them over, the waits are real requests to the question route.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from rasa_rpa.asking import AnswerOutcome
from rasa_rpa.models import EventType, JobEvent
from tests.inprocess import InProcessApp
from tests.stores.test_contract import PG_URL
from tests.waiting import async_wait_until

EXPIRED = "EXTERNAL_rpa_job_question_expired"


@pytest.fixture
async def app(in_process) -> InProcessApp:
    return await in_process()


async def ask(app: InProcessApp, job, question_id: str = "q1", **data) -> str:
    body = {"text": "Which customer?", "choices": ["ACME Corp", "ACME Ltd"], **data}
    event = JobEvent(question_id, job.id, EventType.QUESTION, body)
    result = await app.runtime.service.record(event)
    assert result.applied
    return question_id


async def wait(app: InProcessApp, job, question_id: str, seconds: str) -> dict:
    response = await app.client.get(
        f"/rpa/v1/jobs/{job.id}/questions/{question_id}",
        params={"wait": seconds},
        headers={"Authorization": f"Bearer {app.token(job)}"},
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_outcomes_of_answers(app):
    job = await app.new_job()
    desk = app.runtime.questions
    await ask(app, job)
    conversation = job.conversation_id

    async def outcome(given, conversation=conversation, typed=False, question="q1"):
        answered = await desk.answer(conversation, question, given, typed=typed)
        return answered.outcome

    stranger = "another conversation"
    assert await outcome("ACME Ltd", conversation=stranger) is AnswerOutcome.UNKNOWN
    assert await outcome("ACME Ltd", question="q-none") is AnswerOutcome.UNKNOWN
    assert await outcome("Globex") is AnswerOutcome.NOT_A_CHOICE
    # Words for a question without free text count only when they name a choice.
    assert await outcome("globex corp", typed=True) is AnswerOutcome.NOT_A_CHOICE
    assert await outcome("  acme   corp ", typed=True) is AnswerOutcome.TAKEN
    assert await outcome("ACME Ltd") is AnswerOutcome.ALREADY_ANSWERED
    question = await app.runtime.store.get_question(job.id, "q1")
    assert question.answer == "ACME Corp"
    timeline = [
        (e["type"], e["source"], e["applied"], e["data"].get("answer"))
        for e in await app.runtime.store.job_events(job.id)
        if e["type"] == "answer"
    ]
    assert timeline == [
        ("answer", "chat", True, "ACME Corp"),
        ("answer", "chat", False, "ACME Ltd"),
    ]


async def test_free_text_takes_the_users_words(app):
    job = await app.new_job()
    await ask(app, job, choices=["Monday"], free_text=True)
    answered = await app.runtime.questions.answer(
        job.conversation_id, "q1", "  Next   Tuesday, please\x00", typed=True
    )
    assert answered.outcome is AnswerOutcome.TAKEN
    # Spaces folded; a NUL (no database keeps one as text) becomes U+FFFD.
    assert answered.question.answer == "Next Tuesday, please\ufffd"


async def test_late_answers(app):
    job = await app.new_job()
    desk, store = app.runtime.questions, app.runtime.store
    await ask(app, job, "soon", timeout=1)
    await ask(app, job, "later")
    soon = await store.get_question(job.id, "soon")
    assert soon is not None
    # Until its timeout has passed (by the clock the desk reads).
    await async_wait_until(lambda: time.time() > soon.expires_at, 5, "expiry")
    late = await desk.answer(job.conversation_id, "soon", "ACME Ltd", typed=False)
    assert late.outcome is AnswerOutcome.EXPIRED
    ended = JobEvent("end", job.id, EventType.SUCCEEDED, {})
    await app.runtime.service.record(ended)
    after = await desk.answer(job.conversation_id, "later", "ACME Ltd", typed=False)
    assert after.outcome is AnswerOutcome.JOB_ENDED
    assert (await store.get_question(job.id, "later")).answer is None


async def test_the_reconciler_expires_and_tells_the_user_once(app):
    job = await app.new_job()
    await ask(app, job, timeout=1)
    reconciler = app.runtime.reconciler
    assert await reconciler.check_once(time.time()) == 0
    assert await reconciler.check_once(time.time() + 2) == 1
    assert await reconciler.check_once(time.time() + 3) == 0
    messages = await app.runtime.store.list_outbox(
        status="pending", job_id=job.id, limit=50
    )
    messages += await app.runtime.store.list_outbox(
        status="delivered", job_id=job.id, limit=50
    )
    [expired] = [m for m in messages if m.payload.get("name") == EXPIRED]
    assert expired.payload["entities"]["rpa_question"] == "Which customer?"
    assert expired.payload["entities"]["rpa_question_id"] == "q1"


async def test_a_stopping_server_lets_waiting_robots_go(app):
    job = await app.new_job()
    await ask(app, job)
    started = time.monotonic()
    waiting = asyncio.ensure_future(wait(app, job, "q1", "30s"))
    desk = app.runtime.questions
    await async_wait_until(lambda: desk.waiting == 1, 5, "the robot waits")
    desk.release()
    assert (await waiting)["status"] == "open"
    assert time.monotonic() - started < 5


# -- two replicas on one PostgreSQL ----------------------------------------------


@pytest.fixture
async def replicas(in_process) -> AsyncIterator[tuple[InProcessApp, InProcessApp]]:
    schema = f"rpa_ask_{uuid.uuid4().hex[:10]}"
    store = {"url": f"{PG_URL}?schema={schema}&pool_size=4"}
    first = await in_process(store=store)
    second = await in_process(store=store)
    yield first, second
    connection = await asyncpg.connect(PG_URL)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


async def test_an_answer_given_to_one_replica_ends_a_wait_on_the_other(replicas):
    first, second = replicas
    job = await first.new_job()
    await ask(first, job)
    started = time.monotonic()
    waiting = asyncio.ensure_future(wait(second, job, "q1", "20s"))
    on_second = second.runtime.questions
    await async_wait_until(lambda: on_second.waiting == 1, 5, "the robot waits")
    answered = await first.runtime.questions.answer(
        job.conversation_id, "q1", "ACME Ltd", typed=False
    )
    assert answered.outcome is AnswerOutcome.TAKEN
    body = await waiting
    assert body["status"] == "answered" and body["answer"] == "ACME Ltd"
    assert time.monotonic() - started < 5  # a look every POLL_INTERVAL, not 20 s


async def test_replicas_answering_at_once_keep_the_first_answer(replicas):
    first, second = replicas
    job = await first.new_job()
    for n in range(5):
        question_id = await ask(first, job, f"q{n}")
        outcomes = await asyncio.gather(
            first.runtime.questions.answer(
                job.conversation_id, question_id, "ACME Corp", typed=False
            ),
            second.runtime.questions.answer(
                job.conversation_id, question_id, "ACME Ltd", typed=False
            ),
        )
        taken = [o for o in outcomes if o.outcome is AnswerOutcome.TAKEN]
        assert len(taken) == 1
        stored = await second.runtime.store.get_question(job.id, question_id)
        assert stored.answer == taken[0].question.answer
        assert {o.outcome for o in outcomes} == {
            AnswerOutcome.TAKEN,
            AnswerOutcome.ALREADY_ANSWERED,
        }
