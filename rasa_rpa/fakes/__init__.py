"""Faithful fakes of vendor RPA APIs, for tests and for developing without a licence.

``rasa-rpa fake <vendor>`` serves one on 127.0.0.1. Built-ins are lazy
``"module:Class"`` paths, like the providers.
"""

from __future__ import annotations

from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.processes import PROCESSES, ProcessFailed, run_process

__all__ = [
    "FAKES",
    "PROCESSES",
    "FakeRequest",
    "FakeServer",
    "ProcessFailed",
    "run_process",
]

FAKES: dict[str, str] = {
    "uipath": "rasa_rpa.fakes.uipath:FakeOrchestrator",
    "sap": "rasa_rpa.fakes.sap:FakeSapIrpa",
    "automation_anywhere": "rasa_rpa.fakes.automation_anywhere:FakeControlRoom",
}
