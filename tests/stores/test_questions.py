"""Questions in the job store, on SQLite and PostgreSQL: asked, answered once,
expired, kept across restarts and across replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rasa_rpa.models import EventType, JobEvent
from rasa_rpa.questions import Choice, QuestionStatus
from rasa_rpa.stores import JobStore
from tests.stores.test_contract import BACKENDS, Backend, new_job, undo_schema_5


@pytest.fixture(params=BACKENDS)
async def backend(request: Any, tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def store(backend: Backend) -> JobStore:
    return await backend.open()


ASKED = 1000.0
CHOICES = [{"title": "ACME Corp", "value": "acme-corp"}, "ACME Ltd"]


def ask(
    question_id: str = "q1", job_id: str = "j1", at: float = ASKED, **data: Any
) -> JobEvent:
    body = {"text": "Which customer?", "choices": CHOICES, "timeout": 60, **data}
    return JobEvent(question_id, job_id, EventType.QUESTION, body, received_at=at)


def answer(
    value: str, at: float = ASKED + 5, question_id: str = "q1", job_id: str = "j1"
) -> JobEvent:
    return JobEvent(
        f"answer-{question_id}-{value}-{at}",
        job_id,
        EventType.ANSWER,
        {"question_id": question_id, "answer": value},
        source="chat",
        received_at=at,
    )


def expire(question_id: str = "q1", job_id: str = "j1", at: float = 2000.0):
    return JobEvent(
        f"question-expired:{question_id}",
        job_id,
        EventType.QUESTION_EXPIRED,
        {"question_id": question_id, "question": "Which customer?"},
        source="reconciler",
        received_at=at,
    )


async def started(store: JobStore, job_id: str = "j1", conversation: str = "c1"):
    await store.create_job(new_job(job_id, conversation))
    await store.record_event(
        JobEvent(f"s-{job_id}", job_id, EventType.STARTED, received_at=ASKED - 1)
    )


async def intents(store: JobStore) -> list[str]:
    messages = await store.list_outbox(status="pending", limit=100)
    return [m.payload["name"] for m in sorted(messages, key=lambda m: m.seq or 0)]


async def test_a_question_is_kept_and_asked_in_one_go(store: JobStore) -> None:
    await started(store)
    result = await store.record_event(ask())
    assert result.applied and result.queued == 1
    question = await store.get_question("j1", "q1")
    assert question is not None
    assert question.conversation_id == "c1"
    assert question.choices == (
        Choice("ACME Corp", "acme-corp"),
        Choice("ACME Ltd", "ACME Ltd"),
    )
    assert not question.free_text
    assert question.expires_at == ASKED + 60
    assert question.status(ASKED + 1) is QuestionStatus.OPEN
    [message] = [
        m
        for m in await store.list_outbox(status="pending", limit=10)
        if m.payload["name"].startswith("EXTERNAL_rpa_job_question")
    ]
    assert message.payload["name"] == "EXTERNAL_rpa_job_question"
    entities = message.payload["entities"]
    assert entities["rpa_question"] == "Which customer?"
    assert entities["rpa_question_id"] == "q1"
    assert entities["rpa_title"] == "orders"


async def test_free_text_questions_have_their_own_intent(store: JobStore) -> None:
    await started(store)
    await store.record_event(ask(choices=[], free_text=True))
    assert (await intents(store))[-1] == "EXTERNAL_rpa_job_question_free_text"


async def test_a_question_sent_twice_is_asked_once(store: JobStore) -> None:
    await started(store)
    await store.record_event(ask())
    again = await store.record_event(ask(text="Changed?"))
    assert again.duplicate and not again.applied
    assert (await store.get_question("j1", "q1")).text == "Which customer?"
    assert (await intents(store)).count("EXTERNAL_rpa_job_question") == 1


async def test_the_first_answer_wins(store: JobStore) -> None:
    await started(store)
    await store.record_event(ask())
    first = await store.record_event(answer("acme-corp"))
    second = await store.record_event(answer("ACME Ltd", at=ASKED + 6))
    assert first.applied and not second.applied and not second.duplicate
    assert first.queued == 0  # the answering action tells the user itself
    question = await store.get_question("j1", "q1")
    assert question.answer == "acme-corp"
    assert question.answered_at == ASKED + 5
    assert question.status(ASKED + 7) is QuestionStatus.ANSWERED
    # Both are on the job's timeline; the second one as ignored.
    log = [(e["type"], e["applied"]) for e in await store.job_events("j1")]
    assert log[-2:] == [("answer", True), ("answer", False)]


async def test_one_answer_wins_when_two_replicas_race(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    await started(one)
    for n in range(8):
        question_id = f"q{n}"
        await one.record_event(ask(question_id))
        results = await asyncio.gather(
            one.record_event(answer("acme-corp", question_id=question_id)),
            two.record_event(answer("ACME Ltd", question_id=question_id)),
        )
        assert sorted(r.applied for r in results) == [False, True]
        winner = "acme-corp" if results[0].applied else "ACME Ltd"
        assert (await two.get_question("j1", question_id)).answer == winner


async def test_answers_after_the_timeout_or_the_job_are_refused(
    store: JobStore,
) -> None:
    await started(store)
    await store.record_event(ask())
    late = await store.record_event(answer("acme-corp", at=ASKED + 60))
    assert not late.applied
    assert (await store.get_question("j1", "q1")).answer is None
    await store.record_event(ask("q2"))
    await store.record_event(
        JobEvent("done", "j1", EventType.SUCCEEDED, received_at=ASKED + 2)
    )
    ended = await store.record_event(answer("acme-corp", question_id="q2"))
    assert not ended.applied
    question = await store.get_question("j1", "q2")
    assert question.answer is None and question.job_final
    assert question.status(ASKED + 3) is QuestionStatus.CLOSED
    unknown = await store.record_event(answer("x", question_id="nope"))
    assert not unknown.applied


async def test_an_answer_survives_reopening(backend: Backend) -> None:
    first = backend.new()
    await first.open()
    await started(first)
    await first.record_event(ask())
    await first.record_event(answer("ACME Ltd"))
    await first.close()
    second = await backend.open()
    question = await second.get_question("j1", "q1")
    assert question is not None and question.answer == "ACME Ltd"


async def test_expiry_applies_once_and_closes_the_question(store: JobStore) -> None:
    await started(store)
    await store.record_event(ask(timeout=10))
    await store.record_event(ask("q2", timeout=300))
    assert [q.question_id for q in await store.due_questions(ASKED + 5)] == []
    due = await store.due_questions(ASKED + 10)
    assert [q.question_id for q in due] == ["q1"]
    first = await store.record_event(expire(at=ASKED + 11))
    assert first.applied and first.queued == 1
    again = await store.record_event(expire(at=ASKED + 12))
    assert again.duplicate
    assert await store.due_questions(ASKED + 20) == []
    assert (await intents(store))[-1] == "EXTERNAL_rpa_job_question_expired"
    question = await store.get_question("j1", "q1")
    assert question.expired_at == ASKED + 11
    assert question.status(ASKED + 11) is QuestionStatus.EXPIRED
    # An expiry of a question that was answered meanwhile tells nobody.
    await store.record_event(answer("ACME Ltd", question_id="q2"))
    answered = await store.record_event(expire("q2", at=ASKED + 400))
    assert not answered.applied and answered.queued == 0


async def test_questions_are_found_by_conversation(store: JobStore) -> None:
    await started(store, "j1", "c1")
    await started(store, "j2", "c1")
    await started(store, "j3", "c2")
    await store.record_event(ask("customer", "j1"))
    await store.record_event(answer("ACME Ltd", question_id="customer", job_id="j1"))
    await store.record_event(ask("customer", "j2", at=ASKED + 1))
    await store.record_event(ask("other", "j3"))
    # Both jobs of c1 asked "customer": the open question is meant.
    found = await store.find_question("c1", "customer")
    assert found is not None and found.job_id == "j2"
    # Another conversation cannot reach c2's question by its id.
    assert await store.find_question("c1", "other") is None
    waiting = await store.open_questions("c1", ASKED + 2)
    assert [(q.job_id, q.question_id) for q in waiting] == [("j2", "customer")]
    assert await store.open_questions("c1", ASKED + 61) == []


async def test_schema_4_is_migrated(backend: Backend) -> None:
    store = await backend.open()
    await started(store)
    await store.close()
    await undo_schema_5(backend)  # no questions (and no files, schema 6)
    await backend.sql("UPDATE schema_version SET version = 4")
    store = await backend.open()
    await store.record_event(ask())
    assert (await store.get_question("j1", "q1")) is not None
