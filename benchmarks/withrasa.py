"""The benchmarks that need the real Rasa (3.6.21, reference model): P2 here,
P6 in :mod:`benchmarks.p6` on the same stack.

Rasa pushes every bot message to the ``callback`` channel, received by the
end-to-end tests' inbox, which stamps each arrival: both the bridge and the
baseline are timed to that moment, the moment a user would see the message.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import statistics
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import (
    MASTER_KEY,
    Row,
    action_server,
    instant_server,
    percentile,
    row,
    start_job,
)
from devtools.stack import MODEL, free_port, rasa_service
from rasa_rpa.security import JobKeys
from tests.e2e.stack import Inbox

__all__ = [
    "TOKEN",
    "KeptAlive",
    "RasaStack",
    "p2_measure",
    "p2_rasa_latency",
    "post",
    "rasa_stack",
    "say_hi",
]

TOKEN = "bench-rasa-token"


@dataclass
class RasaStack:
    """Where the running stack answers."""

    actions: int
    rasa: int
    inbox: Inbox
    #: The action server's SQLite store, read to see its outbox drained.
    db: Path
    #: Where the action server starts jobs (the instant stand-in).
    provider_url: str

    def pending(self) -> int:
        """Outbox messages not yet answered by Rasa (read-only look)."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            [count] = db.execute(
                "SELECT COUNT(*) FROM outbox"
                " WHERE delivered_at IS NULL AND dead_at IS NULL"
            ).fetchone()
        finally:
            db.close()
        return int(count)

    def settle(self, timeout: float = 60) -> None:
        """Wait until Rasa has answered every outbox message.

        Rasa pushes a bot message to the channel before it saves the tracker,
        unlocks the conversation and answers; a request for the same
        conversation in that window waits for the lock in one-second ticks
        (Rasa's lock store), which would be charged to whichever path came
        next.
        """
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise RuntimeError("the outbox did not drain")
            time.sleep(0.001)

    def trigger_path(self, sender: str) -> str:
        return (
            f"/conversations/{sender}/trigger_intent"
            f"?output_channel=latest&include_events=NONE&token={TOKEN}"
        )

    def new_conversation(self) -> tuple[str, str]:
        """A fresh conversation with a running ``bench`` job: (sender, job id)."""
        sender = f"bench-{uuid.uuid4().hex[:10]}"
        say_hi(self, sender)
        return sender, start_job(self.actions, sender)


def say_hi(stack: RasaStack, sender: str) -> None:
    """The user greets the bot on the callback channel; wait for its answer."""
    post(
        f"http://127.0.0.1:{stack.rasa}/webhooks/callback/webhook",
        {"sender": sender, "message": "hi"},
    )
    stack.inbox.wait_text(sender, r"Hi!")


@contextmanager
def rasa_stack(tmp: Path, extra: dict[str, Any] | None = None) -> Iterator[RasaStack]:
    """Rasa + ``rasa-rpa run`` (SQLite) + the callback inbox, all on 127.0.0.1.

    ``extra`` is merged into the action server's rpa.yml (``delivery`` keys).
    """
    inbox = Inbox()
    rasa_port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    with (
        instant_server() as instant,
        action_server(
            tmp,
            f"http://127.0.0.1:{rasa_port}",
            None,
            f"http://127.0.0.1:{instant}/start",
            rasa_token=TOKEN,
            extra=extra,
        ) as port,
    ):
        endpoints = tmp / "endpoints.yml"
        endpoints.write_text(
            yaml.safe_dump(
                {"action_endpoint": {"url": f"http://127.0.0.1:{port}/webhook"}}
            )
        )
        credentials = tmp / "credentials.yml"
        credentials.write_text(yaml.safe_dump({"callback": {"url": inbox.url}}))
        rasa = rasa_service(
            rasa_port,
            token=TOKEN,
            endpoints=endpoints,
            credentials=credentials,
            log=tmp / "rasa.log",
            model=MODEL,
            cwd=tmp,
        )
        rasa.start(timeout=240)
        try:
            yield RasaStack(
                port,
                rasa_port,
                inbox,
                tmp / "jobs.db",
                f"http://127.0.0.1:{instant}/start",
            )
        finally:
            rasa.stop()


def p2_rasa_latency(tmp: Path, count: int) -> list[Row]:
    """P2 on a stack of its own."""
    with rasa_stack(tmp) as stack:
        return p2_measure(stack, count)


def p2_measure(stack: RasaStack, count: int, per_conversation: int = 20) -> list[Row]:
    """P2: callback → bot message at the channel vs trigger_intent → the same.

    Both paths are timed from just before their request to the message's
    arrival at the channel; neither waits on its HTTP answer first (read
    after the clock stops), and both use a kept-alive connection. A fresh
    conversation every ``per_conversation`` samples keeps trackers at a
    realistic length, so Rasa's cost for a long tracker does not swamp the
    bridge's.
    """
    ours, direct = _p2_measure(stack, count, per_conversation)
    return [
        row(
            "P2",
            "callback → message at channel p50 vs trigger_intent p50",
            statistics.median(ours) * 1000,
            statistics.median(direct) * 1000,
            "ms",
            "diff<=",
            5.0,
        ),
        row(
            "P2",
            "callback → message at channel p99 vs trigger_intent p99",
            percentile(ours, 99) * 1000,
            percentile(direct, 99) * 1000,
            "ms",
            "diff<=",
            15.0,
        ),
    ]


def _p2_measure(
    stack: RasaStack, count: int, per_conversation: int
) -> tuple[list[float], list[float]]:
    keys = JobKeys(MASTER_KEY)
    ours: list[float] = []
    direct: list[float] = []
    sender, job_id = "", ""
    # Kept-alive connections for both, as the bridge keeps its own to Rasa:
    # neither side pays a TCP handshake per sample.
    to_actions = KeptAlive(stack.actions)
    to_rasa = KeptAlive(stack.rasa)
    for n in range(-2, count):  # two warm-up samples
        if n < 0 or n % per_conversation == 0:
            sender, job_id = stack.new_conversation()
        auth = {"Authorization": f"Bearer {keys.mint_token(job_id, sender)}"}
        # Alternate which path goes first, so neither always follows the other.
        for path in ("ours", "direct") if n % 2 else ("direct", "ours"):
            marker = f"{path}-{n}"
            if path == "ours":
                event = {
                    "id": uuid.uuid4().hex,
                    "type": "job.progress",
                    "data": {"progress": n % 100, "message": marker},
                }
                started = time.perf_counter()
                to_actions.send(f"/rpa/v1/jobs/{job_id}/events", event, auth)
                arrived = stack.inbox.wait_arrival(sender, marker, timeout=30)[1]
                to_actions.answer()
                stack.settle()
            else:
                body = {
                    "name": "EXTERNAL_rpa_job_progress",
                    "entities": {"rpa_progress": n % 100, "rpa_message": marker},
                }
                started = time.perf_counter()
                to_rasa.send(stack.trigger_path(sender), body)
                arrived = stack.inbox.wait_arrival(sender, marker, timeout=30)[1]
                to_rasa.answer()
            if n >= 0:
                (ours if path == "ours" else direct).append(arrived - started)
    to_actions.close()
    to_rasa.close()
    return ours, direct


class KeptAlive:
    """One kept-alive HTTP connection whose request is sent now and whose
    answer is read later, so a timer can stop at the channel instead."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self, path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        self.connection.request(
            "POST",
            path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def answer(self) -> None:
        response = self.connection.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}")

    def close(self) -> None:
        self.connection.close()


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> None:
    """POST JSON and read the answer (raises on an HTTP error)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
