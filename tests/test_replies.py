"""How the actions speak: the domain's response when it has one, else the default."""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from rasa_rpa.models import Job, JobState
from rasa_rpa.replies import say, say_status, titles_of

TITLES = {"a0": "order report"}


def job(job_id: str, automation: str, **fields: object) -> Job:
    fields.setdefault("state", JobState.RUNNING)
    return Job(job_id, automation, "local", "c", created_at=100, **fields)  # type: ignore[arg-type]


def spoken(jobs: list[Job], domain: dict | None = None) -> list[dict]:
    dispatcher = CollectingDispatcher()
    say_status(dispatcher, domain or {}, jobs, TITLES, now=110)
    return dispatcher.messages


def test_status_names_the_first_three_jobs_and_counts_the_rest():
    jobs = [job(f"j{n}", f"a{n}") for n in range(5)]
    texts = [m["text"] for m in spoken(jobs)]
    assert texts[0].startswith("Your order report job (")
    assert texts[0].endswith(") is running (10 s so far).")
    assert texts[1].startswith("Your a1 job")
    assert texts[3:] == ["And 2 more."]
    assert len(texts) == 4


def test_each_state_has_its_own_response_with_the_jobs_variables():
    domain = {
        "responses": {
            f"utter_rpa_status_{s}": []
            for s in ("progress", "news", "failed", "succeeded")
        }
    }
    running = job("r", "a0", progress=40.0, message="Reading orders")
    failed = job("f", "a0", state=JobState.FAILED, finished_at=170.0, error="x")
    said = spoken([running, failed], domain)
    assert [m["response"] for m in said] == [
        "utter_rpa_status_progress",
        "utter_rpa_status_news",
        "utter_rpa_status_failed",
    ]
    assert said[0]["rpa_progress"] == 40
    assert said[1]["rpa_message"] == "Reading orders"
    assert said[2]["rpa_elapsed"] == "70 s"
    assert said[2]["rpa_title"] == "order report"


def test_a_failure_without_a_reason_still_reads_as_a_sentence():
    [said] = spoken([job("f", "a0", state=JobState.FAILED, finished_at=105.0)])
    assert said["text"].endswith("failed after 5 s: no reason was given")


def test_say_uses_the_domain_response_when_there_is_one():
    dispatcher = CollectingDispatcher()
    say(dispatcher, {"responses": {"utter_rpa_no_job": []}}, "utter_rpa_no_job")
    say(dispatcher, {}, "utter_rpa_no_job")
    assert dispatcher.messages[0]["response"] == "utter_rpa_no_job"
    assert dispatcher.messages[1]["text"] == (
        "You have not started any job in this conversation."
    )


def test_titles_are_named_once_in_order():
    jobs = [job("1", "b"), job("2", "a0"), job("3", "b")]
    assert titles_of(jobs, TITLES) == "b, order report"
