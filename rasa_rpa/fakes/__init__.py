"""Faithful fakes of vendor RPA APIs, for tests and for developing without a licence.

``rasa-rpa fake <vendor>`` serves one on 127.0.0.1. Built-ins are lazy
``"module:Class"`` paths, like the providers. A name may be written with
``-`` or ``_`` (``power-automate``, ``automation_anywhere``), as people type
the vendor's name or the provider's ``type``.
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
    "fake_target",
    "run_process",
]

FAKES: dict[str, str] = {
    "uipath": "rasa_rpa.fakes.uipath:FakeOrchestrator",
    "sap": "rasa_rpa.fakes.sap:FakeSapIrpa",
    "automation_anywhere": "rasa_rpa.fakes.automation_anywhere:FakeControlRoom",
    "robocorp": "rasa_rpa.fakes.robocorp:FakeRobocorp",
    "power-automate": "rasa_rpa.fakes.power_automate:FakePowerAutomate",
}


def fake_target(name: str) -> str | None:
    """The ``"module:Class"`` of the fake called ``name`` (``-`` and ``_`` alike)."""
    wanted = name.strip().lower().replace("_", "-")
    for known, target in FAKES.items():
        if known.replace("_", "-") == wanted:
            return target
    return None
