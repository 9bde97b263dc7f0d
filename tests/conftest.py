"""Shared fixtures: configs in temporary folders, a Rasa stand-in, action servers.

Servers are child processes started the way `rasa-rpa run` starts them,
talking real HTTP on 127.0.0.1, and are stopped by the fixtures. Route tests
that need no network use ``in_process`` instead: an app per test, in this
process (see tests/inprocess.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devtools.stack import ROOT, Service, action_service, free_port
from rasa_rpa.config import RpaConfig, config_from_dict
from rasa_rpa.security import JobKeys, sign_webhook
from rasa_rpa.testing import RasaStandIn, action_call
from tests.e2e.stack import Stack
from tests.inprocess import InProcessApp, serve_in_process

TOKEN = "test-rasa-token"
MASTER_KEY = "test-master-key-0123456789abcdef"


def base_config(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """A valid rpa.yml as a dict, everything stored under ``tmp``."""
    config: dict[str, Any] = {
        "version": 1,
        "rasa": {"url": "http://127.0.0.1:9", "token": TOKEN, "timeout": 5},
        "callbacks": {"public_url": "http://127.0.0.1:9", "secret": MASTER_KEY},
        "store": {"url": f"sqlite:///{tmp / 'jobs.db'}"},
        "delivery": {"poll_interval": 0.2, "initial_backoff": 0.2, "max_backoff": 1},
        "reconciler": {"interval": 0.5},
        "providers": {
            "local": {"type": "local", "robots_dir": str(ROOT / "robots")},
            "testbots": {"type": "local", "robots_dir": str(ROOT / "tests" / "robots")},
        },
        "automations": {
            "collect_order_details": {
                "provider": "local",
                "task": "collect_order_details",
                "intent": "get_orders",
                "timeout": "2m",
                "inputs": {
                    "customer": {"entity": "customer", "default": "ALL"},
                    "step_delay": "0.2s",
                },
            },
            "idle": {
                "provider": "testbots",
                "task": "idle",
                "intent": "wait",
                "inputs": {"duration": {"slot": "duration", "default": "60s"}},
            },
            "chatty": {
                "provider": "testbots",
                "task": "chatty",
                "intent": "chat",
                # Tests start a good and a failing run in one conversation.
                "max_running": 2,
                "inputs": {"fail": {"entity": "fail", "default": "no"}},
            },
            "missing": {
                "provider": "testbots",
                "task": "does_not_exist",
                "intent": "missing",
            },
            "env": {"provider": "testbots", "task": "env", "intent": "env"},
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., RpaConfig]:
    """Build a validated RpaConfig rooted in the test's temporary folder."""

    def make(**overrides: Any) -> RpaConfig:
        return config_from_dict(base_config(tmp_path, **overrides), base_dir=tmp_path)

    return make


@pytest.fixture
async def in_process(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[InProcessApp]]]:
    """Factory: the plugin's routes on an app in this process; stopped after."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> InProcessApp:
            config = config_from_dict(
                base_config(tmp_path, **overrides), base_dir=tmp_path
            )
            return await stack.enter_async_context(serve_in_process(config))

        yield start


@pytest.fixture
def rasa_stand_in() -> Iterator[RasaStandIn]:
    """Rasa's HTTP API as a recorder on a free port."""
    with RasaStandIn(token=TOKEN) as stand_in:
        yield stand_in


class ActionServer:
    """A running `rasa-rpa run` with a config in a temporary folder."""

    def __init__(self, tmp: Path, config: dict[str, Any], port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = tmp / "rpa.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.keys = JobKeys(MASTER_KEY)
        self.service: Service = action_service(
            port, config=self.config_path, log=tmp / "actions.log"
        )

    def start(self) -> ActionServer:
        self.service.start(timeout=60)
        return self

    def stop(self) -> None:
        self.service.stop()

    def kill(self) -> None:
        self.service.kill()

    def log(self) -> str:
        return (self.tmp / "actions.log").read_text(errors="replace")

    # -- acting as Rasa ------------------------------------------------------

    def run_action(
        self,
        action: str,
        sender: str,
        *,
        intent: str = "get_orders",
        entities: list[dict[str, Any]] | None = None,
        domain: dict[str, Any] | None = None,
        **tracker: Any,
    ) -> dict[str, Any]:
        """POST /webhook the way Rasa calls a custom action.

        ``tracker``: more of the tracker (slots, latest_action, message_id),
        as :func:`rasa_rpa.testing.action_call` takes them.
        """
        body = action_call(
            action, sender, intent=intent, entities=entities, domain=domain, **tracker
        )
        response = requests.post(f"{self.url}/webhook", json=body, timeout=20)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def start_job(self, sender: str, **kwargs: Any) -> str:
        """Start the order robot for ``sender``; return the job id."""
        result = self.run_action("action_start_rpa_job", sender, **kwargs)
        slots = [e for e in result["events"] if e.get("name") == "rpa_job_id"]
        assert slots, result
        job_id: str = slots[0]["value"]
        return job_id

    # -- acting as a robot ---------------------------------------------------

    def events_url(self, job_id: str) -> str:
        return f"{self.url}/rpa/v1/jobs/{job_id}/events"

    def send_signed(
        self,
        job_id: str,
        body: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> requests.Response:
        raw = json.dumps(body).encode()
        msg_id = str(body.get("id") or uuid.uuid4().hex)
        stamp = int(time.time()) if timestamp is None else timestamp
        signature = sign_webhook(
            secret or self.keys.signing_secret(job_id), msg_id, stamp, raw
        )
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }
        return requests.post(
            self.events_url(job_id), data=raw, headers=headers, timeout=10
        )

    def send_with_token(
        self, job_id: str, body: dict[str, Any] | bytes, token: str
    ) -> requests.Response:
        """POST ``body`` (a dict as JSON, or JSON text as it is) with a token."""
        if isinstance(body, bytes):  # JSON no dict can give (duplicate keys...)
            return requests.post(
                self.events_url(job_id),
                data=body,
                timeout=10,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                },
            )
        return requests.post(
            self.events_url(job_id),
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )

    def job(self, job_id: str, conversation_id: str) -> dict[str, Any]:
        token = self.keys.mint_token(job_id, conversation_id)
        response = requests.get(
            f"{self.url}/rpa/v1/jobs/{job_id}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_job(
        self, job_id: str, conversation_id: str, state: str, timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id, conversation_id)
            if job["state"] == state:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job stayed {job['state']}: {job}\n{self.log()}")
            time.sleep(0.1)


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[Callable[..., ActionServer]]:
    """Factory: start an action server with rasa-rpa; every one is stopped after."""
    started: list[ActionServer] = []

    def start(rasa_url: str = "http://127.0.0.1:9", **overrides: Any) -> ActionServer:
        port = free_port()
        folder = tmp_path / f"server-{len(started)}"
        folder.mkdir()
        config = base_config(tmp_path, **overrides)
        config["rasa"] = {**config["rasa"], "url": rasa_url}
        config["callbacks"] = {
            **config["callbacks"],
            "public_url": f"http://127.0.0.1:{port}",
        }
        server = ActionServer(folder, config, port)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        kill_robots_of(server.tmp)


@contextmanager
def running_action_server(folder: Path, **overrides: Any) -> Iterator[ActionServer]:
    """An action server whose config and store live in ``folder``.

    For module-scoped fixtures (one server for a module's tests, where
    ``action_server``'s one per test would cost seconds each): ``overrides``
    go to :func:`base_config`, the public URL is the server's own port, and
    the server is stopped and its robots killed after.
    """
    port = free_port()
    config = base_config(folder, **overrides)
    config["callbacks"] = {
        **config["callbacks"],
        "public_url": f"http://127.0.0.1:{port}",
    }
    server = ActionServer(folder, config, port).start()
    try:
        yield server
    finally:
        server.stop()
        kill_robots_of(folder)


@contextmanager
def running_job(server: ActionServer) -> Iterator[tuple[str, str]]:
    """A real robot that waits: its job stays running until cancelled after.

    Yields the job id and its conversation (sender) id.
    """
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    try:
        server.wait_job(job_id, sender, "running")
        yield job_id, sender
    finally:
        server.run_action("action_cancel_rpa_job", sender)


def kill_robots_of(folder: Path) -> None:
    """Robots outlive their server by design; a test's robots must not."""
    marker = str(folder).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real Rasa server, the action server and robots, shared by the session."""
    from devtools.stack import MODEL

    if not MODEL.exists():
        raise AssertionError(f"{MODEL} is missing: run `make setup` (it trains it)")
    running = Stack(tmp_path_factory.mktemp("e2e"))
    running.actions.start(timeout=60)
    running.rasa.start(timeout=240)
    yield running
    running.rasa.stop()
    running.actions.stop()
    kill_robots_of(running.tmp)
