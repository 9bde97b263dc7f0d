"""What the actions say when the domain has no response for it."""

from __future__ import annotations

from rasa_rpa.models import Job, JobState
from rasa_rpa.replies import automations_of, describe_jobs


def running(job_id: str, automation: str) -> Job:
    return Job(job_id, automation, "local", "c", state=JobState.RUNNING, created_at=100)


def test_describe_jobs_names_the_newest_and_counts_the_rest():
    jobs = [running(f"j{n}", f"a{n}") for n in range(5)]
    text = describe_jobs(jobs, now=110)
    assert text == (
        "Your a0 job is running (10 s). Your a1 job is running (10 s)."
        " Your a2 job is running (10 s). And 2 more."
    )
    assert describe_jobs(jobs[:1], now=110) == "Your a0 job is running (10 s)."


def test_automations_are_named_once_in_order():
    jobs = [running("1", "b"), running("2", "a"), running("3", "b")]
    assert automations_of(jobs) == "b, a"
