"""Desktop flow runs (Dataverse flow sessions) in rasa-rpa's terms.

The pure half of :mod:`rasa_rpa.providers.power_automate` (no HTTP): the
flow session's ``statuscode`` mapped onto our events, the failure text, and
the completion callback's body.

Sources:

* "Flow Session (flowsession) table/entity reference" (MicrosoftDocs/
  powerapps-docs ``powerapps-docs/developer/data-platform/reference/
  entities/flowsession.md``): ``statuscode`` choices 0 NotSpecified,
  1 Paused, 2 Running, 3 Waiting, 4 Succeeded, 5 Skipped, 6 Suspended,
  7 Cancelled, 8 Failed, 9 Faulted, 10 TimedOut, 11 Aborted, 12 Ignored,
  13 Deleted, 14 Terminated; columns ``errorcode`` and ``errormessage``
  ("Message describing the failure in flow session execution");
* "Work with desktop flows using code" (MicrosoftDocs/power-automate-docs
  ``articles/developer/desktop-flow-public-apis.md``): the callback is a POST
  with ``x-ms-workflow-id`` and ``x-ms-run-id`` headers and the body
  ``{statuscode, statecode, startedon, completedon, flowsessionid}``; "the
  callback call isn't authenticated", so "Check the flow session Id validity
  when the callback notification is received. Dataverse is the source of
  truth."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rasa_rpa import strictjson
from rasa_rpa.errors import AuthenticationFailed, InvalidPayload
from rasa_rpa.models import EventType

__all__ = [
    "FINAL_STATUSES",
    "SELECT",
    "STATUS_EVENTS",
    "STATUS_NAMES",
    "callback_run_id",
    "event_data",
    "event_id",
]

#: ``statuscode`` choice labels, for messages and logs.
STATUS_NAMES: dict[int, str] = {
    0: "NotSpecified",
    1: "Paused",
    2: "Running",
    3: "Waiting",
    4: "Succeeded",
    5: "Skipped",
    6: "Suspended",
    7: "Cancelled",
    8: "Failed",
    9: "Faulted",
    10: "TimedOut",
    11: "Aborted",
    12: "Ignored",
    13: "Deleted",
    14: "Terminated",
}
#: Statuses that mean something to a rasa-rpa job. Waiting (queued for a
#: machine) and NotSpecified say nothing new. Paused and Suspended keep the
#: job running, as UiPath's Suspended does: it may resume. Skipped, Ignored,
#: Deleted and Terminated end a run that did not do its work: a failure
#: the user should hear about, not a cancellation nobody asked for.
STATUS_EVENTS: dict[int, EventType] = {
    1: EventType.STARTED,
    2: EventType.STARTED,
    6: EventType.STARTED,
    4: EventType.SUCCEEDED,
    7: EventType.CANCELLED,
    11: EventType.CANCELLED,
    5: EventType.FAILED,
    8: EventType.FAILED,
    9: EventType.FAILED,
    10: EventType.FAILED,
    12: EventType.FAILED,
    13: EventType.FAILED,
    14: EventType.FAILED,
}
#: Statuses a run does not leave.
FINAL_STATUSES = frozenset(
    code for code, kind in STATUS_EVENTS.items() if kind is not EventType.STARTED
)
#: Columns read when polling (the documented four, and the failure's words).
SELECT = "statuscode,statecode,startedon,completedon,errorcode,errormessage"
_FAILURES = {
    5: "the desktop flow run was skipped",
    10: "the desktop flow run timed out",
    12: "the desktop flow run was ignored",
    13: "the desktop flow run was deleted",
    14: "the desktop flow run was terminated",
}


def event_id(ref: str, kind: EventType) -> str:
    """One id per run and outcome, so polls and callbacks dedupe each other."""
    return f"power-automate:{ref}:{kind.value}"


def event_data(
    kind: EventType, session: Mapping[str, Any], outputs: dict[str, Any] | None
) -> dict[str, Any]:
    """What a flow session record tells us, as rasa-rpa event data."""
    if kind is EventType.SUCCEEDED:
        return {"outputs": outputs or {}}
    if kind is EventType.FAILED:
        message = session.get("errormessage")
        if isinstance(message, str) and message.strip():
            return {"error": message.strip()[:500]}
        code = session.get("statuscode")
        status = code if isinstance(code, int) else -1
        return {"error": _FAILURES.get(status, "the desktop flow run failed")}
    if kind is EventType.CANCELLED:
        return {"reason": "the desktop flow run was cancelled in Power Automate"}
    return {}


def callback_run_id(headers: Mapping[str, str], body: bytes) -> str:
    """The flow session a completion callback names, checked for consistency.

    Raises AuthenticationFailed for a call without Power Automate's headers
    (it is no callback of ours) and InvalidPayload for a body that names
    another run than its ``x-ms-run-id``.
    """
    run_id = headers.get("x-ms-run-id", "").strip()
    if not run_id or not headers.get("x-ms-workflow-id", "").strip():
        raise AuthenticationFailed(
            "a Power Automate callback carries x-ms-workflow-id and x-ms-run-id"
        )
    try:
        payload = strictjson.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload(
            "the body is not valid JSON", status=400, code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidPayload("the callback body must be a JSON object")
    named = payload.get("flowsessionid")
    if named is not None and str(named).lower() != run_id.lower():
        raise InvalidPayload("flowsessionid does not match x-ms-run-id")
    return run_id
