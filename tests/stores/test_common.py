"""Batch planning, the pure half of recording events (no database)."""

from __future__ import annotations

from rasa_rpa.errors import InvalidPayload, JobNotFound
from rasa_rpa.lifecycle import apply_event
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.stores.base import EventResult
from rasa_rpa.stores.common import plan_batch, storable


def job(job_id: str, conversation: str) -> Job:
    return Job(id=job_id, automation="a", provider="p", conversation_id=conversation)


def test_each_event_sees_the_job_as_the_events_before_it_left_it() -> None:
    jobs = {"a": job("a", "c1")}
    plan = plan_batch(
        [
            (JobEvent("e1", "a", EventType.STARTED, {}), None),
            (JobEvent("e2", "a", EventType.PROGRESS, {"progress": 40}), None),
            (JobEvent("e3", "a", EventType.SUCCEEDED, {"outputs": {"n": 3}}), None),
            (JobEvent("e4", "a", EventType.FAILED, {"error": "late"}), None),
        ],
        jobs,
        set(),
        apply_event,
    )
    results = [r for r in plan.results if isinstance(r, EventResult)]
    assert len(results) == 4
    states = [r.job.state for r in results]
    assert states == [JobState.RUNNING] * 2 + [JobState.SUCCEEDED] * 2
    assert [r.applied for r in results] == [True, True, True, False]
    assert [row[1] for row in plan.events] == ["e1", "e2", "e3", "e4"]
    assert [row[5] for row in plan.events] == [True, True, True, False]
    # One final state per job, and the outbox rows in event order.
    assert plan.jobs["a"].outputs == {"n": 3} and plan.jobs["a"].progress == 100.0
    assert [row[0] for row in plan.outbox] == ["c1"] * 3
    assert plan.conversations == ["c1"]
    assert jobs["a"].state is JobState.PENDING  # the input is not changed


def test_duplicates_refusals_and_unstorable_text_write_nothing() -> None:
    plan = plan_batch(
        [
            (JobEvent("old", "a", EventType.PROGRESS, {"progress": 1}), None),
            (JobEvent("e1", "ghost", EventType.STARTED, {}), None),
            (JobEvent("bad\x00", "a", EventType.STARTED, {}), None),
            (JobEvent("\ud800", "a", EventType.STARTED, {}), None),
            (JobEvent("e2", "a", EventType.STARTED, {}), None),
            (JobEvent("e2", "a", EventType.PROGRESS, {"progress": 9}), None),
        ],
        {"a": job("a", "c1")},
        {("a", "old")},
        apply_event,
    )
    kinds = [type(r).__name__ for r in plan.results]
    assert kinds[1:4] == ["JobNotFound", "InvalidPayload", "InvalidPayload"]
    assert isinstance(plan.results[1], JobNotFound)
    assert isinstance(plan.results[2], InvalidPayload)
    assert [r.duplicate for r in plan.results if not isinstance(r, Exception)] == [
        True,
        False,
        True,
    ]
    assert [row[1] for row in plan.events] == ["e2"]
    assert len(plan.outbox) == 1


def test_storable_names_what_a_database_would_reject() -> None:
    assert storable(JobEvent("e1", "a", EventType.STARTED, {"x": "\x00 in data is ok"}))
    assert not storable(JobEvent("e\x00", "a", EventType.STARTED, {}))
    assert not storable(JobEvent("e1", "a\ud800", EventType.STARTED, {}))


def test_json_columns_are_written_as_strict_json() -> None:
    """NaN and Infinity are not JSON: a column never holds them (null instead)."""
    import json

    from rasa_rpa.stores.common import dump

    text = dump({"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 1.5})

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} written")

    assert json.loads(text, parse_constant=refuse) == {
        "a": None,
        "b": [None, None],
        "c": 1.5,
    }
