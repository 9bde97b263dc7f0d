"""What the actions say: domain responses with plain-English fallbacks.

Kept apart from :mod:`rasa_rpa.actions` so the actions read as decisions
(which job, which outcome) and the wording lives in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from rasa_rpa.errors import StoreError
from rasa_rpa.models import Job, JobState

__all__ = [
    "LISTED",
    "RECORDS_UNAVAILABLE",
    "DomainDict",
    "automations_of",
    "describe_job",
    "describe_jobs",
    "records_unavailable",
    "say",
]

log = logging.getLogger(__name__)
DomainDict = dict[str, Any]
RECORDS_UNAVAILABLE = "my job records are unavailable right now; please try again soon"
#: Unfinished jobs a status reply describes one by one; the rest are counted,
#: so a long list never drowns the chat.
LISTED = 3


def say(
    dispatcher: CollectingDispatcher,
    domain: DomainDict,
    response: str,
    text: str,
    **variables: Any,
) -> None:
    """Utter ``response`` if the domain defines it, else ``text``."""
    if response in (domain.get("responses") or {}):
        dispatcher.utter_message(response=response, **variables)
    else:
        dispatcher.utter_message(text=text)


def records_unavailable(
    dispatcher: CollectingDispatcher, domain: DomainDict, error: StoreError
) -> list[dict[str, Any]]:
    """Tell the user the job store failed; log why. Rasa gets an answer, no 500.

    The store also fails on what it cannot hold, such as a NUL byte in a
    conversation id on PostgreSQL, so this is not only for outages.
    """
    log.warning("the job store failed: %s", error)
    say(
        dispatcher,
        domain,
        "utter_rpa_records_unavailable",
        f"Sorry, {RECORDS_UNAVAILABLE}.",
    )
    return []


def describe_job(job: Job, now: float | None = None) -> str:
    """One sentence a user understands: state, progress, last news, elapsed time."""
    elapsed = _duration(job.elapsed(now))
    if job.state is JobState.PENDING:
        return f"Your {job.automation} job is queued (for {elapsed} so far)."
    if job.state is JobState.RUNNING:
        progress = f", {job.progress:.0f}% done" if job.progress is not None else ""
        news = f" Latest: {job.message}." if job.message else ""
        return f"Your {job.automation} job is running{progress} ({elapsed}).{news}"
    if job.state is JobState.SUCCEEDED:
        return f"Your {job.automation} job finished successfully after {elapsed}."
    reason = f": {job.error}" if job.error else ""
    return f"Your {job.automation} job {job.state.value} after {elapsed}{reason}."


def describe_jobs(jobs: list[Job], now: float | None = None) -> str:
    """The first :data:`LISTED` of ``jobs`` described, the rest counted."""
    text = " ".join(describe_job(job, now) for job in jobs[:LISTED])
    more = len(jobs) - LISTED
    return f"{text} And {more} more." if more > 0 else text


def automations_of(jobs: Iterable[Job]) -> str:
    """The automations of ``jobs``, each named once, in the order given."""
    return ", ".join(dict.fromkeys(job.automation for job in jobs))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
