"""Vendors' own webhooks, so existing robots and notifiers work unchanged.

``POST /rpa/v1/providers/{name}/webhook``: a vendor's webhook or notifier
(UiPath Orchestrator webhooks, SAP API notifiers, the Automation Anywhere
deploy callback). The provider named in rpa.yml reads the credential, parses
and completes the call (:mod:`rasa_rpa.providers.base`); it ends in the same
:meth:`JobService.record` as the native API.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from rasa_rpa.cleantext import clean_event
from rasa_rpa.errors import (
    Forbidden,
    InvalidPayload,
    ProviderError,
)
from rasa_rpa.http.common import (
    check_body,
    check_rate,
    credential_guard,
    install_error_handlers,
    json,
    runtime_of,
)
from rasa_rpa.http.payloads import check_data
from rasa_rpa.logs import clip, job_context
from rasa_rpa.models import Job, JobEvent
from rasa_rpa.providers.base import NO_WEBHOOKS, WebhookCredential, WebhookEvent
from rasa_rpa.runtime import Runtime
from rasa_rpa.security import TokenClaims

__all__ = ["vendor_blueprint"]

log = logging.getLogger(__name__)

vendor_blueprint = Blueprint("rasa_rpa_vendors", url_prefix="/rpa/v1/providers")


@vendor_blueprint.post("/<name:str>/webhook", stream=True)
async def provider_webhook(request: Request, name: str) -> HTTPResponse:
    """A vendor's own webhook for provider ``name``.

    The credential is checked before anything else is done with the call:
    before its statuses are read, any job is looked up or its rate limit
    charged, and before any vendor is called. So a stranger gets the same
    401 whatever the body says, cannot learn which job ids exist, cannot
    spend a job's budget (SAP has no status API to fall back on) and cannot
    make us call a vendor. See :mod:`rasa_rpa.providers.base` for the steps.
    """
    runtime = runtime_of(request)
    provider = runtime.service.providers.get(name)
    if provider is None or not provider.receives_webhooks:
        # One answer for both: a stranger must not list providers or types.
        why = (
            "no provider named " + clip(name)
            if provider is None
            else f"provider {provider.name!r} ({provider.type_name}) receives no "
            "webhooks"
        )
        log.info("provider webhook refused: %s", why)
        raise InvalidPayload(NO_WEBHOOKS, status=404, code="not_found")
    check_body(runtime, request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        claims = _authenticate(
            runtime, provider.webhook_credential(headers, request.body)
        )
        received = provider.parse_webhook(headers, request.body)
    except RecursionError:
        raise InvalidPayload(
            "the body is nested too deeply", status=400, code="invalid_json"
        ) from None
    except ProviderError as exc:  # the vendor's own format was not understood
        raise InvalidPayload(exc.message) from exc
    # Data is held to the native API's rules before any job is looked up, its
    # NULs and lone surrogates replaced first: a vendor cannot fix its text,
    # and UiPath switches a refused webhook off for an hour (rasa_rpa.cleantext).
    received = [clean_event(item) for item in received]
    for item in received:
        check_data(item.type, item.data)
    results: list[dict[str, Any]] = []
    for item in received:
        job = await _job_for(runtime, name, item, claims)
        if job is None:
            # Webhooks can beat the start call's answer (the vendor's id is not
            # saved yet). Acknowledge: a refusal would make UiPath switch the
            # webhook off, and polling picks the news up anyway.
            results.append({"event_id": item.event_id, "ignored": "unknown job"})
            continue
        check_rate(runtime, job.id)
        with job_context(job):
            completed = await provider.complete_webhook(item, job)
        if completed is None:  # the vendor cannot say yet: polling will
            continue
        if completed is not item:  # the vendor's own answer, cleaned alike
            completed = clean_event(completed)
            check_data(completed.type, completed.data)
        event = JobEvent(
            completed.event_id,
            job.id,
            completed.type,
            completed.data,
            source=f"{name}-webhook",
        )
        result = await runtime.service.record(event, credential_guard(runtime, claims))
        results.append(
            {
                "job_id": job.id,
                "event_id": item.event_id,
                "state": result.job.state.value,
                "duplicate": result.duplicate,
            }
        )
    return json({"received": len(results), "events": results}, status=202)


def _authenticate(
    runtime: Runtime, credential: WebhookCredential | None
) -> TokenClaims | None:
    """The per-job token's claims; None when the provider checked a signature.

    Touches neither the store nor the rate limiter, so a bad token gets the
    same 401 whether or not the job it names exists. A good token for
    another job is a 403, as on the native route.
    """
    if credential is None:
        return None  # e.g. UiPath: webhook_credential verified X-UiPath-Signature
    if credential.job_id:
        return runtime.keys.verify_token(credential.token, credential.job_id)
    return runtime.keys.identify(credential.token)


async def _job_for(
    runtime: Runtime, provider: str, item: WebhookEvent, claims: TokenClaims | None
) -> Job | None:
    """The job the (already authenticated) webhook is about, None if unknown yet."""
    # A token names its job: trust that over a vendor id in the body.
    job_id = item.job_id or (claims.job_id if claims is not None else None)
    if job_id:
        job = await runtime.store.get_job(job_id)
        if job.provider != provider:
            raise Forbidden(f"job {job_id} does not belong to provider {provider}")
        if item.provider_ref and job.provider_ref not in (None, item.provider_ref):
            raise Forbidden("the vendor's job id does not match this job")
        return job
    if item.provider_ref:
        return await runtime.store.find_by_ref(provider, item.provider_ref)
    raise InvalidPayload("the webhook names no job", code="no_job")


install_error_handlers(vendor_blueprint)
