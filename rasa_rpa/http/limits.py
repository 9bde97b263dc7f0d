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
* A file upload reads its own body (``ctx_own_body=True``), after checking
  the credential and the declared size, and in pieces (:func:`stream_body`),
  within ``files.max_bytes`` and ``files.upload_timeout``.
* Every other route, rasa-sdk's ``/webhook`` included, is held to
  ``server.max_request_bytes`` by :func:`apply_server_limits`, which sets
  Sanic's own ``REQUEST_MAX_SIZE`` (Sanic refuses a declared length over it
  at once, and a chunked body as soon as it passes it).

Refusals are 413 with ``Connection: close``: the unread rest of the body is
never read, so the connection cannot carry another request.

Time is bounded too. Sanic's request and response timeouts restart at every
byte received, so a client sending a header line (or a body byte) every few
seconds would hold a connection for ever. :func:`read_body` gives a
callback's whole body ``callbacks.body_timeout`` (then 408, closed), and
:class:`_Deadlines` gives every connection ``server.head_timeout`` for each
request's head and a backstop for any body, on every route.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import PayloadTooLarge, RequestTimeout
from sanic.http import Http, Stage

from rasa_rpa.config import RpaConfig, ServerSettings
from rasa_rpa.errors import InvalidPayload

__all__ = [
    "apply_server_limits",
    "install_body_limit",
    "read_body",
    "refuse_unread",
    "stream_body",
    "too_large",
    "too_slow",
]


def too_large(limit: int) -> InvalidPayload:
    """The 413 every route answers with for a body over ``limit`` bytes."""
    return InvalidPayload(
        f"the body is over {limit} bytes", status=413, code="too_large"
    )


def too_slow(seconds: float) -> InvalidPayload:
    """The 408 for a callback body that did not arrive within ``seconds``."""
    return InvalidPayload(
        f"the body did not arrive within {seconds:g}s", status=408, code="timeout"
    )


def apply_server_limits(app: Sanic[Any, Any], config: RpaConfig) -> None:
    """Hold every route of ``app`` to ``server.max_request_bytes`` and every
    connection to ``server.head_timeout`` (see :class:`_Deadlines`).

    Sanic reads the values when a connection opens, so setting them while the
    plugin attaches (before the server starts, in every worker) is enough for
    both ``rasa-rpa run`` and rasa-sdk's plugin hook.
    """
    settings: ServerSettings = config.server
    app.config.REQUEST_MAX_SIZE = settings.max_request_bytes
    # Sanic's own per-read silence limit: never longer than the whole head may take.
    app.config.REQUEST_TIMEOUT = min(app.config.REQUEST_TIMEOUT, settings.head_timeout)
    deadlines = _Deadlines(
        settings.head_timeout, config.callbacks.body_timeout + settings.head_timeout
    )
    deadlines.install(app)
    # stream_body gives a file upload its own, longer, time.
    app.ctx.rasa_rpa_deadlines = deadlines


class _Deadlines:
    """An overall deadline on what each connection's client sends.

    Armed when a connection opens and after each answer (the next head must
    arrive within ``head``), disarmed when a head is complete, armed again
    (``body``) while a request's body is read. When it fires while the
    server waits on the client, it does what Sanic's own request timeout
    does: a 408 if a request has begun, and the connection is closed. A
    handler at work, or an answer being sent, is never cut: then it is
    armed again. The signals run inline, in the connection's own task.
    """

    def __init__(self, head: float, body: float) -> None:
        self.head, self.body = head, body
        self._timers: dict[asyncio.Task[Any], asyncio.TimerHandle] = {}

    def install(self, app: Sanic[Any, Any]) -> None:
        app.signal("http.lifecycle.begin")(self._begin)
        app.signal("http.lifecycle.read_head")(self._head_read)
        app.signal("http.lifecycle.request")(self._request)
        app.signal("http.lifecycle.response")(self._answered)
        app.signal("http.lifecycle.complete")(self._complete)

    def _arm(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        self._disarm(task)
        loop = asyncio.get_running_loop()
        self._timers[task] = loop.call_later(seconds, self._fire, task, seconds)

    def _disarm(self, task: asyncio.Task[Any] | None) -> None:
        timer = self._timers.pop(task, None) if task else None
        if timer is not None:
            timer.cancel()

    def _fire(self, task: asyncio.Task[Any], seconds: float) -> None:
        self._timers.pop(task, None)
        http = _http_of(task)
        if http is not None and http.stage in (Stage.HANDLER, Stage.RESPONSE):
            if not http.request_body:
                # The client waits on us, not we on it: not the client's delay.
                loop = asyncio.get_running_loop()
                self._timers[task] = loop.call_later(seconds, self._fire, task, seconds)
                return
        if http is not None and http.stage is not Stage.IDLE:
            # What Sanic's own timeout does: the cancelled request answers 408.
            http.exception = RequestTimeout("Request Timeout")
        task.cancel()

    async def _begin(self, **_: Any) -> None:
        self._arm(self.head)

    async def _head_read(self, **_: Any) -> None:
        self._disarm(asyncio.current_task())

    async def _request(self, **_: Any) -> None:
        self._arm(self.body)

    async def _answered(self, **_: Any) -> None:
        self._arm(self.head)

    async def _complete(self, **_: Any) -> None:
        self._disarm(asyncio.current_task())


def _http_of(task: asyncio.Task[Any]) -> Http | None:
    """The connection's :class:`Http` state, or None before its first request.

    Sanic hands the connection signals no handle to it; the task runs the
    protocol's ``connection_task``, whose ``self`` is the protocol.
    """
    frame = getattr(task.get_coro(), "cr_frame", None)
    protocol = frame.f_locals.get("self") if frame is not None else None
    http = getattr(protocol, "http", None)
    return http if isinstance(http, Http) else None


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes:
    """The body of a streaming route's ``request``, refused (413) past ``limit``
    and (408) when it has not arrived within ``timeout`` seconds.

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
        async with asyncio.timeout(timeout):
            async for data in stream:  # type: ignore[attr-defined]
                body += data
    except PayloadTooLarge:  # chunked: the chunk sizes passed the limit
        raise too_large(limit) from None
    except TimeoutError:
        if isinstance(stream, Http):
            # Answer and close: draining the rest would wait on the same client.
            stream.keep_alive = False
            stream.request_body = None
        raise too_slow(timeout) from None
    return bytes(body)


def refuse_unread(request: Request) -> None:
    """Answer a streaming request without reading its body: close after.

    Nothing of the body is read (no "100 Continue" invites it either), and
    the connection closes after the answer, so the unread rest can never be
    taken for the next request nor drained.
    """
    stream = request.stream
    if isinstance(stream, Http):
        stream.expecting_continue = False
        stream.keep_alive = False


async def stream_body(
    request: Request, limit: int, timeout: float
) -> AsyncIterator[bytes]:
    """The body of a route that reads its own (``ctx_own_body=True``), piece by
    piece as it arrives: 413 past ``limit`` (a declared length at once), 408
    when it has not all arrived within ``timeout`` seconds.

    Holds one network read at a time, whatever the body's size.
    """
    stream = request.stream
    if stream is None:  # the body came whole (tests, non-streaming)
        if len(request.body) > limit:
            raise too_large(limit)
        yield request.body
        return
    stream.request_max_size = limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        refuse_unread(request)
        raise too_large(limit)
    deadlines = getattr(request.app.ctx, "rasa_rpa_deadlines", None)
    if isinstance(deadlines, _Deadlines):
        # The connection's backstop would cut a long upload at the callback
        # limit; this body has a deadline of its own (and the backstop after).
        deadlines._arm(timeout + deadlines.head)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reader: AsyncIterator[bytes] = aiter(stream)  # type: ignore[arg-type]
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                data = await anext(reader)
        except StopAsyncIteration:
            return
        except PayloadTooLarge:
            raise too_large(limit) from None
        except TimeoutError:
            if isinstance(stream, Http):
                stream.keep_alive = False
                stream.request_body = None
            raise too_slow(timeout) from None
        if data:
            yield bytes(data)


async def _read_within_limit(request: Request) -> None:
    route = request.route
    if route is None or not route.extra.stream:
        return
    if getattr(route.ctx, "own_body", False):
        return  # the handler reads it itself (stream_body), after its checks
    # The runtime the plugin put on the app (http.common imports this module).
    callbacks = request.app.ctx.rasa_rpa.config.callbacks
    request.body = await read_body(
        request, callbacks.max_body_bytes, callbacks.body_timeout
    )


def install_body_limit(bp: Blueprint) -> None:
    """Read the body of each streaming route of ``bp`` within the callback limit.

    Runs as request middleware, so the limit holds before any handler code,
    credential checks included. Mark a route ``stream=True`` to be covered.
    """
    bp.on_request(_read_within_limit)
