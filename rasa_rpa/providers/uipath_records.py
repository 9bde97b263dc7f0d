"""UiPath Orchestrator records in rasa-rpa's terms: job states, webhook types, outputs.

The pure half of the UiPath provider (no HTTP), shared by polls and webhooks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from rasa_rpa.models import EventType

__all__ = ["JOB_STATES", "WEBHOOK_TYPES", "event_data", "event_id", "outputs_of"]

log = logging.getLogger("rasa_rpa.providers.uipath")

#: Orchestrator job states that mean something to a rasa-rpa job. Pending,
#: Stopping and Terminating say nothing new: the job is not yet (or not
#: quite) anywhere else.
JOB_STATES: dict[str, EventType] = {
    "Running": EventType.STARTED,
    "Resumed": EventType.STARTED,
    "Suspended": EventType.STARTED,
    "Successful": EventType.SUCCEEDED,
    "Faulted": EventType.FAILED,
    "Stopped": EventType.CANCELLED,
}
#: Webhook ``Type``s that carry one ``Job``; others (job.created...) are ignored.
WEBHOOK_TYPES: dict[str, EventType] = {
    "job.started": EventType.STARTED,
    "job.resumed": EventType.STARTED,
    "job.completed": EventType.SUCCEEDED,
    "job.faulted": EventType.FAILED,
    "job.stopped": EventType.CANCELLED,
}


def outputs_of(value: Any) -> dict[str, Any] | None:
    """OutputArguments as a dict (the API sends a JSON string); None if absent."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            log.warning("uipath: OutputArguments is not JSON; ignoring it")
            return None
    if isinstance(value, dict):
        return value
    return None


def event_data(kind: EventType, job: Mapping[str, Any]) -> dict[str, Any]:
    """What the job's Orchestrator record tells us, as rasa-rpa event data."""
    if kind is EventType.SUCCEEDED:
        return {"outputs": outputs_of(job.get("OutputArguments")) or {}}
    if kind is EventType.FAILED:
        error = job.get("JobError")
        error = error if isinstance(error, dict) else {}
        reason = job.get("Info") or error.get("Detail") or error.get("Title")
        return {"error": str(reason or "the UiPath job faulted")}
    if kind is EventType.CANCELLED:
        return {"reason": "the job was stopped in UiPath Orchestrator"}
    return {}


def event_id(ref: str, kind: EventType) -> str:
    """One id per job and outcome, so polls and webhooks dedupe each other."""
    return f"uipath:{ref}:{kind.value}"
