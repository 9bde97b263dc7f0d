"""The job state machine and what each event tells the user."""

from __future__ import annotations

import pytest

from rasa_rpa.lifecycle import apply_event, status_entities
from rasa_rpa.models import FINAL_STATES, EventType, Job, JobEvent, JobState
from rasa_rpa.variables import TECHNICAL_PROBLEM, job_ref


def job(state: JobState = JobState.PENDING) -> Job:
    return Job(
        id="j1",
        automation="orders",
        provider="local",
        conversation_id="c1",
        state=state,
    )


def event(kind: EventType, **data) -> JobEvent:
    return JobEvent(f"e-{kind.value}", "j1", kind, data)


def test_started_moves_pending_to_running_and_notifies():
    outcome = apply_event(job(), event(EventType.STARTED))
    assert outcome.job.state is JobState.RUNNING
    assert outcome.job.started_at is not None
    [message] = outcome.outbox
    assert message.payload["name"] == "EXTERNAL_rpa_job_running"


def test_progress_carries_percent_and_message():
    outcome = apply_event(
        job(JobState.RUNNING), event(EventType.PROGRESS, progress=40, message="Reading")
    )
    assert outcome.job.progress == 40
    entities = outcome.outbox[0].payload["entities"]
    assert entities["rpa_progress"] == 40
    assert entities["rpa_message"] == "Reading"
    assert outcome.outbox[0].payload["name"] == "EXTERNAL_rpa_job_progress"


def test_success_flattens_outputs_into_entities():
    outcome = apply_event(
        job(JobState.RUNNING),
        event(EventType.SUCCEEDED, outputs={"order_count": 3, "rows": [1, 2]}),
    )
    assert outcome.job.state is JobState.SUCCEEDED
    assert outcome.job.finished_at is not None
    entities = outcome.outbox[0].payload["entities"]
    assert entities["order_count"] == 3
    assert entities["rows"] == "[1,2]"
    assert entities["rpa_state"] == "succeeded"


def test_failure_keeps_the_reason():
    outcome = apply_event(
        job(JobState.RUNNING), event(EventType.FAILED, error="Unknown customer")
    )
    assert outcome.job.error == "Unknown customer"
    assert outcome.outbox[0].payload["entities"]["rpa_error"] == "Unknown customer"


@pytest.mark.parametrize(
    "final", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED]
)
@pytest.mark.parametrize("kind", [k for k in EventType if k is not EventType.FILE])
def test_final_jobs_never_move(final, kind):
    before = job(final)
    outcome = apply_event(before, event(kind, text="late", slots={"a": 1}))
    assert outcome.job == before
    assert not outcome.applied
    assert outcome.outbox == []


def test_message_becomes_a_bot_event_with_side_effects():
    outcome = apply_event(
        job(JobState.RUNNING),
        event(
            EventType.MESSAGE,
            text="Found 3",
            buttons=[{"title": "OK", "payload": "/ok"}],
        ),
    )
    [message] = outcome.outbox
    assert message.kind == "events"
    assert message.payload["execute_side_effects"] is True
    [bot] = message.payload["events"]
    assert bot["event"] == "bot"
    assert bot["text"] == "Found 3"
    assert bot["data"]["buttons"][0]["title"] == "OK"
    assert outcome.job.state is JobState.RUNNING


def test_slots_become_slot_events():
    outcome = apply_event(
        job(JobState.RUNNING), event(EventType.SLOTS, slots={"customer": "ACME"})
    )
    assert outcome.outbox[0].payload["events"] == [
        {"event": "slot", "name": "customer", "value": "ACME"}
    ]


def test_second_started_is_silent():
    outcome = apply_event(job(JobState.RUNNING), event(EventType.STARTED))
    assert outcome.outbox == []


def test_events_that_were_already_told_are_not_queued():
    quiet = JobEvent("x", "j1", EventType.FAILED, {"error": "boom"}, notify=False)
    outcome = apply_event(job(), quiet)
    assert outcome.job.state is JobState.FAILED
    assert outcome.outbox == []


def test_status_entities_skip_empty_fields():
    entities = status_entities(job(), now=job().created_at + 3)
    assert entities == {
        "rpa_job_id": "j1",
        "rpa_automation": "orders",
        "rpa_title": "orders",
        "rpa_job_ref": job_ref("j1"),
        "rpa_state": "pending",
        "rpa_elapsed": "3 s",
    }


def test_news_names_the_automation_by_title_and_hides_internal_reasons():
    planned = apply_event(
        job(JobState.RUNNING),
        event(EventType.FAILED, error="OSError: cannot open /srv/orders.csv"),
        titles={"orders": "order report"},
    )
    entities = planned.outbox[0].payload["entities"]
    assert entities["rpa_title"] == "order report"
    assert entities["rpa_error"] == TECHNICAL_PROBLEM
    assert planned.job.error == "OSError: cannot open /srv/orders.csv"  # operators'


def test_handover_follows_a_failure_in_the_same_outcome():
    from rasa_rpa.lifecycle import with_handover

    plan = with_handover(apply_event, "EXTERNAL_handover_to_human",
                         frozenset({JobState.FAILED}), frozenset())
    outcome = plan(job(JobState.RUNNING), event(EventType.FAILED, error="locked"))
    assert [m.payload["name"] for m in outcome.outbox] == [
        "EXTERNAL_rpa_job_failed", "EXTERNAL_handover_to_human"]
    assert outcome.outbox[1].payload["entities"]["rpa_error"] == "locked"
    success = plan(job(JobState.RUNNING), event(EventType.SUCCEEDED))
    assert len(success.outbox) == 1
    opted_out = with_handover(apply_event, "EXTERNAL_handover_to_human",
                              frozenset({JobState.FAILED}), frozenset({"orders"}))
    assert len(opted_out(job(JobState.RUNNING), event(EventType.FAILED)).outbox) == 1
    late = plan(job(JobState.FAILED), event(EventType.FAILED))
    assert late.outbox == []


# -- questions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_text", "intent"),
    [
        (False, "EXTERNAL_rpa_job_question"),
        (True, "EXTERNAL_rpa_job_question_free_text"),
    ],
)
def test_a_question_asks_without_moving_the_job(free_text, intent):
    running = job(JobState.RUNNING)
    asked = JobEvent(
        "q1",
        "j1",
        EventType.QUESTION,
        {"text": "Which customer?", "choices": ["A", "B"], "free_text": free_text},
    )
    outcome = apply_event(running, asked, {"orders": "order report"})
    assert outcome.job is running and outcome.applied
    [message] = outcome.outbox
    assert message.payload["name"] == intent
    entities = message.payload["entities"]
    assert entities["rpa_question"] == "Which customer?"
    assert entities["rpa_question_id"] == "q1"
    assert entities["rpa_title"] == "order report"


def test_an_expiry_tells_the_user_and_an_answer_tells_nobody():
    running = job(JobState.RUNNING)
    expired = event(EventType.QUESTION_EXPIRED, question_id="q1", question="Which?")
    [message] = apply_event(running, expired).outbox
    assert message.payload["name"] == "EXTERNAL_rpa_job_question_expired"
    assert message.payload["entities"]["rpa_question"] == "Which?"
    answer = event(EventType.ANSWER, question_id="q1", answer="A")
    answered = apply_event(running, answer)
    assert answered.applied and answered.outbox == []


def test_robots_can_ask_but_not_answer_or_expire():
    from rasa_rpa.models import ROBOT_EVENT_TYPES

    assert EventType.QUESTION in ROBOT_EVENT_TYPES
    assert EventType.ANSWER not in ROBOT_EVENT_TYPES
    assert EventType.QUESTION_EXPIRED not in ROBOT_EVENT_TYPES


FILE_DATA = {
    "file_id": "f1",
    "name": "orders-ACME.xlsx",
    "title": "order report",
    "size": 6144,
    "size_words": "6 KB",
}


def test_a_file_is_news_with_its_link_and_the_jobs_variables():
    links = []

    def link(file_id: str, now: float) -> str:
        links.append((file_id, now))
        return f"https://bot.example/rpa/files/{file_id}?sig"

    sent = JobEvent("file:u1", "j1", EventType.FILE, FILE_DATA, received_at=50.0)
    before = job(JobState.RUNNING)
    outcome = apply_event(before, sent, {"orders": "order details report"}, link)
    assert outcome.job is before and outcome.applied
    [message] = outcome.outbox
    assert message.payload["name"] == "EXTERNAL_rpa_job_file"
    entities = message.payload["entities"]
    assert entities["rpa_file_title"] == "order report"
    assert entities["rpa_file_name"] == "orders-ACME.xlsx"
    assert entities["rpa_file_size"] == "6 KB"
    assert entities["rpa_file_url"] == "https://bot.example/rpa/files/f1?sig"
    assert entities["rpa_title"] == "order details report"
    # The link counts from when the file arrived: the same event, the same link.
    assert links == [("f1", 50.0)]


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_a_file_for_an_ended_job_is_still_news_and_moves_nothing(final):
    before = job(final)
    outcome = apply_event(before, JobEvent("file:u1", "j1", EventType.FILE, FILE_DATA))
    assert outcome.job is before
    assert [m.payload["name"] for m in outcome.outbox] == ["EXTERNAL_rpa_job_file"]
