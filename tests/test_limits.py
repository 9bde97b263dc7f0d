"""Body limits hold before a body is buffered, on every route that takes one."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from rasa_rpa.security import sign_webhook
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
    from devtools.stack import free_port
    from tests.conftest import ActionServer, base_config

    tmp = tmp_path_factory.mktemp("limits")
    port = free_port()
    config = base_config(
        tmp,
        callbacks={
            "public_url": f"http://127.0.0.1:{port}",
            "secret": "test-master-key-0123456789abcdef",
            "max_body_bytes": LIMIT,
        },
    )
    running = ActionServer(tmp, config, port).start()
    yield running
    running.stop()


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
