"""The benchmark's action package: rasa-rpa's actions plus a trivial baseline."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action

from rasa_rpa.actions import ActionCancelRpaJob, ActionRpaJobStatus, ActionStartRpaJob

__all__ = [
    "ActionCancelRpaJob",
    "ActionNoop",
    "ActionRpaJobStatus",
    "ActionStartRpaJob",
]


class ActionNoop(Action):  # type: ignore[misc]
    """Does nothing: the cost of a custom action call itself (P3's baseline)."""

    def name(self) -> str:
        return "action_noop"

    async def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[Any]:
        dispatcher.utter_message(text="ok")
        return []
