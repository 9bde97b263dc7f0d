"""Request size limits that hold before a body is buffered.

Sanic reads a route's whole body into memory before the handler runs, up to
``REQUEST_MAX_SIZE`` (100 MB unless told otherwise), and only then could a
handler check its size or the caller's credential: eight anonymous 95 MB
POSTs cost the worker a gigabyte. Two limits close that:

* The callback routes (native, vendor webhooks, Botpress) are streaming
  routes: :func:`install_body_limit` reads their body in a request
  middleware, before any handler or credential check, and stops at
  ``callbacks.max_body_bytes``. A declared ``Content-Length`` over it is
  refused without reading a byte.
* Every other route, rasa-sdk's ``/webhook`` included, is held to
  ``server.max_request_bytes`` by :func:`apply_server_limits`, which sets
  Sanic's own ``REQUEST_MAX_SIZE`` (Sanic refuses a declared length over it
  at once, and a chunked body as soon as it passes it).

Refusals are 413 with ``Connection: close``: the unread rest of the body is
never read, so the connection cannot carry another request.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import PayloadTooLarge
from sanic.http import Http

from rasa_rpa.config import ServerSettings
from rasa_rpa.errors import InvalidPayload
from rasa_rpa.runtime import current_runtime

__all__ = ["apply_server_limits", "install_body_limit", "read_body", "too_large"]


def too_large(limit: int) -> InvalidPayload:
    """The 413 every route answers with for a body over ``limit`` bytes."""
    return InvalidPayload(
        f"the body is over {limit} bytes", status=413, code="too_large"
    )


def apply_server_limits(app: Sanic[Any, Any], settings: ServerSettings) -> None:
    """Hold every route of ``app`` to ``server.max_request_bytes``.

    Sanic reads the value when a connection opens, so setting it while the
    plugin attaches (before the server starts, in every worker) is enough for
    both ``rasa-rpa run`` and rasa-sdk's plugin hook.
    """
    app.config.REQUEST_MAX_SIZE = settings.max_request_bytes


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a streaming route's ``request``, refused (413) past ``limit``.

    At most ``limit`` bytes (plus one network read) are ever held.
    """
    stream = request.stream
    if stream is None:  # the body came whole (non-streaming route, tests)
        if len(request.body) > limit:
            raise too_large(limit)
        return request.body
    # Also caps what Sanic would drain after the answer: past the limit it
    # drops the connection instead of reading the rest.
    stream.request_max_size = limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        # Refuse on the header alone. Sanic's own check would first send
        # "100 Continue", inviting the client to upload what we refuse.
        if isinstance(stream, Http):
            stream.expecting_continue = False
            stream.keep_alive = False
        raise too_large(limit)
    body = bytearray()
    try:
        async for data in stream:  # type: ignore[attr-defined]
            body += data
    except PayloadTooLarge:  # chunked: the chunk sizes passed the limit
        raise too_large(limit) from None
    return bytes(body)


async def _read_within_limit(request: Request) -> None:
    route = request.route
    if route is None or not route.extra.stream:
        return
    limit = current_runtime().config.callbacks.max_body_bytes
    request.body = await read_body(request, limit)


def install_body_limit(bp: Blueprint) -> None:
    """Read the body of each streaming route of ``bp`` within the callback limit.

    Runs as request middleware, so the limit holds before any handler code,
    credential checks included. Mark a route ``stream=True`` to be covered.
    """
    bp.on_request(_read_within_limit)
