"""HTTP/1.1 over a bare socket, for what ``requests`` cannot show.

``requests`` sends a whole body before it reads the answer, so it cannot tell
"refused at once" from "refused after 95 MB". These helpers send a head and
part of a body, stop as soon as an answer arrives, and report what came back
and how much had been sent by then. They also measure a server's memory.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PIECE = 64 * 1024


@dataclass
class Answer:
    """What the server said, and when."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    sent: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


def post_partly(
    base_url: str,
    path: str,
    *,
    declared: int | None,
    send: int,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Answer:
    """POST ``path`` claiming ``declared`` bytes (chunked if None), sending ``send``.

    Sending stops early when the server answers or closes. AssertionError
    when no answer arrives within ``timeout`` seconds: the server is still
    waiting for the rest of the body.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if declared is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {declared}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    piece = b"x" * PIECE
    if declared is None:
        piece = b"%x\r\n%b\r\n" % (PIECE, piece)  # never the last chunk
    started = time.monotonic()
    sent = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            while sent < send and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece)
                sent += PIECE
        except OSError:
            pass  # the server stopped reading and closed: its answer is waiting
        return _read_answer(sock, started, sent, timeout)


def post_bytes(
    base_url: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    timeout: float = 5.0,
) -> Answer:
    """POST ``body`` with header values sent byte for byte.

    For headers ``requests`` refuses to send: bytes that are not UTF-8,
    as a broken or hostile client may send them.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    lines = [f"POST {path} HTTP/1.1".encode(), f"Host: {host}:{port}".encode()]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: %d" % len(body))
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        return _read_answer(sock, started, len(body), timeout)


def _read_answer(
    sock: socket.socket, started: float, sent: int, timeout: float
) -> Answer:
    data = b""
    deadline = started + timeout
    try:
        while b"\r\n\r\n" not in data:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError) as exc:
        raise AssertionError(
            f"no answer within {timeout:.0f}s after {sent} body bytes ({exc!r})"
        ) from None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    if not status_line:
        raise AssertionError(f"connection closed without an answer after {sent} bytes")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    try:
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    return Answer(
        int(status_line.split(" ")[1]),
        headers,
        body,
        time.monotonic() - started,
        sent,
    )


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (Sanic's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@dataclass
class Trickled:
    """How a connection that sends a little at a time ended."""

    answer: bytes
    seconds: float
    closed: bool


def trickle(
    base_url: str,
    head: bytes,
    pieces: list[bytes],
    *,
    every: float,
    timeout: float,
) -> Trickled:
    """Send ``head``, then one of ``pieces`` every ``every`` seconds, until the
    server answers or closes, or ``timeout`` passes; report what came back.

    ``every`` is the client's pace (the behaviour under test), not a wait
    for the server: the server's answer is read as soon as it comes.
    """
    url = urlsplit(base_url)
    started = time.monotonic()
    answer, closed = b"", False
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(head)
        queue = list(pieces)
        while time.monotonic() - started < timeout:
            if select.select([sock], [], [], every)[0]:
                try:
                    data = sock.recv(65536)
                except OSError:
                    closed = True
                    break
                answer += data
                if not data:
                    closed = True
                    break
                continue
            if queue:
                try:
                    sock.sendall(queue.pop(0))
                except OSError:
                    closed = True
                    break
    return Trickled(answer, time.monotonic() - started, closed)
