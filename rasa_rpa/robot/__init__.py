"""Robot-side helpers: a callback client, a Robot Framework listener and keywords."""

from __future__ import annotations

from rasa_rpa.robot.client import CallbackRefused, RobotClient, current_client

__all__ = ["CallbackRefused", "RobotClient", "current_client"]
