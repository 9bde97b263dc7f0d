"""How the actions speak: the bot's responses, else the English defaults.

Kept apart from :mod:`rasa_rpa.actions` so the actions read as decisions
(which job, which outcome) and the wording lives in :mod:`rasa_rpa.responses`.
Every sentence goes through :func:`say`, so each one is a response a bot can
reword or translate, with the variables of :mod:`rasa_rpa.variables`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from rasa_rpa.errors import StoreError
from rasa_rpa.models import Job, JobState
from rasa_rpa.responses import STATUS_RESPONSES, fallback
from rasa_rpa.variables import job_variables

__all__ = [
    "LISTED",
    "DomainDict",
    "records_unavailable",
    "say",
    "say_status",
    "titles_of",
]

log = logging.getLogger(__name__)
DomainDict = dict[str, Any]
#: Unfinished jobs a status reply describes one by one; the rest are counted,
#: so a long list never drowns the chat.
LISTED = 3


def say(
    dispatcher: CollectingDispatcher,
    domain: DomainDict,
    response: str,
    *,
    buttons: list[dict[str, Any]] | None = None,
    **variables: Any,
) -> None:
    """Utter ``response`` if the domain defines it, else its English default.

    ``buttons`` go with either: Rasa adds them to the response's own.
    """
    extra: dict[str, Any] = {"buttons": buttons} if buttons else {}
    if response in (domain.get("responses") or {}):
        dispatcher.utter_message(response=response, **extra, **variables)
    else:
        dispatcher.utter_message(text=fallback(response, variables), **extra)


def records_unavailable(
    dispatcher: CollectingDispatcher, domain: DomainDict, error: StoreError
) -> list[dict[str, Any]]:
    """Tell the user the job store failed; log why. Rasa gets an answer, no 500.

    The store also fails on what it cannot hold, such as a NUL byte in a
    conversation id on PostgreSQL, so this is not only for outages.
    """
    log.warning("the job store failed: %s", error)
    say(dispatcher, domain, "utter_rpa_records_unavailable")
    return []


def say_status(
    dispatcher: CollectingDispatcher,
    domain: DomainDict,
    jobs: list[Job],
    titles: Mapping[str, str],
    now: float | None = None,
) -> None:
    """The first :data:`LISTED` of ``jobs``, each in its state's response; the
    rest counted."""
    for job in jobs[:LISTED]:
        variables = job_variables(job, titles, now)
        state = job.state.value
        if job.state is JobState.RUNNING and job.progress is not None:
            state = "progress"
        if job.state in (JobState.FAILED, JobState.EXPIRED):
            variables.setdefault("rpa_error", "no reason was given")
        say(dispatcher, domain, STATUS_RESPONSES[state], **variables)
        if job.message and not job.state.is_final:
            say(dispatcher, domain, STATUS_RESPONSES["news"], **variables)
    more = len(jobs) - LISTED
    if more > 0:
        say(dispatcher, domain, STATUS_RESPONSES["more"], rpa_count=more)


def titles_of(jobs: Iterable[Job], titles: Mapping[str, str]) -> str:
    """The automations of ``jobs`` by title, each named once, in the order given."""
    return ", ".join(
        dict.fromkeys(titles.get(j.automation, j.automation) for j in jobs)
    )
