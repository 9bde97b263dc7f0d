"""Compatibility alias of :mod:`rasa_rpa_robot` (the rasa-rpa-robot distribution).

The robot side moved to its own distribution so that robot machines need
``requests`` alone. Robots written before still say
``Library    rasa_rpa.robot.keywords`` and
``--listener rasa_rpa.robot.listener.JobListener``; these modules re-export
the same objects, so those robots and their rpa.yml keep working. New code
imports :mod:`rasa_rpa_robot`.
"""

from __future__ import annotations

from rasa_rpa_robot import CallbackRefused, RobotClient, current_client

__all__ = ["CallbackRefused", "RobotClient", "current_client"]
