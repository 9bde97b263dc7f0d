"""Body limits hold before a body is buffered, on every route that takes one."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from rasa_rpa.security import sign_webhook
from tests.conftest import running_action_server
from tests.rawhttp import post_partly, tree_rss_bytes

LIMIT = 4096
HUGE = 95_000_000  # what the attacker declared
CALLBACK_ROUTES = [
    "/rpa/v1/jobs/some-job/events",
    "/rpa/v1/providers/local/webhook",
    "/rpa/v1/providers/nope/webhook",
    "/api/v1/bots/___/mod/uipath/message",
]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits")
    with running_action_server(folder, callbacks={"max_body_bytes": LIMIT}) as running:
        yield running


@pytest.mark.parametrize("path", CALLBACK_ROUTES)
def test_declared_oversized_body_is_refused_before_it_is_read(server, path):
    answer = post_partly(server.url, path, declared=HUGE, send=1 << 20, headers=JSON)
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "too_large"
    # The rest of the body is never read: the connection ends with the answer.
    assert answer.headers["connection"] == "close"
    assert answer.seconds < 3


def test_oversized_upload_is_not_invited_with_100_continue(server):
    # A client that waits for "100 Continue" must get the 413 instead.
    headers = {**JSON, "Expect": "100-continue"}
    answer = post_partly(
        server.url, CALLBACK_ROUTES[0], declared=HUGE, send=0, headers=headers
    )
    assert answer.status == 413


@pytest.mark.parametrize("path", CALLBACK_ROUTES)
def test_chunked_body_is_cut_off_at_the_limit(server, path):
    # No terminating chunk is ever sent: only a server that stops at the limit
    # answers at all.
    answer = post_partly(server.url, path, declared=None, send=1 << 20, headers=JSON)
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "too_large"
    assert answer.headers["connection"] == "close"


def test_webhook_refuses_a_declared_body_over_the_server_limit(server):
    # Rasa's /webhook is rasa-sdk's route: the app-wide server.max_request_bytes
    # (16 MiB by default) applies there, not Sanic's 100 MB.
    answer = post_partly(server.url, "/webhook", declared=HUGE, send=1 << 20)
    assert answer.status == 413
    assert answer.headers["connection"] == "close"


def test_chunked_body_within_the_limit_is_accepted(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="missing")
    event = {"id": uuid.uuid4().hex, "type": "message", "data": {"text": "hi"}}
    raw = json.dumps(event).encode()
    stamp = int(time.time())
    headers = {
        **JSON,
        "webhook-id": event["id"],
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(
            server.keys.signing_secret(job_id), event["id"], stamp, raw
        ),
    }
    # A generator makes requests send Transfer-Encoding: chunked.
    response = requests.post(
        server.events_url(job_id),
        data=(raw[i : i + 10] for i in range(0, len(raw), 10)),
        headers=headers,
        timeout=10,
    )
    assert response.status_code in (200, 202), response.text
    assert response.json()["event_id"] == event["id"]


def test_burst_of_oversized_bodies_keeps_memory_bounded(server):
    paths = [*CALLBACK_ROUTES, "/webhook"]
    pid = server.service.process.pid
    post_partly(server.url, paths[0], declared=HUGE, send=1 << 20)  # warm up
    before = tree_rss_bytes(pid)

    def attack(i: int):
        return post_partly(
            server.url, paths[i % len(paths)], declared=HUGE, send=4 << 20
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attack, range(8)))
    grown = tree_rss_bytes(pid) - before
    assert [a.status for a in answers] == [413] * 8
    assert max(a.seconds for a in answers) < 5
    assert grown < 16 << 20, f"RSS grew by {grown / 2**20:.1f} MiB"


# -- slow senders ------------------------------------------------------------
#: Short deadlines, so the tests stay fast (defaults: 30 s each).
BODY_TIMEOUT = 1.0
HEAD_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    with running_action_server(
        tmp_path_factory.mktemp("slow"),
        callbacks={"body_timeout": BODY_TIMEOUT},
        server={"head_timeout": HEAD_TIMEOUT},
    ) as running:
        yield running


def _head(path: str, *lines: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: x", *lines]) + "\r\n").encode()


@pytest.mark.parametrize("path", CALLBACK_ROUTES)
def test_a_body_trickled_byte_by_byte_gets_408_and_a_closed_connection(
    slow_server, path
):
    from tests.rawhttp import trickle

    head = _head(path, "Content-Type: application/json", "Content-Length: 100000")
    ended = trickle(
        slow_server.url, head + b"\r\n{", [b" "] * 1000, every=0.2, timeout=10
    )
    assert ended.answer.startswith(b"HTTP/1.1 408 "), ended
    assert b'"code":"timeout"' in ended.answer.replace(b" ", b"")
    assert ended.closed and ended.seconds < BODY_TIMEOUT + 3, ended


def test_a_head_trickled_line_by_line_is_cut_off(slow_server):
    from tests.rawhttp import trickle

    head = _head("/rpa/v1/jobs/x/events")
    lines = [f"X-Line-{n}: a\r\n".encode() for n in range(1000)]
    ended = trickle(slow_server.url, head, lines, every=0.3, timeout=10)
    assert ended.answer.startswith(b"HTTP/1.1 408 "), ended
    assert ended.closed and ended.seconds < HEAD_TIMEOUT + 3, ended


def test_a_keep_alive_connection_cannot_trickle_its_next_head(slow_server):
    from tests.rawhttp import trickle

    first = b"GET /rpa/health HTTP/1.1\r\nHost: x\r\n\r\n"
    lines = [b"GET /rpa/health HTTP/1.1\r\n"]
    lines += [f"X-Line-{n}: a\r\n".encode() for n in range(1000)]
    ended = trickle(slow_server.url, first, lines, every=0.3, timeout=10)
    assert ended.answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in ended.answer, ended
    assert ended.closed and ended.seconds < HEAD_TIMEOUT + 3, ended


def test_a_prompt_request_is_answered_as_before(slow_server):
    # The deadlines are on the client's sending, never on the server's work.
    job = uuid.uuid4().hex
    body = json.dumps({"id": "e1", "type": "job.progress", "data": {}}).encode()
    started = time.monotonic()
    answer = requests.post(
        slow_server.events_url(job), data=body, headers=JSON, timeout=10
    )
    assert answer.status_code == 401  # read whole, then refused for no credential
    assert time.monotonic() - started < BODY_TIMEOUT
