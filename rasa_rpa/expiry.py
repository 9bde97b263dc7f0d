"""What a job's expiry says, to the user and to the operator.

A job that runs out of time after its robot reported (started, progress, a
chat line) went quiet: "no result after 120s (timeout)". A job whose robot
never said a word is a different story, and the usual one on a new set-up:
the robot never started, or it cannot reach ``callbacks.public_url``, or its
callbacks are refused. The user is told only that the robot never reported
back (plain words: no URL, no key); the operator gets the likely causes in
the log and in the event's ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa_rpa.models import Job, JobState

__all__ = ["NEVER_REPORTED", "expiry_data", "heard_from_robot"]

#: The user's words for a robot that never called back.
NEVER_REPORTED = "the robot never reported back"
#: Event sources of the plugin's own verdicts; every other source is news from
#: the robot or its vendor (a callback, a webhook, a poll, an exit code).
_OWN_SOURCES = frozenset({"plugin", "reconciler"})


def heard_from_robot(job: Job, events: Iterable[dict[str, Any]]) -> bool:
    """Whether anything came from the job's robot: a running job has (it said
    it started, or a poll saw it); a pending one may have sent a chat line."""
    if job.state is not JobState.PENDING:
        return True
    return any(event["source"] not in _OWN_SOURCES for event in events)


def expiry_data(
    job: Job, events: Iterable[dict[str, Any]], now: float, public_url: str
) -> dict[str, str]:
    """The expired event's data: ``error`` for the user, ``detail`` for operators."""
    waited = now - job.created_at
    if heard_from_robot(job, events):
        return {"error": f"no result after {waited:.0f}s (timeout)"}
    return {
        "error": NEVER_REPORTED,
        "detail": f"no callback arrived from the robot in {waited:.0f}s: it never "
        f"started, or it cannot reach callbacks.public_url ({public_url}), or its "
        "callbacks are refused (look for 401s in the action server's log)",
    }
