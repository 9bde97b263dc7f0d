"""A tiny threaded HTTP server the vendor fakes are built on.

Fakes serve real HTTP on 127.0.0.1 from a background thread, so tests,
demos and ``rasa-rpa fake <vendor>`` use them the same way. Routes are
``(method, regex)`` pairs; handlers get a :class:`FakeRequest` and return
``(status, json_body)`` or ``(status, json_body, headers)``.

:class:`FakeVendor` is what every vendor fake adds on top: the server's
lifecycle and the failure-injection knobs (an outage, a slow answer, expired
tokens) that tests turn, so each vendor fake only writes its own API.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

__all__ = ["FakeRequest", "FakeServer", "FakeVendor", "Reply", "progress_event"]

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[["FakeRequest"], Reply]
_Vendor = TypeVar("_Vendor", bound="FakeVendor")


def progress_event(vendor: str) -> dict[str, Any]:
    """The ``job.progress`` a vendor's robot posts to rasa-rpa's callback API.

    Every fake's robot sends this one halfway, as a workflow step calling
    rasa-rpa would; only the vendor named in the message differs.
    """
    return {
        "id": uuid.uuid4().hex,
        "type": "job.progress",
        "data": {"progress": 50, "message": f"Processing in {vendor}"},
    }


@dataclass
class FakeRequest:
    """What a handler sees."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON (ValueError if it is not)."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """The body as an urlencoded form."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


class FakeServer:
    """Routes requests to handlers in a background thread on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        #: Every request received, for assertions.
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                request = FakeRequest(
                    self.command,
                    url.path,
                    {k: v[-1] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake._lock:
                    fake.requests.append(request)
                reply = fake._route(request)
                status, payload = reply[0], reply[1]
                headers = reply[2] if len(reply) > 2 else {}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve ``method`` on paths matching ``pattern`` (named groups → params)."""
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def _route(self, request: FakeRequest) -> Reply:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                try:
                    return handler(request)
                except Exception as exc:  # a fake must answer, never hang
                    return 500, {"message": f"fake error: {exc}"}
        return 404, {"message": f"no route for {request.method} {request.path}"}

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeVendor:
    """A vendor fake's server, lifecycle and failure-injection knobs.

    A vendor fake registers its routes with :meth:`route`: every request
    then passes the knobs first, in the same order for every vendor (delay,
    then an injected failure), and only the answer to an outage, which
    :meth:`outage` words as the vendor would, differs between fakes. Tokens
    are kept here too, so :meth:`expire_tokens` works alike everywhere.
    """

    def __init__(self, port: int = 0) -> None:
        self.server = FakeServer(port)
        #: How many tokens were asked for (each fake says which requests count).
        self.token_requests = 0
        #: Seconds to wait before answering any request.
        self.response_delay = 0.0
        #: Set when the fake stops: running jobs end without reporting.
        self._closing = threading.Event()
        self._failures: list[int] = []
        #: Token -> when it stops working (time.time()).
        self._tokens: dict[str, float] = {}
        # Its own lock: a knob turned by a test never waits for a job's lock.
        self._knobs = threading.Lock()

    @property
    def url(self) -> str:
        """The fake's base URL, e.g. http://127.0.0.1:41234."""
        return self.server.url

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve ``handler`` behind the knobs (see :meth:`FakeServer.route`)."""
        self.server.route(method, pattern, self._behind_knobs(handler))

    def outage(self, status: int) -> Reply:
        """The vendor's answer to a request an injected failure refuses."""
        return status, {"message": f"injected failure ({status})"}

    # -- knobs ---------------------------------------------------------------

    def fail_next_requests(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` requests, whatever the route, with ``status``."""
        with self._knobs:
            self._failures.extend([status] * n)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working, as if it had expired."""
        with self._knobs:
            self._tokens.clear()

    def keep_token(self, token: str, expires_at: float) -> None:
        """Accept ``token`` until ``expires_at`` (a time.time() value)."""
        with self._knobs:
            self._tokens[token] = expires_at

    def token_alive(self, token: str) -> bool:
        """Whether ``token`` was issued and has not expired."""
        with self._knobs:
            expires = self._tokens.get(token)
        return expires is not None and expires > time.time()

    def _behind_knobs(self, handler: Handler) -> Handler:
        def guarded(request: FakeRequest) -> Reply:
            if self.response_delay:
                time.sleep(self.response_delay)
            with self._knobs:
                failure = self._failures.pop(0) if self._failures else None
            if failure is not None:
                return self.outage(failure)
            return handler(request)

        return guarded

    # -- lifecycle -------------------------------------------------------------

    def start(self: _Vendor) -> _Vendor:
        """Serve in the background."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving; running jobs end without reporting."""
        self._closing.set()
        self.server.stop()

    def __enter__(self: _Vendor) -> _Vendor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
