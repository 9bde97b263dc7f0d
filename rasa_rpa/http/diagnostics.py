"""What the running server itself knows, for ``rasa-rpa doctor``.

* ``GET /rpa/v1/diagnostics``: the live state a config file cannot show.

The doctor reads rpa.yml from disk; the server read it, and its environment,
when it started. Where the two differ, a doctor that only reads the file
judges a server that is not the one running (and says "0 errors" while the
server's deliveries fail). So the server answers for itself:

* which rpa.yml it read, the Rasa URL it sends to, and for each credential a
  fingerprint (:func:`rasa_rpa.security.fingerprints`; never the value), which
  the doctor computes from its own rpa.yml and compares key by key;
* the messages to Rasa that are failing (retrying) or dead, with the last error;
* whether robots reach it at ``callbacks.public_url``, tested from the server
  itself: a robot's call (``GET /rpa/v1/jobs/<unknown job>`` with a job token
  of this server's) must come back as this server's "no such job".

Who may ask: the admin token, or an operator token minted from the callback
master key (:meth:`~rasa_rpa.security.JobKeys.mint_operator_token`, what the
doctor sends). The master key is where the doctor runs anyway (rpa.yml's
``callbacks.secret`` or ``.rasa-rpa/master.key`` beside it), so the doctor
works without turning the admin API on; and whoever holds that key can
already forge every robot's callback, so this route shows them nothing new.
Both tokens are checked in constant time; a wrong one gets 401.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from rasa_rpa.errors import AuthenticationFailed
from rasa_rpa.http.common import install_error_handlers, json, runtime_of
from rasa_rpa.models import OutboxMessage
from rasa_rpa.providers.http import safe_url
from rasa_rpa.runtime import Runtime
from rasa_rpa.security import fingerprints, same_text

__all__ = ["MAX_LISTED", "PROBE_TIMEOUT", "diagnostics_blueprint", "require_operator"]

diagnostics_blueprint = Blueprint("rasa_rpa_diagnostics", url_prefix="/rpa/v1")
#: Seconds the server waits for its own public URL to answer.
PROBE_TIMEOUT = 5.0
#: Failing and dead messages listed (each kind, newest first).
MAX_LISTED = 20


def require_operator(runtime: Runtime, request: Request) -> None:
    """401 unless the caller sends the admin token or an operator token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(
            "send 'Authorization: Bearer <admin token or operator token>'"
        )
    admin = runtime.config.admin.token
    if admin is not None and admin.get_secret_value():
        if same_text(token, admin.get_secret_value()):
            return
    runtime.keys.verify_operator_token(token)


def _summary(message: OutboxMessage) -> dict[str, Any]:
    """A message as the doctor lists it: which call, how often tried, why it failed.

    The payload stays out: it is the user's conversation, not a diagnosis.
    """
    payload = message.payload
    if message.kind == "intent":
        call = f"trigger_intent {payload.get('name', '')}"
    else:
        events = payload.get("events") or []
        names = [
            str(e.get("event", "?")) + (f" {e['name']}" if e.get("name") else "")
            for e in events
            if isinstance(e, dict)
        ]
        call = f"tracker/events {', '.join(names)}"
    return {
        "seq": message.seq,
        "job_id": message.job_id,
        "conversation_id": message.conversation_id,
        "call": call.strip(),
        "attempts": message.attempts,
        "last_error": message.last_error,
        "created_at": message.created_at,
    }


async def _probe(runtime: Runtime) -> dict[str, Any]:
    """Call this server at ``callbacks.public_url`` the way a robot would."""
    called = runtime.config.callbacks.public_url.rstrip("/")
    # Shown without user info or query, which may hold credentials.
    public = safe_url(called)
    job_id = f"doctor-probe-{secrets.token_hex(8)}"
    token = runtime.keys.mint_token(job_id, "doctor-probe", ttl=60)
    result: dict[str, Any] = {"url": public, "reachable": False, "problem": None}
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
            response = await client.get(
                f"{called}/rpa/v1/jobs/{job_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        result["problem"] = f"nothing answers at {public} ({type(exc).__name__})"
        return result
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if response.status_code == 404 and code == "job_not_found":
        result["reachable"] = True
    elif response.status_code in (401, 403) and code is not None:
        result["problem"] = (
            f"a rasa-rpa server answers at {public} but refuses this server's "
            "job tokens: it runs with another callbacks.secret"
        )
    else:
        result["problem"] = (
            f"{public} answered {response.status_code} to a robot's call: "
            "what answers there is not this action server"
        )
    return result


@diagnostics_blueprint.get("/diagnostics")
async def diagnostics(request: Request) -> HTTPResponse:
    """The server's own configuration, failing deliveries and reachability."""
    runtime = runtime_of(request)
    require_operator(runtime, request)
    config = runtime.config
    store = runtime.store
    failing = await store.list_outbox(status="failing", limit=MAX_LISTED)
    dead = await store.list_outbox(status="dead", limit=MAX_LISTED)
    return json(
        {
            "config": config.source,
            # Without user info or query (a token may ride in either); the
            # doctor compares the shown parts, the fingerprints the secrets.
            "rasa_url": safe_url(config.rasa.url),
            "jwt_method": config.rasa.jwt_method,
            "store": safe_url(config.store.url),
            "fingerprints": fingerprints(config, runtime.keys),
            "callbacks": await _probe(runtime),
            "outbox": {
                "counts": await store.outbox_stats(),
                "failing": [_summary(m) for m in failing],
                "dead": [_summary(m) for m in dead],
            },
        }
    )


install_error_handlers(diagnostics_blueprint)
