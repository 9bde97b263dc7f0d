"""The variables every user-facing response gets, and the job's short reference.

One vocabulary for both ways words reach the chat: the entities sent with
the ``EXTERNAL_rpa_job_*`` intents (which the bot's slots pick up) and the
keyword arguments the actions pass to ``utter_message``. A bot's responses
can therefore use the same ``{rpa_title}`` or ``{rpa_job_ref}`` whichever
way the sentence is said, and reword or translate all of them.

Nothing internal reaches these variables: the job's id becomes a short
reference (:func:`job_ref`) that operators can look up, and a reason that
reads like a path, URL, exception or stack trace (:func:`user_reason`) is
replaced by plain words; the full text stays in the store, the log and the
monitor under that reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rasa_rpa.jobref import job_ref, ref_id_prefix
from rasa_rpa.models import Job

__all__ = [
    "FILE_VARIABLES",
    "JOB_VARIABLES",
    "TECHNICAL_PROBLEM",
    "duration_words",
    "file_variables",
    "job_ref",
    "job_variables",
    "looks_internal",
    "ref_id_prefix",
    "user_reason",
]

#: What a user is told instead of a reason that names internals.
TECHNICAL_PROBLEM = "the robot ran into a technical problem"
#: Longest reason shown in the chat; the rest is in the log.
MOST_REASON_CHARS = 200

#: Every variable :func:`job_variables` sets, in the order the docs list them.
JOB_VARIABLES = (
    "rpa_automation",
    "rpa_title",
    "rpa_job_ref",
    "rpa_state",
    "rpa_progress",
    "rpa_message",
    "rpa_error",
    "rpa_elapsed",
)

#: What ``utter_rpa_job_file`` gets on top of the job's variables: the file's
#: title ("order report"), name ("orders-ACME.xlsx"), size ("6 KB") and the
#: download link (only ever a link target, never words to read).
FILE_VARIABLES = ("rpa_file_title", "rpa_file_name", "rpa_file_size", "rpa_file_url")


def duration_words(seconds: float) -> str:
    """``42 s``, ``3 min`` or ``1.5 h``: elapsed time a person reads at a glance."""
    if seconds < 90:
        # Never "0 s": "finished after 0 s" reads like nothing happened.
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_INTERNAL = re.compile(
    r"""
      [a-z][a-z0-9+.\-]*://                  # a URL
    | (?:^|[\s'"(=:\[])(?:~|\.{1,2})?/[^\s/'"]+/   # a path with a folder in it
    | (?:^|[\s'"(])[A-Za-z]:\\               # a Windows path
    | \b[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b  # an exception
    | \bTraceback\b | \bErrno\b | \bFile\ "  # a stack trace
    | \b[0-9a-f]{16,}\b                      # an internal id
    | \.(?:py|robot|resource|java|cs|js)\b   # a source file
    """,
    re.IGNORECASE | re.VERBOSE,
)


def looks_internal(text: str) -> bool:
    """Whether ``text`` shows something only an operator should see."""
    return bool(_INTERNAL.search(text))


def user_reason(reason: str | None) -> str | None:
    """The reason a job failed, fit for the chat; None when there is none.

    A robot's own words ("no customer named Acme") pass; anything that
    names internals becomes :data:`TECHNICAL_PROBLEM`. Long reasons are cut.
    """
    if not reason or not reason.strip():
        return None
    text = " ".join(reason.split())
    if looks_internal(text):
        return TECHNICAL_PROBLEM
    if len(text) > MOST_REASON_CHARS:
        text = text[: MOST_REASON_CHARS - 1].rstrip() + "…"
    return text


def job_variables(
    job: Job, titles: Mapping[str, str] | None = None, now: float | None = None
) -> dict[str, Any]:
    """The variables describing ``job`` (see :data:`JOB_VARIABLES`).

    ``titles`` maps automation keys to their ``description`` in rpa.yml;
    without one the key is the title. Progress, message and error are only
    present when the job has them, so a bot's slot keeps no stale value
    from being overwritten with an empty one.
    """
    found: dict[str, Any] = {
        "rpa_automation": job.automation,
        "rpa_title": (titles or {}).get(job.automation) or job.automation,
        "rpa_job_ref": job_ref(job.id),
        "rpa_state": job.state.value,
        "rpa_elapsed": duration_words(job.elapsed(now)),
    }
    if job.progress is not None:
        progress = float(job.progress)
        found["rpa_progress"] = (
            int(progress) if progress.is_integer() else round(progress, 1)
        )
    if job.message:
        found["rpa_message"] = job.message
    reason = user_reason(job.error)
    if reason:
        found["rpa_error"] = reason
    return found


def file_variables(data: Mapping[str, Any], url: str | None) -> dict[str, Any]:
    """The variables describing a file, from its ``file`` event's data.

    The size in words comes with the data (:func:`rasa_rpa.files.size_words`);
    ``url`` is its download link, left out when there is none to give.
    """
    found = {
        "rpa_file_title": data.get("title"),
        "rpa_file_name": data.get("name"),
        "rpa_file_size": data.get("size_words"),
        "rpa_file_url": url,
    }
    return {key: value for key, value in found.items() if value is not None}
