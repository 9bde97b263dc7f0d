"""Robocorp / Sema4.ai Control Room: its options, and its records in rasa-rpa's terms.

The pure half of :mod:`rasa_rpa.providers.robocorp` (no HTTP): the rpa.yml
keys, the process-run states mapped onto our events, and the outputs and
failure reasons read from work items.

Sources (the Control Room API, ``https://cloud.robocorp.com/api/v1``):

* robocorp.com/api ("Authentication to the API is performed via the HTTP
  Authorization header and the API key value should always have a RC-WSKEY
  prefix"; errors are JSON with ``error`` and ``message``);
* the OpenAPI client generated from it, robocorp/robocorp branch
  ``package/robocorp-workspace``, ``workspace/src/robocorp/workspace``:
  ``ProcessRunResource.state`` is one of ``new, in_progress, completed,
  unresolved, stopping``; ``WorkItemState`` is ``new, pending, in_progress,
  failed, done``; ``WorkItemException`` is ``{code, type, message}`` with
  type ``application, business, orchestrator, unspecified``; errors are
  ``GenericErrorResponse {"error": {"code", "message"}}``;
* robocorp.com/docs/control-room/unattended/process-runs ("Process run ends
  up in an Unresolved state if there are failures in processing the work
  items and is considered Complete when all the failed work items are
  retried successfully or resolved by the user").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, SecretStr, model_validator

from rasa_rpa.models import EventType
from rasa_rpa.providers.options import (
    HttpUrl,
    OptionError,
    Required,
    StrictOptions,
    Timeout,
    reveal,
)

__all__ = [
    "CONTEXT_KEYS",
    "DEFAULT_URL",
    "RUN_STATES",
    "RobocorpOptions",
    "event_id",
    "failure_reason",
    "outputs_of",
]

log = logging.getLogger("rasa_rpa.providers.robocorp")

#: The Control Room API for accounts without SSO (robocorp.com/api, "API base
#: URL"); SSO accounts use https://<sso-subdomain>.robocorp.com/api/v1.
DEFAULT_URL = "https://cloud.robocorp.com/api/v1"
#: Work-item payload keys that carry the job's context to the robot.
CONTEXT_KEYS = (
    "rasa_rpa_job_id",
    "rasa_rpa_conversation_id",
    "rasa_rpa_events_url",
    "rasa_rpa_token",
)
#: Process-run states that mean something to a rasa-rpa job. ``new`` says
#: nothing yet (no worker has taken the run). A run that is ``stopping`` was
#: stopped by someone (in Control Room or by us): there is no "stopped"
#: state, the run ends ``unresolved`` or ``completed`` after it.
RUN_STATES: dict[str, EventType] = {
    "in_progress": EventType.STARTED,
    "completed": EventType.SUCCEEDED,
    "unresolved": EventType.FAILED,
    "stopping": EventType.CANCELLED,
}
_KEY_FIX = (
    "create a workspace API key in Control Room (Workspace > Integrations > "
    "API keys) and set workspace_id and api_key"
)


class RobocorpOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: robocorp``."""

    fixes = {
        "url": f"use {DEFAULT_URL} (or https://<your SSO subdomain>"
        ".robocorp.com/api/v1), or leave it out",
        "workspace_id": _KEY_FIX,
        "api_key": _KEY_FIX,
        "processes": "map each task to its process id: {<task>: <process id>}",
    }

    url: HttpUrl = DEFAULT_URL
    workspace_id: Required
    api_key: SecretStr
    #: task -> process id; other tasks are looked up by process name (or id).
    processes: dict[str, str] = Field(default_factory=dict)
    timeout: Timeout = 10.0

    @model_validator(mode="after")
    def _key(self) -> RobocorpOptions:
        if reveal(self.api_key) is None:
            raise OptionError("api_key", "api_key is empty", _KEY_FIX)
        return self


def event_id(ref: str, kind: EventType) -> str:
    """One id per run and outcome, so repeated polls dedupe."""
    return f"robocorp:{ref}:{kind.value}"


def outputs_of(items: Iterable[Any]) -> dict[str, Any]:
    """The job's outputs: the payloads of the run's output work items, merged.

    A robot that creates one output work item (``Create Output Work Item``
    with ``variables=``) gives its variables; several are merged in order.
    A payload that is not an object cannot be named, so it is skipped.
    """
    outputs: dict[str, Any] = {}
    for item in items:
        payload = item.get("payload") if isinstance(item, Mapping) else None
        if isinstance(payload, Mapping):
            outputs.update(payload)
        elif payload is not None:
            log.info("robocorp: skipping an output work item that is not an object")
    return outputs


def failure_reason(items: Iterable[Any]) -> str:
    """Why an unresolved run failed: its failed work items' exception messages."""
    reasons: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("state") != "failed":
            continue
        exception = item.get("exception")
        if isinstance(exception, Mapping):
            message = exception.get("message") or exception.get("code")
            if isinstance(message, str) and message.strip():
                reasons.append(message.strip())
    if not reasons:
        return "the process run ended unresolved in Control Room"
    unique = list(dict.fromkeys(reasons))
    return "; ".join(unique)[:500]
