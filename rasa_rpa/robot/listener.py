"""Compatibility alias of :mod:`rasa_rpa_robot.listener` (same objects).

``--listener rasa_rpa.robot.listener.JobListener`` keeps working.
"""

from __future__ import annotations

from rasa_rpa_robot.listener import UNEXPECTED, JobListener, is_exception_text

__all__ = ["UNEXPECTED", "JobListener", "is_exception_text"]
