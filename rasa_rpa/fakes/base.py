"""A tiny threaded HTTP server the vendor fakes are built on.

Fakes serve real HTTP on 127.0.0.1 from a background thread, so tests,
demos and ``rasa-rpa fake <vendor>`` use them the same way. Routes are
``(method, regex)`` pairs; handlers get a :class:`FakeRequest` and return
``(status, json_body)`` or ``(status, json_body, headers)``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["FakeRequest", "FakeServer", "Reply"]

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[["FakeRequest"], Reply]


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
