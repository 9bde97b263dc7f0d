"""A stand-in for Rasa's HTTP API, for tests and benchmarks of your own bot.

It records every ``trigger_intent`` and ``tracker/events`` call and answers
like Rasa does (200 with a tracker, 401 on a wrong token), over real HTTP on
127.0.0.1, in a background thread::

    with RasaStandIn(token="secret") as rasa:
        ...  # point rasa.url in rpa.yml at rasa.url
        rasa.wait_for(lambda calls: len(calls) >= 3)
        assert rasa.calls[0].body["name"] == "EXTERNAL_rpa_job_running"

``rasa.status = 503`` makes it answer as if Rasa were down;
``rasa.go_offline()`` / ``rasa.come_back()`` make it refuse connections
altogether, and ``rasa.crash_after_next_call()`` plays a Rasa that processes
a call and dies before answering it.
:func:`action_call` builds the body Rasa POSTs to the action server's
``/webhook``, to run an action without Rasa.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

__all__ = ["RasaCall", "RasaStandIn", "action_call"]


def action_call(
    action: str,
    sender: str,
    *,
    intent: str = "test",
    entities: list[dict[str, Any]] | None = None,
    text: str = "test",
    channel: str = "rest",
    domain: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
    latest_action: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """The JSON Rasa 3.6 POSTs to ``/webhook`` to run ``action`` for ``sender``.

    A minimal tracker: the latest message carries ``intent``, ``entities``
    and ``text`` as if the user had just said it on ``channel``; ``slots``
    and ``latest_action`` (the action that ran before, such as a form) as
    given.
    """
    tracker = {
        "sender_id": sender,
        "slots": slots or {},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": latest_action,
        "latest_message": {
            "intent": {"name": intent},
            "entities": entities or [],
            "text": text,
            "message_id": message_id,
        },
        "latest_event_time": time.time(),
        "latest_input_channel": channel,
    }
    return {
        "next_action": action,
        "sender_id": sender,
        "tracker": tracker,
        "domain": domain or {"responses": {}},
        "version": "3.6.21",
    }


@dataclass(frozen=True)
class RasaCall:
    """One call the stand-in received."""

    conversation_id: str
    endpoint: str
    body: Any
    params: dict[str, str]
    at: float
    headers: dict[str, str] = field(default_factory=dict)


class RasaStandIn:
    """Records external-event calls the way Rasa's HTTP API receives them."""

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        self.token = token
        #: Set to 5xx to play "Rasa is down" (the call is not recorded).
        self.status = 200
        #: When set, other intents get Rasa's 404 "not in the domain".
        self.known_intents: set[str] | None = None
        self.calls: list[RasaCall] = []
        self._lock = threading.Condition()
        #: Open client connections, so going offline can cut them too.
        self._connections: set[socket.socket] = set()
        self._crash_next = False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                with stand_in._lock:
                    stand_in._connections.add(self.connection)

            def finish(self) -> None:
                with stand_in._lock:
                    stand_in._connections.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "conversations":
                    events = stand_in.tracker_events(unquote(parts[1]))
                    self._reply(200, {"sender_id": parts[1], "events": events})
                    return
                self._reply(200, {"version": "stand-in"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                parts = url.path.strip("/").split("/", 2)
                if len(parts) < 3 or parts[0] != "conversations":
                    self._reply(404, {"message": "not found"})
                    return
                if stand_in.token is not None and params.get("token") != stand_in.token:
                    self._reply(401, {"reason": "NotAuthenticated"})
                    return
                if stand_in.status >= 300:
                    self._reply(stand_in.status, {"message": "stand-in is down"})
                    return
                name = (
                    (json.loads(raw or b"{}") or {}).get("name")
                    if (parts[2] == "trigger_intent")
                    else None
                )
                known = stand_in.known_intents
                if name is not None and known is not None and name not in known:
                    self._reply(
                        404,
                        {
                            "message": f"The intent '{name}' does not "
                            "exist in the domain."
                        },
                    )
                    return
                call = RasaCall(
                    unquote(parts[1]),
                    parts[2],
                    json.loads(raw or b"null"),
                    params,
                    time.time(),
                    {k.lower(): v for k, v in self.headers.items()},
                )
                with stand_in._lock:
                    stand_in.calls.append(call)
                    stand_in._lock.notify_all()
                    crash, stand_in._crash_next = stand_in._crash_next, False
                if crash:
                    # Processed, then gone before answering: the client sees
                    # the connection drop and then nobody listening.
                    stand_in.go_offline()
                    self.close_connection = True
                    return
                self._reply(200, {"tracker": {"sender_id": call.conversation_id}})

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._handler = Handler
        self._server = self._listen(port)
        self._serving: threading.Thread | None = None
        #: Serialises going offline and coming back (test thread vs handlers).
        self._switch = threading.Lock()

    def _listen(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        server.daemon_threads = True
        return server

    @property
    def url(self) -> str:
        """Base URL to put in ``rasa.url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        """The port it listens on, the same before and after going offline."""
        port: int = self._server.server_address[1]
        return port

    @property
    def offline(self) -> bool:
        """Whether connections are refused right now."""
        return self._serving is None

    def start(self) -> RasaStandIn:
        """Serve in the background."""
        with self._switch:
            self._serve()
        return self

    def _serve(self) -> None:
        self._serving = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._serving.start()

    def stop(self) -> None:
        """Stop serving."""
        self.go_offline()

    def go_offline(self) -> None:
        """Refuse connections until :meth:`come_back`, like a Rasa that died.

        The listening socket is closed and open keep-alive connections are
        cut, so a client's next call fails to connect: it never reached Rasa.
        """
        with self._switch:
            if self._serving is None:
                return
            self._server.shutdown()
            self._server.server_close()
            self._serving = None
            with self._lock:
                for connection in self._connections:
                    try:
                        connection.shutdown(socket.SHUT_RDWR)
                    except OSError:  # the client closed it meanwhile
                        pass
                self._lock.notify_all()

    def come_back(self) -> None:
        """Listen again on the same port (the URL in ``rasa.url`` stays right)."""
        with self._switch:
            if self._serving is not None:
                return
            self._server = self._listen(self.port)
            self._serve()

    def crash_after_next_call(self) -> None:
        """Process the next call, then die before answering it.

        The call is recorded (it is in the tracker), its connection is dropped
        without an answer, and connections are refused until :meth:`come_back`:
        the client cannot tell whether Rasa got it.
        """
        with self._lock:
            self._crash_next = True

    def __enter__(self) -> RasaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tracker_events(self, conversation_id: str) -> list[dict[str, Any]]:
        """The tracker as Rasa would keep it: one event per call's content."""
        events: list[dict[str, Any]] = []
        for call in self.calls_for(conversation_id):
            if call.endpoint == "trigger_intent":
                entities = call.body.get("entities") or {}
                if isinstance(entities, dict):
                    entities = [{"entity": k, "value": v} for k, v in entities.items()]
                events.append(
                    {
                        "event": "user",
                        "parse_data": {
                            "intent": {"name": call.body.get("name")},
                            "entities": entities,
                        },
                    }
                )
            else:
                body = call.body if isinstance(call.body, list) else [call.body]
                events.extend(body)
        return events

    def calls_for(self, conversation_id: str) -> list[RasaCall]:
        """The calls made for one conversation, in arrival order."""
        with self._lock:
            return [c for c in self.calls if c.conversation_id == conversation_id]

    def wait_for(
        self, predicate: Callable[[list[RasaCall]], bool], timeout: float = 20.0
    ) -> list[RasaCall]:
        """Block until ``predicate(calls)`` holds; return the calls."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.calls):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met; calls: {self.calls!r}")
                self._lock.wait(remaining)
            return list(self.calls)
