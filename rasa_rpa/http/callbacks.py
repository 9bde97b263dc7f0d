"""The HTTP API robots call, served by the action server itself.

* ``POST /rpa/v1/jobs/{job_id}/events``: report an event (202 when recorded).
* ``GET /rpa/v1/jobs/{job_id}``: the job as the store knows it.
* ``GET /rpa/v1/jobs/{job_id}/questions/{question_id}?wait=30s``: a question
  the job asked, held until it is answered, expires or ``wait`` passes.
* ``GET /rpa/health``, ``/rpa/metrics``, ``/rpa/openapi.json``.

Credentials are checked before the store is touched, and a credential only
ever opens the job it was minted for. The shared checks live in
:mod:`rasa_rpa.http.common`.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from rasa_rpa.asking import MAX_WAIT
from rasa_rpa.configvalues import parse_duration
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.http.common import (
    accepted,
    authenticate,
    check_body,
    check_rate,
    credential_guard,
    install_error_handlers,
    json,
    load_job,
    runtime_of,
)
from rasa_rpa.http.payloads import parse_event

__all__ = ["OPENAPI_PATH", "blueprint"]

blueprint = Blueprint("rasa_rpa", url_prefix="/rpa")


# stream=True: the body is read within callbacks.max_body_bytes, before this
# handler runs (rasa_rpa.http.limits), instead of buffered whole by Sanic.
@blueprint.post("/v1/jobs/<job_id:str>/events", stream=True)
async def post_event(request: Request, job_id: str) -> HTTPResponse:
    """Record a robot's event for ``job_id``."""
    runtime = runtime_of(request)
    check_body(runtime, request)
    claims = authenticate(runtime, request, job_id)
    check_rate(runtime, job_id)
    event = parse_event(
        job_id, request.body, fallback_id=request.headers.get("webhook-id")
    )
    result = await runtime.service.record(event, credential_guard(runtime, claims))
    return accepted(result, event.id)


@blueprint.get("/v1/jobs/<job_id:str>")
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    """The job's state, progress, outputs and error."""
    runtime = runtime_of(request)
    claims = authenticate(runtime, request, job_id)
    job = await load_job(runtime, job_id, claims)
    return json(job.public())


@blueprint.get("/v1/jobs/<job_id:str>/questions/<question_id:str>")
async def get_question(request: Request, job_id: str, question_id: str) -> HTTPResponse:
    """A question the job asked: its status, and its answer once there is one.

    With ``?wait=30s`` the answer is held until the question is answered,
    expires or its job ends, or ``wait`` passes (then ``status`` is still
    ``open``): a long poll the robot repeats. Asking again after a lost
    answer gets the same answer.
    """
    runtime = runtime_of(request)
    claims = authenticate(runtime, request, job_id)
    check_rate(runtime, job_id)
    wait = wait_seconds(request)
    await load_job(runtime, job_id, claims)
    question = await runtime.questions.wait(job_id, question_id, wait)
    return json(question.public(time.time()))


def wait_seconds(request: Request) -> float:
    """The ``wait`` query parameter in seconds (0 without one); 400 when bad."""
    raw = request.get_args(keep_blank_values=True).get("wait")
    if raw is None:
        return 0.0
    problem = f"wait must be a duration of at most {MAX_WAIT:g}s, such as 30s"
    try:
        seconds = parse_duration(raw)
    except ValueError:
        raise InvalidPayload(problem, status=400, code="bad_query") from None
    if not 0 <= seconds <= MAX_WAIT:
        raise InvalidPayload(problem, status=400, code="bad_query")
    return seconds


OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@blueprint.get("/openapi.json")
async def openapi(request: Request) -> HTTPResponse:
    """The OpenAPI 3 description of every plugin endpoint (checked in)."""
    return raw(OPENAPI_PATH.read_bytes(), content_type="application/json")


@blueprint.get("/metrics")
async def metrics(request: Request) -> HTTPResponse:
    """Prometheus metrics of this worker (counts only: nothing secret)."""
    runtime = runtime_of(request)
    for status, count in (await runtime.store.outbox_stats()).items():
        runtime.metrics.outbox_messages.labels(status).set(count)
    return raw(
        generate_latest(runtime.metrics.registry), content_type=CONTENT_TYPE_LATEST
    )


@blueprint.get("/health")
async def health(request: Request) -> HTTPResponse:
    """The plugin is attached and its store answers."""
    runtime = runtime_of(request)
    stats = await runtime.store.outbox_stats()
    return json({"status": "ok", "outbox": stats})


install_error_handlers(blueprint)
