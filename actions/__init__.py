"""The reference bot's actions: all of them come from rasa-rpa."""

from rasa_rpa.actions import (
    ActionCancelRpaJob,
    ActionRpaAnswer,
    ActionRpaAsk,
    ActionRpaJobStatus,
    ActionStartRpaJob,
    ValidateRpaAnswerForm,
)

__all__ = [
    "ActionCancelRpaJob",
    "ActionRpaAnswer",
    "ActionRpaAsk",
    "ActionRpaJobStatus",
    "ActionStartRpaJob",
    "ValidateRpaAnswerForm",
]
