"""The reference bot's actions: all of them come from rasa-rpa."""

from rasa_rpa.actions import ActionCancelRpaJob, ActionRpaJobStatus, ActionStartRpaJob

__all__ = ["ActionCancelRpaJob", "ActionRpaJobStatus", "ActionStartRpaJob"]
