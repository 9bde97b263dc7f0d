"""Compatibility alias of :mod:`rasa_rpa_robot.client` (same objects)."""

from __future__ import annotations

from rasa_rpa_robot.client import (
    ENV_EVENTS_URL,
    ENV_JOB_ID,
    ENV_RETRY_FOR,
    ENV_SIGNING_SECRET,
    ENV_TOKEN,
    CallbackRefused,
    QuestionExpired,
    RobotClient,
    current_client,
)

__all__ = [
    "ENV_EVENTS_URL",
    "ENV_JOB_ID",
    "ENV_RETRY_FOR",
    "ENV_SIGNING_SECRET",
    "ENV_TOKEN",
    "CallbackRefused",
    "QuestionExpired",
    "RobotClient",
    "current_client",
]
