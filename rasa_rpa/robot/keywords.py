"""Compatibility alias of :mod:`rasa_rpa_robot.keywords`.

``Library    rasa_rpa.robot.keywords`` gives the same keywords: Robot
Framework takes a module library's keywords from ``__all__``, which names
the re-exported functions.
"""

from __future__ import annotations

# The explicit "as" re-exports the scope, which Robot Framework reads here.
from rasa_rpa_robot.keywords import (
    ROBOT_LIBRARY_SCOPE as ROBOT_LIBRARY_SCOPE,
    ask_user,
    report_progress,
    send_chat_message,
    send_file,
    set_conversation_slot,
    set_job_output,
)

__all__ = [
    "ask_user",
    "report_progress",
    "send_chat_message",
    "send_file",
    "set_conversation_slot",
    "set_job_output",
]
