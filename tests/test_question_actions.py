"""The actions that ask a robot's question and take the answer, called the way
Rasa calls them, on a real action server with a real (idle) robot's job.

The test plays the robot's part of the question: it sends the ``question``
event with the job's token and reads the answer back from the question API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rasa_rpa.ops.domain_snippet import RESPONSES
from rasa_rpa.question_actions import button_payload
from tests.conftest import ActionServer, running_action_server, running_job

CHOICES = ["ACME Corp", "ACME Ltd"]
#: A domain with every response, so replies name the response they use.
DOMAIN = {"responses": {name: [{"text": name}] for name in RESPONSES}}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ActionServer]:
    with running_action_server(tmp_path_factory.mktemp("questions")) as running:
        yield running


@pytest.fixture
def job(server) -> Iterator[tuple[str, str]]:
    with running_job(server) as running:
        yield running


def ask(server: ActionServer, job: tuple[str, str], **data: Any) -> str:
    job_id, sender = job
    question_id = f"q-{uuid.uuid4().hex[:8]}"
    body = {
        "id": question_id,
        "type": "question",
        "data": {"text": "Which customer?", "choices": CHOICES, **data},
    }
    token = server.keys.mint_token(job_id, sender)
    response = server.send_with_token(job_id, body, token)
    assert response.status_code == 202, response.text
    return question_id


def stored(server: ActionServer, job: tuple[str, str], question_id: str) -> Any:
    job_id, sender = job
    response = requests.get(
        f"{server.url}/rpa/v1/jobs/{job_id}/questions/{question_id}",
        headers={"Authorization": f"Bearer {server.keys.mint_token(job_id, sender)}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def click(server, sender, question_id, value, **kwargs) -> dict[str, Any]:
    """The user clicks a button: Rasa parses its payload into intent and entities."""
    payload = button_payload(question_id, value)
    entities = json.loads(payload[payload.index("{") :])
    return server.run_action(
        "action_rpa_answer",
        sender,
        intent="rpa_answer",
        entities=[{"entity": k, "value": v} for k, v in entities.items()],
        domain=DOMAIN,
        **kwargs,
    )


def said(result: dict[str, Any]) -> list[str]:
    return [reply["response"] for reply in result["responses"]]


def slots(result: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}


def test_ask_says_the_question_with_its_choices_as_buttons(server, job):
    job_id, sender = job
    quoted = {"title": "Ltd", "value": '"x"}'}
    question_id = ask(server, job, choices=["ACME Corp", quoted])
    result = server.run_action(
        "action_rpa_ask",
        sender,
        intent="EXTERNAL_rpa_job_question",
        entities=[{"entity": "rpa_question_id", "value": question_id}],
        domain=DOMAIN,
    )
    [reply] = result["responses"]
    assert reply["response"] == "utter_rpa_question"
    assert reply["rpa_question"] == "Which customer?"
    assert reply["rpa_title"] == "idle" and reply["rpa_job_ref"]
    assert job_id not in json.dumps(reply)  # the user never sees the job's id
    titles = [b["title"] for b in reply["buttons"]]
    assert titles == ["ACME Corp", "Ltd"]
    # A value with quotes and braces survives Rasa's /intent{json} parsing.
    payload = reply["buttons"][1]["payload"]
    assert payload.startswith("/rpa_answer{")
    assert json.loads(payload[len("/rpa_answer") :])["rpa_choice"] == '"x"}'
    assert slots(result) == {
        "rpa_question": "Which customer?",
        "rpa_question_id": question_id,
    }


def test_a_free_text_question_points_the_form_at_itself(server, job):
    _, sender = job
    question_id = ask(server, job, choices=[], free_text=True)
    result = server.run_action(
        "action_rpa_ask",
        sender,
        intent="EXTERNAL_rpa_job_question_free_text",
        entities=[{"entity": "rpa_question_id", "value": question_id}],
        domain=DOMAIN,
    )
    assert said(result) == ["utter_rpa_question"]
    assert result["responses"][0].get("buttons") in (None, [])
    assert slots(result)["rpa_answering"] == question_id
    assert slots(result)["rpa_answer"] is None


def test_a_button_answer_reaches_the_robot_and_the_first_one_wins(server, job):
    _, sender = job
    question_id = ask(server, job)
    first = click(server, sender, question_id, "ACME Ltd", message_id="m1")
    assert said(first) == ["utter_rpa_answer_received"]
    assert stored(server, job, question_id)["answer"] == "ACME Ltd"
    # Rasa retrying the same call: the same answer, told again, recorded once.
    again = click(server, sender, question_id, "ACME Ltd", message_id="m1")
    assert said(again) == ["utter_rpa_answer_received"]
    second = click(server, sender, question_id, "ACME Corp", message_id="m2")
    assert said(second) == ["utter_rpa_answer_already_given"]
    assert stored(server, job, question_id)["answer"] == "ACME Ltd"


def test_answers_that_cannot_be_taken_get_a_polite_reply(server, job):
    job_id, sender = job
    question_id = ask(server, job)
    stranger = uuid.uuid4().hex
    assert said(click(server, stranger, question_id, "ACME Ltd")) == [
        "utter_rpa_answer_unknown"
    ]
    forged = click(server, sender, question_id, "Someone else")
    assert said(forged) == ["utter_rpa_answer_not_a_choice"]
    assert [b["title"] for b in forged["responses"][0]["buttons"]] == [
        "ACME Corp",
        "ACME Ltd",
    ]
    no_question = server.run_action(
        "action_rpa_answer", sender, intent="rpa_answer", domain=DOMAIN
    )
    assert said(no_question) == ["utter_rpa_answer_unknown"]
    assert stored(server, job, question_id)["status"] == "open"
    expiring = ask(server, job, timeout=1)
    server.wait_job(job_id, sender, "running")
    requests.get(  # the robot's wait notices the timeout
        f"{server.url}/rpa/v1/jobs/{job_id}/questions/{expiring}",
        params={"wait": "3s"},
        headers={"Authorization": f"Bearer {server.keys.mint_token(job_id, sender)}"},
        timeout=10,
    )
    late = click(server, sender, expiring, "ACME Ltd")
    assert said(late) == ["utter_rpa_answer_expired"]


def test_an_answer_after_the_job_ended_changes_nothing(server, job):
    job_id, sender = job
    question_id = ask(server, job)
    server.run_action("action_cancel_rpa_job", sender)
    server.wait_job(job_id, sender, "cancelled")
    assert said(click(server, sender, question_id, "ACME Ltd")) == [
        "utter_rpa_answer_job_ended"
    ]
    assert stored(server, job, question_id)["status"] == "closed"


def test_the_forms_words_are_the_answer(server, job):
    _, sender = job
    question_id = ask(server, job, free_text=True)
    form = {"rpa_answer": "  acme ltd ", "rpa_answering": question_id}
    result = server.run_action(
        "action_rpa_answer",
        sender,
        intent="greet",
        domain=DOMAIN,
        slots=form,
        latest_action="rpa_answer_form",
    )
    assert said(result) == ["utter_rpa_answer_received"]
    # Words that name a choice answer with its value; the form's slots reset.
    assert stored(server, job, question_id)["answer"] == "ACME Ltd"
    assert slots(result) == {"rpa_answer": None, "rpa_answering": None}
    words = ask(server, job, choices=[], free_text=True)
    server.run_action(
        "action_rpa_answer",
        sender,
        intent="greet",
        domain=DOMAIN,
        slots={"rpa_answer": "Call it Q3", "rpa_answering": words},
        latest_action="rpa_answer_form",
    )
    assert stored(server, job, words)["answer"] == "Call it Q3"


def test_a_form_that_ended_without_words_says_nothing(server, job):
    _, sender = job
    result = server.run_action(
        "action_rpa_answer",
        sender,
        domain=DOMAIN,
        slots={"rpa_answer": None, "rpa_answering": "q-gone"},
        latest_action="rpa_answer_form",
    )
    assert result["responses"] == []
    assert slots(result) == {"rpa_answer": None, "rpa_answering": None}


def test_the_form_ends_once_its_question_is_closed(server, job):
    _, sender = job
    question_id = ask(server, job, free_text=True)

    def validate(**slot_values: Any) -> list[dict[str, Any]]:
        result = server.run_action(
            "validate_rpa_answer_form", sender, domain=DOMAIN, slots=slot_values
        )
        assert result["responses"] == []
        events: list[dict[str, Any]] = result["events"]
        return events

    assert validate(rpa_answering=question_id) == []  # open: keep waiting
    assert validate(rpa_answering=question_id, rpa_answer="words") == []
    click(server, sender, question_id, "ACME Corp")
    ended = validate(rpa_answering=question_id)
    assert [(e["name"], e["value"]) for e in ended] == [("requested_slot", None)]
    # Words typed meanwhile still reach action_rpa_answer, for a polite reply.
    assert validate(rpa_answering=question_id, rpa_answer="late words") == []


def test_status_mentions_the_open_question(server, job):
    _, sender = job
    ask(server, job, text="Which invoice first?")
    result = server.run_action("action_rpa_job_status", sender, domain=DOMAIN)
    replies = result["responses"]
    assert [r["response"] for r in replies][-1] == "utter_rpa_status_question"
    assert replies[-1]["rpa_question"] == "Which invoice first?"
