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
    "user_message",
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


#: Characters that are invisible, reorder text or drive a terminal: C0 and C1
#: controls, zero-width and bidi marks ("Invoice \u202egnp.exe" reads as
#: "Invoice exe.png"). Removed from whatever a robot says to a user.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff]"
)
#: What only an operator should see, each matched as a whole token so that a
#: robot's message can keep its words and lose just these.
_INTERNAL = re.compile(
    r"""
      [a-z][a-z0-9+.\-]*://\S*                   # a URL
    | (?<![\w/])//[\w-]+(?:\.[\w-]+)+\S*          # a scheme-less URL
    | \bwww\.[\w-]+\.\S*                         # a bare web address
    | \b(?:javascript|vbscript|data|file):\S*      # an active or local link
    | \]\(\S*                                     # a markdown link
    | <\s*/?[a-z!][^>]*>?                         # an HTML tag
    | (?<![\w/.])(?:~|\.{1,2})?/[^\s/'"]+/\S*     # a path with a folder in it
    | (?<![\w/])~/\S*                             # a home folder
    | \b[A-Za-z]:\\\S*                           # a Windows path
    | \\\\[\w.$-]+\\\S*                          # a network share
    | \b[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b  # an exception
    | \bTraceback\b | \bErrno\b | \bFile\ "     # a stack trace
    | \bat\ [\w$]+(?:\.[\w$<>]+){2,}\(\S*        # a Java or .NET frame
    | \b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b  # a GUID
    | \b[0-9a-f]{16,}\b                          # an internal id
    | \b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b        # an IP address
    | \b[\w-]+\.(?:py|robot|resource|java|cs|js|ya?ml|json|ini|cfg|env)\b  # a file
    """,
    re.IGNORECASE | re.VERBOSE,
)


#: A terminal's escape sequence (colours, cursor moves): ESC [ ... letter.
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


#: The most of a robot's text that is looked at: only MOST_REASON_CHARS are
#: ever shown, and _INTERNAL's scan of a word without spaces costs its length
#: squared (a 260 K progress message blocked the event loop for minutes).
_SCANNED_CHARS = 5 * MOST_REASON_CHARS


def _visible(text: str) -> str:
    """The start of ``text`` on one line, without escape sequences or
    invisible characters."""
    text = text[:_SCANNED_CHARS]
    return " ".join(_INVISIBLE.sub("", _ESCAPE.sub("", text)).split())


def _cut(text: str) -> str:
    if len(text) > MOST_REASON_CHARS:
        return text[: MOST_REASON_CHARS - 1].rstrip() + "…"
    return text


def looks_internal(text: str) -> bool:
    """Whether ``text`` shows something only an operator should see."""
    return bool(_INTERNAL.search(text))


def user_reason(reason: str | None) -> str | None:
    """The reason a job failed, fit for the chat; None when there is none.

    A robot's own words ("no customer named Acme") pass; anything that
    names internals becomes :data:`TECHNICAL_PROBLEM`, since a reason with
    its path or exception cut out rarely still makes sense. Long reasons
    are cut.
    """
    text = _visible(reason or "")
    if not text:
        return None
    return TECHNICAL_PROBLEM if looks_internal(text) else _cut(text)


def user_message(message: str | None) -> str | None:
    """A robot's progress message, fit for the chat; None when nothing is left.

    Robots write these for the user, so the words stay; a path, link, id or
    exception in them becomes "…", and long messages are cut.
    """
    text = _visible(message or "")
    text = " ".join(_INTERNAL.sub("…", text).split())
    return _cut(text) if text.strip("… ") else None


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
    message = user_message(job.message)
    if message:
        found["rpa_message"] = message
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
