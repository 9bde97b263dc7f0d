"""The operator API, behind ``admin.token``: list jobs, read their events, replay.

* ``GET /rpa/v1/jobs?conversation_id=&limit=``: jobs, newest first.
* ``GET /rpa/v1/jobs/{job_id}/events``: a job's event log, its outbox and
  the files its robot sent (each with a fresh download link).
* ``GET /rpa/v1/outbox?status=dead|failing|pending|delivered|discarded&job_id=``:
  messages to Rasa.
* ``POST /rpa/v1/outbox/{seq}/replay``: queue a dead message again.
* ``POST /rpa/v1/outbox/{seq}/discard``: set a dead message aside for good.

Without ``admin.token`` in rpa.yml the API is off (403), so a deployment
never exposes job listings by accident.
"""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from rasa_rpa.errors import AuthenticationFailed, Forbidden, InvalidPayload
from rasa_rpa.http.common import install_error_handlers, json, runtime_of
from rasa_rpa.runtime import Runtime
from rasa_rpa.security import same_text
from rasa_rpa.stores import find_job

__all__ = [
    "MAX_LIMIT",
    "OUTBOX_STATUSES",
    "admin_blueprint",
    "query_limit",
    "require_admin",
]

admin_blueprint = Blueprint("rasa_rpa_admin", url_prefix="/rpa/v1")
MAX_LIMIT = 1000
#: Each outbox message is in exactly one of these (a job's timeline lists all).
OUTBOX_STATUSES = ("pending", "delivered", "dead", "discarded")
#: What ``GET /outbox?status=`` takes: the statuses, and the pending messages
#: that have failed at least once.
OUTBOX_FILTERS = (*OUTBOX_STATUSES, "failing")


def require_admin(runtime: Runtime, request: Request) -> None:
    """401 without the admin token, 403 when the admin API is off."""
    configured = runtime.config.admin.token
    if configured is None or not configured.get_secret_value():
        raise Forbidden("the admin API is off: set admin.token in rpa.yml")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = configured.get_secret_value()
    if scheme.lower() != "bearer" or not same_text(token.strip(), expected):
        raise AuthenticationFailed("send 'Authorization: Bearer <admin token>'")


def query_limit(request: Request, default: int = 100) -> int:
    """The ``limit`` query parameter, checked (400 when it is not 1..MAX_LIMIT)."""
    # request.args drops blank values, which would turn `limit=` into the
    # default: keep them, so an empty limit is refused like any other typo.
    raw = str(request.get_args(keep_blank_values=True).get("limit", default))
    # ASCII digits only: int() also reads " 5", "5_0", "+5" and digits of
    # other scripts ("\u0665"), which no client means as a limit.
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidPayload(
            f"limit must be a number, not {raw[:40]!r}", status=400, code="bad_query"
        )
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidPayload(
            f"limit must be between 1 and {MAX_LIMIT}", status=400, code="bad_query"
        )
    return value


@admin_blueprint.get("/jobs")
async def list_jobs(request: Request) -> HTTPResponse:
    """Jobs, newest first, optionally of one conversation."""
    runtime = runtime_of(request)
    require_admin(runtime, request)
    jobs = await runtime.store.list_jobs(
        conversation_id=request.args.get("conversation_id"), limit=query_limit(request)
    )
    return json({"jobs": [job.public() for job in jobs]})


@admin_blueprint.get("/jobs/<job_id:str>/events")
async def job_events(request: Request, job_id: str) -> HTTPResponse:
    """A job (by id or the reference its user was shown), its event log, what
    was (or is still to be) sent to Rasa, and its files."""
    runtime = runtime_of(request)
    require_admin(runtime, request)
    job = await find_job(runtime.store, job_id)
    job_id = job.id  # the reference, resolved
    events = await runtime.store.job_events(job_id)
    outbox = {
        status: [
            m.public()
            for m in await runtime.store.list_outbox(status=status, job_id=job_id)
        ]
        for status in OUTBOX_STATUSES
    }
    now = time.time()
    files = [
        {**file.public(), "url": runtime.links.url(file.id, now)}
        for file in await runtime.store.list_files(job_id)
    ]
    return json(
        {"job": job.public(), "events": events, "outbox": outbox, "files": files}
    )


@admin_blueprint.get("/outbox")
async def list_outbox(request: Request) -> HTTPResponse:
    """Outbox messages by status; ``dead`` shows what never reached Rasa and why."""
    runtime = runtime_of(request)
    require_admin(runtime, request)
    status = request.args.get("status", "dead")
    if status not in OUTBOX_FILTERS:
        raise InvalidPayload(
            f"status must be one of {', '.join(OUTBOX_FILTERS)}",
            status=400,
            code="bad_query",
        )
    messages = await runtime.store.list_outbox(
        status=status, job_id=request.args.get("job_id"), limit=query_limit(request)
    )
    return json({"status": status, "messages": [m.public() for m in messages]})


@admin_blueprint.post("/outbox/<seq:int>/replay")
async def replay(request: Request, seq: int) -> HTTPResponse:
    """Send a dead (or already delivered) message to Rasa again."""
    runtime = runtime_of(request)
    require_admin(runtime, request)
    if not 0 < seq < 2**63 or not await runtime.store.replay(seq, time.time()):
        raise InvalidPayload(
            f"no dead or delivered outbox message {seq}", status=404, code="not_found"
        )
    runtime.dispatcher.wake()
    return json({"seq": seq, "replayed": True}, status=202)


@admin_blueprint.post("/outbox/<seq:int>/discard")
async def discard(request: Request, seq: int) -> HTTPResponse:
    """Set a dead message aside for good: never delivered, never replayed.

    It stays in the job's timeline as ``discarded``. No confirmation here:
    the caller (``rasa-rpa jobs discard``, a script) asked for exactly this.
    """
    runtime = runtime_of(request)
    require_admin(runtime, request)
    if not 0 < seq < 2**63 or not await runtime.store.discard(seq, time.time()):
        raise InvalidPayload(
            f"no dead outbox message {seq}", status=404, code="not_found"
        )
    return json({"seq": seq, "discarded": True})


install_error_handlers(admin_blueprint)
