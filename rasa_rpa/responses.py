"""Every sentence the plugin can put in the chat, as a named response.

Each is a Rasa response name with its English default. ``rasa-rpa domain``
and ``rasa-rpa init`` write these defaults into a bot's domain, where the
bot's developer rewords or translates them; the actions say a default
themselves only when the domain lacks the response (:func:`fallback`), so
the two can never drift apart.

The variables are those of :mod:`rasa_rpa.variables` plus the few an
action adds (``rpa_count``, ``rpa_missing``, and ``rpa_question``, the
words of a robot's question); ``utter_rpa_job_file`` adds the file's
(``rpa_file_title``, ``rpa_file_name``, ``rpa_file_size``, ``rpa_file_url``).
News responses
(``utter_rpa_job_<state>``) are uttered by the bot's rules and read the
variables from slots; action responses get them as arguments.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACTION_TEXTS",
    "GENERIC_NEWS_TEXT",
    "NEWS_TEXTS",
    "QUESTION_NEWS_TEXTS",
    "STATUS_RESPONSES",
    "fallback",
]

#: What the bot's rules say when a job's news arrives, by news (the intent's
#: suffix: ``EXTERNAL_rpa_job_<news>``).
NEWS_TEXTS: dict[str, str] = {
    "running": "The robot is now working on your {rpa_title} job ({rpa_job_ref}).",
    "progress": "Progress: {rpa_progress}% - {rpa_message}",
    "succeeded": "Your {rpa_title} job ({rpa_job_ref}) is done.",
    "failed": "Sorry, your {rpa_title} job ({rpa_job_ref}) failed: {rpa_error}",
    "cancelled": "Your {rpa_title} job ({rpa_job_ref}) was cancelled.",
    "expired": "Your {rpa_title} job ({rpa_job_ref}) was stopped: {rpa_error}",
    # A markdown link: the widget shows the words, the link stays behind them.
    "file": (
        "[Download the {rpa_file_title} ({rpa_file_name}, {rpa_file_size})]"
        "({rpa_file_url})"
    ),
}
#: What the bot's rules say when a question's news arrives, by response.
QUESTION_NEWS_TEXTS: dict[str, str] = {
    "utter_rpa_question_expired": (
        "Nobody answered in time, so the question from your {rpa_title} job "
        "({rpa_job_ref}) has expired: {rpa_question}"
    ),
}
#: For news a future state brings before its wording does.
GENERIC_NEWS_TEXT = "Your {rpa_title} job ({rpa_job_ref}) is now {rpa_state}."

#: The status answer: one response per state, so each can be worded (and
#: translated) on its own. ``progress`` is a running job that reported how
#: far it got; ``news`` follows with its latest message.
STATUS_RESPONSES: dict[str, str] = {
    "pending": "utter_rpa_status_pending",
    "running": "utter_rpa_status_running",
    "progress": "utter_rpa_status_progress",
    "succeeded": "utter_rpa_status_succeeded",
    "failed": "utter_rpa_status_failed",
    "cancelled": "utter_rpa_status_cancelled",
    "expired": "utter_rpa_status_expired",
    "news": "utter_rpa_status_news",
    "more": "utter_rpa_status_more",
}

#: What the actions say, by response name.
ACTION_TEXTS: dict[str, str] = {
    "utter_rpa_job_started": (
        "OK, I started your {rpa_title} job (reference {rpa_job_ref}). "
        "I'll keep you posted."
    ),
    "utter_rpa_job_start_failed": (
        "Sorry, I couldn't start your {rpa_title} job: {rpa_error}."
    ),
    "utter_rpa_job_already_running": (
        "Your {rpa_title} job ({rpa_job_ref}) is still running, so I did not "
        "start another one. I'll keep you posted."
    ),
    "utter_rpa_missing_inputs": "To start your {rpa_title} job I need: {rpa_missing}.",
    "utter_rpa_unknown_automation": "Sorry, I don't know which task to run for that.",
    "utter_rpa_no_job": "You have not started any job in this conversation.",
    "utter_rpa_status_pending": (
        "Your {rpa_title} job ({rpa_job_ref}) is queued ({rpa_elapsed} so far)."
    ),
    "utter_rpa_status_running": (
        "Your {rpa_title} job ({rpa_job_ref}) is running ({rpa_elapsed} so far)."
    ),
    "utter_rpa_status_progress": (
        "Your {rpa_title} job ({rpa_job_ref}) is {rpa_progress}% done "
        "({rpa_elapsed} so far)."
    ),
    "utter_rpa_status_news": "Latest news: {rpa_message}",
    "utter_rpa_status_succeeded": (
        "Your {rpa_title} job ({rpa_job_ref}) finished successfully after "
        "{rpa_elapsed}."
    ),
    "utter_rpa_status_failed": (
        "Your {rpa_title} job ({rpa_job_ref}) failed after {rpa_elapsed}: {rpa_error}"
    ),
    "utter_rpa_status_cancelled": (
        "Your {rpa_title} job ({rpa_job_ref}) was cancelled after {rpa_elapsed}."
    ),
    "utter_rpa_status_expired": (
        "Your {rpa_title} job ({rpa_job_ref}) was stopped after {rpa_elapsed}: "
        "{rpa_error}"
    ),
    "utter_rpa_status_more": "And {rpa_count} more.",
    "utter_rpa_job_cancelling": (
        "OK, I'm stopping your {rpa_title} job ({rpa_job_ref})."
    ),
    "utter_rpa_jobs_cancelling": (
        "OK, I'm stopping your {rpa_count} jobs ({rpa_title})."
    ),
    "utter_rpa_job_cancel_failed": (
        "Sorry, I could not stop your {rpa_title} job ({rpa_job_ref}). "
        "It may still be running."
    ),
    "utter_rpa_job_already_finished": (
        "Your {rpa_title} job ({rpa_job_ref}) has already ended."
    ),
    "utter_rpa_records_unavailable": (
        "Sorry, my job records are unavailable right now; please try again soon."
    ),
    # A robot's question (rasa_rpa.question_actions); the choices come as
    # buttons. {rpa_question} is the robot's own words.
    "utter_rpa_question": "Your {rpa_title} job ({rpa_job_ref}) asks: {rpa_question}",
    "utter_rpa_status_question": "It is waiting for your answer to: {rpa_question}",
    "utter_rpa_answer_received": (
        "Thanks, I passed your answer on to your {rpa_title} job ({rpa_job_ref})."
    ),
    "utter_rpa_answer_already_given": (
        "That question was already answered, so I kept the first answer."
    ),
    "utter_rpa_answer_expired": (
        "Sorry, that question has expired, so your answer did not reach the robot."
    ),
    "utter_rpa_answer_job_ended": (
        "Your {rpa_title} job ({rpa_job_ref}) has already ended, so it no longer "
        "needs an answer."
    ),
    "utter_rpa_answer_unknown": "Sorry, I don't know which question that answers.",
    "utter_rpa_answer_not_a_choice": "Please pick one of the answers offered.",
}
assert set(STATUS_RESPONSES.values()) <= set(ACTION_TEXTS)


class _Blank(dict[str, Any]):
    """Formatting values where a missing variable reads as nothing, not a crash."""

    def __missing__(self, key: str) -> str:
        return ""


def fallback(response: str, variables: Mapping[str, Any]) -> str:
    """The English default of ``response`` with ``variables`` filled in."""
    template = ACTION_TEXTS[response]
    return string.Formatter().vformat(template, (), _Blank(variables))
