"""The Botpress v12 ``uipath`` module's callback, so its workflows work unchanged.

``POST /api/v1/bots/{bot_id}/mod/uipath/message``, as sent by the module's
"Callback" UiPath activity: ``Authorization: Bearer <token>`` and
``{channel, target, botId, message}``. The token is our per-job token, so
unlike Botpress's it opens one job and one conversation only. The message is
held to the native API's rules and recorded like a native ``message`` event.
"""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from rasa_rpa.errors import AuthenticationFailed, Forbidden, InvalidPayload
from rasa_rpa.http.common import (
    accepted,
    check_body,
    check_rate,
    credential_guard,
    install_error_handlers,
    load_job,
    runtime_of,
)
from rasa_rpa.http.payloads import check_data, load_json_object
from rasa_rpa.models import EventType, JobEvent

__all__ = ["botpress_blueprint"]

botpress_blueprint = Blueprint("rasa_rpa_botpress", url_prefix="/api/v1/bots")


@botpress_blueprint.post("/<bot_id:str>/mod/uipath/message", stream=True)
async def botpress_message(request: Request, bot_id: str) -> HTTPResponse:
    """The Botpress ``uipath`` module's callback, answered the way Botpress does."""
    runtime = runtime_of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token:
        raise AuthenticationFailed("Authorization header is missing")
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("Unknown scheme")
    claims = runtime.keys.identify(token.strip())
    job = await load_job(runtime, claims.job_id, claims)
    check_rate(runtime, job.id)
    check_body(runtime, request)
    body = load_json_object(request.body)
    target = body.get("target")
    if target is not None and str(target) != job.conversation_id:
        raise Forbidden("target is not the conversation this token belongs to")
    data = _message_data(body.get("message"))
    # The native route's rules, so no route takes what another refuses.
    check_data(EventType.MESSAGE, data, where="message")
    event = JobEvent(
        uuid.uuid4().hex,  # Botpress sends no id: every call is a new message
        job.id,
        EventType.MESSAGE,
        data,
        source="botpress-compat",
    )
    result = await runtime.service.record(event, credential_guard(runtime, claims))
    return accepted(result, event.id)


def _message_data(message: Any) -> dict[str, Any]:
    """A Botpress payload (``{type: "text", text}`` or a string) as our message.

    Fields are passed on as sent, not filtered by type: check_data then
    refuses a ``text`` that is no string the way the native route does.
    """
    if isinstance(message, str):
        return {"text": message}
    if isinstance(message, dict):
        return {k: message[k] for k in ("text", "image", "buttons") if k in message}
    raise InvalidPayload('message must be text or {"type": "text", "text": "..."}')


install_error_handlers(botpress_blueprint)
