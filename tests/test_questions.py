"""What a question is, what a robot may send, and what an answer stands for."""

from __future__ import annotations

import pytest

from rasa_rpa.questions import (
    Choice,
    Question,
    QuestionStatus,
    check_question,
    check_question_id,
    choices_of,
    question_from_data,
)


def question(**fields) -> Question:
    defaults = {
        "job_id": "j1",
        "question_id": "q1",
        "conversation_id": "c1",
        "text": "Which customer?",
        "choices": (Choice("ACME Corp", "C-100"), Choice("ACME Ltd", "C-200")),
        "asked_at": 100.0,
        "expires_at": 160.0,
    }
    return Question(**{**defaults, **fields})


def test_status_follows_answer_timeout_and_job():
    assert question().status(120) is QuestionStatus.OPEN
    assert question(answer="C-100").status(120) is QuestionStatus.ANSWERED
    # Past its timeout it is expired at once, reconciler or not.
    assert question().status(160) is QuestionStatus.EXPIRED
    assert question(expired_at=150).status(120) is QuestionStatus.EXPIRED
    assert question(job_final=True).status(120) is QuestionStatus.CLOSED
    assert question(answer="C-100", job_final=True).status(200) is (
        QuestionStatus.ANSWERED
    )
    assert question().is_open(159.9) and not question().is_open(160)


def test_what_an_answer_stands_for():
    asked = question()
    assert asked.answer_for("C-200", typed=False) == "C-200"
    assert asked.answer_for("ACME Ltd", typed=False) is None  # buttons send values
    assert asked.answer_for("  acme   ltd ", typed=True) == "C-200"
    assert asked.answer_for("c-100", typed=True) == "C-100"
    assert asked.answer_for("Globex", typed=True) is None
    free = question(free_text=True)
    assert free.answer_for("  Globex,  please ", typed=True) == "Globex, please"
    assert free.answer_for("   ", typed=True) is None


def test_choices_are_strings_or_title_and_value():
    assert choices_of(["A", {"title": "B"}, {"title": "C", "value": "c"}]) == (
        Choice("A", "A"),
        Choice("B", "B"),
        Choice("C", "c"),
    )
    made = question_from_data("j1", "q1", "c1", {"text": "T", "choices": ["A"]}, 10.0)
    assert made.expires_at == 610.0  # ten minutes without a timeout
    made = question_from_data("j1", "q1", "c1", {"text": "T", "timeout": "2m"}, 10.0)
    assert made.expires_at == 130.0


@pytest.mark.parametrize("good", ["q1", "customer-1", "a.b_c~d", "x" * 100])
def test_question_ids_fit_in_urls(good):
    check_question_id(good)


@pytest.mark.parametrize("bad", ["", "x" * 101, "a b", "a/b", "é", "a?b"])
def test_other_question_ids_are_refused(bad):
    with pytest.raises(ValueError, match="URLs and buttons"):
        check_question_id(bad)


@pytest.mark.parametrize(
    "data",
    [
        {"text": "T", "choices": ["A"]},
        {"text": "T", "free_text": True},
        {"text": "T", "choices": [{"title": "A", "value": None}], "timeout": 1},
        {"text": "T", "free_text": True, "choices": None, "timeout": "7d"},
    ],
)
def test_good_questions_pass(data):
    check_question(data, "data")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"choices": ["A"]}, "data.text must be a non-empty string"),
        ({"text": "T", "choices": ["A"] * 21}, "at most 20 choices"),
        ({"text": "T", "choices": [{"title": "A", "value": 3}]}, "value must be"),
        ({"text": "T", "choices": ["A"], "timeout": True}, "timeout must be"),
        ({"text": "T", "choices": ["A"], "timeout": 0.5}, "timeout must be"),
        ({"text": "T", "choices": ["A"], "timeout": "8d"}, "timeout must be"),
        ({"text": "x" * 2001, "choices": ["A"]}, "at most 2000 characters"),
    ],
)
def test_bad_questions_name_the_field(data, problem):
    with pytest.raises(ValueError, match=problem):
        check_question(data, "data")
