"""The question API: a robot asks, then long-polls for the answer.

Served in process: the answer comes through the runtime's QuestionDesk, as
``action_rpa_answer`` gives it, and the robot's wait is a real request to
the route. The rules of answers themselves are in tests/test_asking.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
import schemathesis

from rasa_rpa.asking import MAX_WAIT
from rasa_rpa.http.callbacks import OPENAPI_PATH
from tests.http.test_openapi import CHECKS
from tests.inprocess import InProcessApp
from tests.waiting import async_wait_until

QUESTION = "/rpa/v1/jobs/{job_id}/questions/{question_id}"


@pytest.fixture
async def app(in_process):
    return await in_process()


def question(question_id: str | None = None, **data: Any) -> dict[str, Any]:
    body = {"text": "Which customer?", "choices": ["ACME Corp", "ACME Ltd"]}
    return {
        "id": question_id or uuid.uuid4().hex,
        "type": "question",
        "data": {**body, **data},
    }


async def ask(app: InProcessApp, job, **data: Any) -> str:
    body = question(**data)
    response = await app.send_with_token(job.id, body, app.token(job))
    assert response.status_code == 202, response.text
    return str(body["id"])


async def poll(
    app: InProcessApp, job, question_id: str, wait: str | None = None, token=None
) -> httpx.Response:
    params = {} if wait is None else {"wait": wait}
    return await app.client.get(
        QUESTION.format(job_id=job.id, question_id=question_id),
        params=params,
        headers={"Authorization": f"Bearer {token or app.token(job)}"},
    )


def conforms(response: httpx.Response, job, question_id: str) -> None:
    """The answer is what openapi.json documents for the route."""
    spec = schemathesis.openapi.from_path(str(OPENAPI_PATH))
    case = spec[QUESTION]["GET"].Case(
        path_parameters={"job_id": job.id, "question_id": question_id}
    )
    case.validate_response(response, checks=CHECKS)


async def test_a_question_is_open_until_answered(app):
    job = await app.new_job()
    choices = ["ACME Corp", {"title": "Ltd", "value": "acme-ltd"}]
    question_id = await ask(app, job, choices=choices)
    response = await poll(app, job, question_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "open" and body["answer"] is None
    assert body["choices"] == [
        {"title": "ACME Corp", "value": "ACME Corp"},
        {"title": "Ltd", "value": "acme-ltd"},
    ]
    conforms(response, job, question_id)


async def test_the_wait_ends_as_soon_as_the_answer_is_given(app):
    job = await app.new_job()
    question_id = await ask(app, job)
    started = time.monotonic()
    waiting = asyncio.ensure_future(poll(app, job, question_id, wait="20s"))
    desk = app.runtime.questions
    await async_wait_until(lambda: desk.waiting == 1, 5, "the robot waits")
    assert not waiting.done()
    answered = await app.runtime.questions.answer(
        job.conversation_id, question_id, "ACME Ltd", typed=False
    )
    assert answered.outcome.value == "taken"
    response = await waiting
    assert time.monotonic() - started < 5
    assert response.json()["status"] == "answered"
    assert response.json()["answer"] == "ACME Ltd"
    conforms(response, job, question_id)
    # A robot that lost the answer and asks again gets the same one.
    again = await poll(app, job, question_id, wait="20s")
    assert again.json()["answer"] == "ACME Ltd"


async def test_a_question_past_its_timeout_is_expired_for_the_robot(app):
    job = await app.new_job()
    question_id = await ask(app, job, timeout=1)
    started = time.monotonic()
    response = await poll(app, job, question_id, wait="10s")
    assert response.json()["status"] == "expired"
    assert time.monotonic() - started < 5  # at the timeout, not at the wait's end
    conforms(response, job, question_id)


async def test_a_question_whose_job_ended_is_closed(app):
    job = await app.new_job()
    question_id = await ask(app, job)
    ended = {"id": "end", "type": "job.failed", "data": {"error": "stopped"}}
    assert (await app.send_with_token(job.id, ended, app.token(job))).status_code == 202
    response = await poll(app, job, question_id, wait="5s")
    assert response.json()["status"] == "closed"


async def test_a_wait_without_news_answers_open_when_it_runs_out(app):
    job = await app.new_job()
    question_id = await ask(app, job)
    started = time.monotonic()
    response = await poll(app, job, question_id, wait="1s")
    assert response.json()["status"] == "open"
    assert 0.9 <= time.monotonic() - started < 4


async def test_who_may_read_a_question(app):
    job = await app.new_job()
    other = await app.new_job()
    question_id = await ask(app, job)
    url = QUESTION.format(job_id=job.id, question_id=question_id)
    assert (await app.client.get(url)).status_code == 401
    foreign = await poll(app, job, question_id, token=app.token(other))
    assert foreign.status_code == 403  # a token names its job
    wrong_conversation = app.runtime.keys.mint_token(job.id, "someone-else")
    refused = await poll(app, job, question_id, token=wrong_conversation)
    assert refused.status_code == 403
    missing = await poll(app, job, "no-such-question")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "question_not_found"
    conforms(missing, job, "no-such-question")


@pytest.mark.parametrize("wait", ["abc", f"{MAX_WAIT + 1:g}s", "-1", "", "1e400"])
async def test_a_wait_out_of_bounds_is_refused(app, wait):
    job = await app.new_job()
    question_id = await ask(app, job)
    response = await poll(app, job, question_id, wait=wait)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_query"
    conforms(response, job, question_id)


async def test_waits_held_at_once_are_bounded(app):
    app.runtime.questions.max_waiters = 1
    job = await app.new_job()
    question_id = await ask(app, job)
    first = asyncio.ensure_future(poll(app, job, question_id, wait="3s"))
    desk = app.runtime.questions
    await async_wait_until(lambda: desk.waiting == 1, 5, "the first robot waits")
    second = await poll(app, job, question_id, wait="3s")
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    assert (await first).status_code == 200


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"choices": []}, "needs data.choices or data.free_text"),
        ({"choices": "ACME"}, "data.choices must be a list"),
        ({"choices": [{"value": "x"}]}, "data.choices[0] must be a string or"),
        ({"choices": [""]}, "data.choices[0] must be a non-empty string"),
        ({"text": ""}, "data.text must be a non-empty string"),
        ({"free_text": "yes"}, "data.free_text must be true or false"),
        ({"timeout": 0}, "data.timeout must be seconds"),
        ({"timeout": "soon"}, "data.timeout must be seconds"),
        ({"text": "a\u0000b"}, "cannot contain NUL"),
    ],
)
async def test_a_malformed_question_is_refused_with_the_field(app, data, problem):
    job = await app.new_job()
    response = await app.send_with_token(job.id, question(**data), app.token(job))
    assert response.status_code == 422, response.text
    assert problem in response.json()["error"]["message"]


async def test_a_question_id_must_be_usable_in_urls(app):
    job = await app.new_job()
    response = await app.send_with_token(
        job.id, question("what?/#"), app.token(job)
    )
    assert response.status_code == 422
    assert "id:" in response.json()["error"]["message"]


async def test_free_text_only_questions_are_fine(app):
    job = await app.new_job()
    question_id = await ask(app, job, choices=None, free_text=True, timeout="2m")
    body = (await poll(app, job, question_id)).json()
    assert body["free_text"] is True and body["choices"] == []
    assert body["expires_at"] - body["asked_at"] == pytest.approx(120)
