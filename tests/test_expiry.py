"""What an expiry says: a robot never heard from, or one that went quiet."""

from __future__ import annotations

from rasa_rpa.expiry import NEVER_REPORTED, expiry_data, heard_from_robot
from rasa_rpa.models import Job, JobState

PUBLIC = "http://127.0.0.1:5055"


def job(state: JobState = JobState.PENDING) -> Job:
    return Job("j1", "orders", "local", "c1", state=state, created_at=1000.0)


def event(source: str) -> dict[str, object]:
    return {"id": "e", "type": "message", "data": {}, "source": source}


def test_only_the_plugins_own_events_mean_silence():
    assert not heard_from_robot(job(), [])
    assert not heard_from_robot(job(), [event("plugin"), event("reconciler")])
    for source in ("robot", "uipath-webhook", "aa-poll", "botpress-compat"):
        assert heard_from_robot(job(), [event(source)]), source
    assert heard_from_robot(job(JobState.RUNNING), [])  # it said it started


def test_the_user_gets_plain_words_the_operator_the_causes():
    data = expiry_data(job(), [], now=1120.0, public_url=PUBLIC)
    assert data["error"] == NEVER_REPORTED == "the robot never reported back"
    assert "in 120s" in data["detail"] and PUBLIC in data["detail"]
    assert "401" in data["detail"] and "never started" in data["detail"]
    quiet = expiry_data(job(JobState.RUNNING), [], now=1120.0, public_url=PUBLIC)
    assert quiet == {"error": "no result after 120s (timeout)"}
