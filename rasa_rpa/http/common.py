"""What every rasa-rpa route shares: the runtime, credentials, limits, answers.

Routes reach the runtime through ``request.app.ctx`` (:func:`runtime_of`),
where :mod:`rasa_rpa.plugin` puts it for each worker; nothing here holds
state of its own. Errors are answered as JSON,
``{"error": {"code": "...", "message": "..."}}``, by the handlers that
:func:`install_error_handlers` puts on a blueprint.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from sanic import Blueprint, Request
from sanic.exceptions import PayloadTooLarge, SanicException
from sanic.response import HTTPResponse, json as sanic_json

from rasa_rpa.errors import (
    AuthenticationFailed,
    CallbackError,
    Forbidden,
    InvalidPayload,
    JobNotFound,
    RateLimited,
    RpaError,
    StoreError,
)
from rasa_rpa.http.limits import install_body_limit, too_large
from rasa_rpa.models import Job
from rasa_rpa.runtime import Runtime
from rasa_rpa.security import TokenClaims, verify_webhook
from rasa_rpa.stores.base import EventResult, Guard
from rasa_rpa.strictjson import dumps

__all__ = [
    "accepted",
    "authenticate",
    "check_body",
    "check_rate",
    "credential_guard",
    "error",
    "http_error",
    "install_error_handlers",
    "json",
    "load_job",
    "runtime_of",
    "unexpected",
]

log = logging.getLogger(__name__)


def json(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """:func:`sanic.response.json` written strictly (no NaN) and compact."""
    return sanic_json(
        body, status=status, headers=headers, dumps=dumps, separators=(",", ":")
    )


def runtime_of(request: Request) -> Runtime:
    """The runtime of the worker serving ``request`` (set by the plugin)."""
    runtime: Runtime | None = getattr(request.app.ctx, "rasa_rpa", None)
    if runtime is None:
        raise RpaError(
            "rasa-rpa is not running in this action server: attach it with the "
            "rasa_sdk_plugins hook (docs/install.md) or start the server with "
            "`rasa-rpa run`"
        )
    return runtime


def error(status: int, code: str, message: str) -> HTTPResponse:
    """The JSON error body every route uses."""
    return json({"error": {"code": code, "message": message}}, status=status)


def authenticate(runtime: Runtime, request: Request, job_id: str) -> TokenClaims | None:
    """Check the caller's credential for ``job_id`` (not yet against the job).

    Returns the token's claims for a bearer token, None for a valid signature.
    """
    headers = request.headers
    callbacks = runtime.config.callbacks
    if "webhook-signature" in headers:
        secrets = [runtime.keys.signing_secret(job_id)]
        secrets += [s.get_secret_value() for s in callbacks.webhook_secrets]
        # Sanic's headers are already case-insensitive: no copy needed.
        verify_webhook(secrets, headers, request.body, tolerance=callbacks.tolerance)
        return None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "send a Standard Webhooks signature or 'Authorization: Bearer <job token>'"
        )
    return runtime.keys.verify_token(token.strip(), job_id)


def credential_guard(runtime: Runtime, claims: TokenClaims | None) -> Guard:
    """The checks a credential needs against its job (run inside the transaction)."""
    grace = runtime.config.callbacks.grace

    def guard(job: Job) -> None:
        if claims is not None and claims.conversation_id != job.conversation_id:
            raise Forbidden("this token belongs to another conversation")
        if job.finished_at is not None and time.time() > job.finished_at + grace:
            raise AuthenticationFailed(
                "the job has ended; its credentials have expired"
            )

    return guard


async def load_job(runtime: Runtime, job_id: str, claims: TokenClaims | None) -> Job:
    """The job, once the credential is known to be for it and still valid."""
    job = await runtime.store.get_job(job_id)
    credential_guard(runtime, claims)(job)
    return job


def check_rate(runtime: Runtime, job_id: str) -> None:
    """429 when one job calls back faster than callbacks.rate_limit allows."""
    wait = runtime.limiter.acquire(job_id)
    if wait:
        raise RateLimited(f"too many callbacks for job {job_id}; slow down", wait)


def check_body(runtime: Runtime, request: Request) -> None:
    """413 for a body over the limit, 415 for anything but JSON.

    Streaming routes were already held to the limit while their body was read
    (:mod:`rasa_rpa.http.limits`); this also covers a route that is not streaming.
    """
    limit = runtime.config.callbacks.max_body_bytes
    if len(request.body) > limit:
        raise too_large(limit)
    # Media types are case-insensitive (RFC 9110, 8.3.1): APPLICATION/JSON is JSON.
    content_type = request.headers.get("content-type", "").split(";")[0]
    if content_type.strip().lower() != "application/json":
        raise InvalidPayload(
            "send the event as application/json",
            status=415,
            code="unsupported_media_type",
        )


def accepted(result: EventResult, event_id: str) -> HTTPResponse:
    """202 for a recorded event, 200 for one recorded before."""
    body: dict[str, Any] = {
        "job_id": result.job.id,
        "event_id": event_id,
        "state": result.job.state.value,
        "applied": result.applied,
        "duplicate": result.duplicate,
    }
    return json(body, status=200 if result.duplicate else 202)


async def start_timer(request: Request) -> None:
    """Remember when a request arrived, for the callback latency histogram."""
    request.ctx.rpa_started = time.perf_counter()


async def observe_latency(request: Request, response: HTTPResponse) -> None:
    """Record how long a callback took, by route and status."""
    started = getattr(request.ctx, "rpa_started", None)
    if started is None or request.method != "POST":
        return
    route = request.route.name.rsplit(".", 1)[-1] if request.route else "unknown"
    runtime_of(request).metrics.callback_seconds.labels(
        route, str(response.status)
    ).observe(time.perf_counter() - started)


async def callback_error(request: Request, exc: CallbackError) -> HTTPResponse:
    response = error(exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


async def job_not_found(request: Request, exc: JobNotFound) -> HTTPResponse:
    return error(404, "job_not_found", str(exc))


_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


async def http_error(request: Request, exc: SanicException) -> HTTPResponse:
    """Sanic's own errors (404, 405, 413...) in the JSON every route uses."""
    status = int(getattr(exc, "status_code", 500) or 500)
    message = str(exc)
    if isinstance(exc, PayloadTooLarge) and request.route is None:
        # Sanic says 413 for a head over REQUEST_MAX_HEADER_SIZE too; only the
        # head has been read then (no route yet). RFC 6585 names it 431.
        status, message = 431, "the request's headers are too large"
        code = "headers_too_large"
    else:
        code = _CODES.get(status, "http_error")
    # Sanic's own headers matter: Allow on a 405 (RFC 9110, 15.5.6), for one.
    headers = dict(getattr(exc, "headers", None) or {})
    return json(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
    """Anything else: logged with its traceback, answered without it.

    rasa-sdk's own handler would answer 500 with the exception's text and
    the request's body, internals a caller has no use for.
    """
    if isinstance(exc, SanicException):
        return await http_error(request, exc)
    log.exception("%s %s failed", request.method, request.path)
    return error(500, "internal_error", "the action server failed; see its log")


async def store_down(request: Request, exc: StoreError) -> HTTPResponse:
    # 503 tells a robot to retry; the event was not acknowledged, so not lost.
    return error(503, "store_unavailable", "the job store is unavailable; retry later")


def install_error_handlers(bp: Blueprint) -> None:
    """Answer the library's errors as JSON on every route of ``bp``, and time them.

    Also holds the body of each ``stream=True`` route of ``bp`` to
    ``callbacks.max_body_bytes`` before its handler runs.
    """
    bp.exception(CallbackError)(callback_error)
    bp.exception(JobNotFound)(job_not_found)
    bp.exception(StoreError)(store_down)
    bp.exception(Exception)(unexpected)  # the most specific handler wins
    bp.on_request(start_timer)
    install_body_limit(bp)
    bp.on_response(observe_latency)  # type: ignore[no-untyped-call]
