"""The real stack: Rasa 3.6.21 with the reference model, `rasa-rpa run`, real robots.

Conversations go through Rasa's ``callback`` channel: Rasa POSTs every bot
message, answers and pushes alike, to a receiver here, which is what a user
on a push-capable channel would see.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from devtools.stack import ROOT, Service, action_service, free_port, rasa_service
from rasa_rpa.security import JobKeys
from rasa_rpa.testing import action_call

RASA_TOKEN = "e2e-rasa-token"
#: The asker robot's inputs and their defaults.
ASKER_INPUTS = {
    "question": "What should the report be called?",
    "choices": "",
    "free_text": "yes",
    "timeout": "2m",
}
MASTER_KEY = "e2e-master-key-0123456789abcdefgh"


class Inbox:
    """Bot messages Rasa sent to the callback channel, per conversation."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        #: When each message arrived (time.perf_counter), in step with messages:
        #: the benchmarks time both paths to this moment.
        self.arrived_at: dict[str, list[float]] = defaultdict(list)
        self._changed = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.perf_counter()
                with inbox._changed:
                    inbox.messages[body["recipient_id"]].append(body)
                    inbox.arrived_at[body["recipient_id"]].append(now)
                    inbox._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def texts(self, sender: str) -> list[str]:
        with self._changed:
            return [m.get("text") or "" for m in self.messages[sender]]

    def wait_text(self, sender: str, pattern: str, timeout: float = 30) -> str:
        """The first message of ``sender`` matching ``pattern`` (waits for it)."""
        return str(self.wait_message(sender, pattern, timeout)["text"])

    def wait_arrival(
        self, sender: str, pattern: str, timeout: float = 30
    ) -> tuple[str, float]:
        """The first message matching ``pattern``, and when it arrived."""
        message = self.wait_message(sender, pattern, timeout)
        with self._changed:
            n = next(i for i, m in enumerate(self.messages[sender]) if m is message)
            return str(message["text"]), self.arrived_at[sender][n]

    def wait_message(
        self, sender: str, pattern: str, timeout: float = 30
    ) -> dict[str, Any]:
        """The first message (text, buttons...) of ``sender`` whose text matches."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages[sender]:
                    if regex.search(message.get("text") or ""):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no message matching {pattern!r} for {sender}; got "
                        f"{[m.get('text') for m in self.messages[sender]]}"
                    )
                self._changed.wait(remaining)


class Stack:
    """Rasa + action server + inbox, with helpers to chat as a user."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.inbox = Inbox()
        self.rasa_port = free_port()
        self.actions_port = free_port()
        self.rasa_url = f"http://127.0.0.1:{self.rasa_port}"
        self.actions_url = f"http://127.0.0.1:{self.actions_port}"
        endpoints = tmp / "endpoints.yml"
        endpoints.write_text(
            yaml.safe_dump(
                {
                    "action_endpoint": {"url": f"{self.actions_url}/webhook"},
                    "tracker_store": {
                        "type": "SQL",
                        "dialect": "sqlite",
                        "db": str(tmp / "tracker.db"),
                    },
                }
            )
        )
        credentials = tmp / "credentials.yml"
        credentials.write_text(
            yaml.safe_dump(
                {
                    "rest": None,
                    "callback": {"url": self.inbox.url},
                    "socketio": {
                        "user_message_evt": "user_uttered",
                        "bot_message_evt": "bot_uttered",
                        "session_persistence": True,
                    },
                }
            )
        )
        config = yaml.safe_load((ROOT / "rpa.yml").read_text())
        config["rasa"] = {"url": self.rasa_url, "token": RASA_TOKEN}
        config["callbacks"] = {"public_url": self.actions_url, "secret": MASTER_KEY}
        config["store"] = {"url": f"sqlite:///{tmp / 'jobs.db'}"}
        config["providers"]["local"]["robots_dir"] = str(ROOT / "robots")
        config["delivery"] = {"initial_backoff": 0.5, "max_backoff": 2}
        inputs = config["automations"]["collect_order_details"]["inputs"]
        inputs["step_delay"] = "2s"
        # A robot that asks one question, from its inputs (tests/robots/asker.robot);
        # started through the action server (start_asker), as no intent of
        # the reference model names it.
        config["providers"]["testbots"] = {
            "type": "local",
            "robots_dir": str(ROOT / "tests" / "robots"),
        }
        config["automations"]["asker"] = {
            "description": "report naming",
            "provider": "testbots",
            "task": "asker",
            "intent": "e2e_ask",
            "timeout": "5m",
            "inputs": {
                name: {"entity": name, "default": default}
                for name, default in ASKER_INPUTS.items()
            },
        }
        (tmp / "rpa.yml").write_text(yaml.safe_dump(config))
        self.rasa: Service = rasa_service(
            self.rasa_port,
            token=RASA_TOKEN,
            endpoints=endpoints,
            credentials=credentials,
            log=tmp / "rasa.log",
            cwd=tmp,
        )
        self.actions: Service = action_service(
            self.actions_port, config=tmp / "rpa.yml", log=tmp / "actions.log"
        )

    @contextlib.contextmanager
    def order_automation_on(
        self, provider: str, settings: dict[str, Any]
    ) -> Iterator[None]:
        """Restart the action server with the order automation on ``provider``."""
        path = self.tmp / "rpa.yml"
        original = path.read_text()
        config = yaml.safe_load(original)
        config["providers"][provider] = settings
        config["automations"]["collect_order_details"]["provider"] = provider
        config["reconciler"] = {"interval": 0.5}
        self.actions.stop()
        path.write_text(yaml.safe_dump(config))
        self.actions.start(timeout=60)
        try:
            yield
        finally:
            self.actions.stop()
            path.write_text(original)
            self.actions.start(timeout=60)

    def say(self, sender: str, text: str) -> None:
        response = requests.post(
            f"{self.rasa_url}/webhooks/callback/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        assert response.status_code == 200, response.text

    def start_asker(self, sender: str, **inputs: str) -> str:
        """Start the asker robot for ``sender`` the way Rasa runs the start
        action; return the job id. ``sender`` must have said something first,
        so Rasa knows which channel its news goes to."""
        entities = [{"entity": k, "value": v} for k, v in inputs.items()]
        body = action_call(
            "action_start_rpa_job", sender, intent="e2e_ask", entities=entities
        )
        response = requests.post(f"{self.actions_url}/webhook", json=body, timeout=30)
        response.raise_for_status()
        events = response.json()["events"]
        [job_id] = [e["value"] for e in events if e.get("name") == "rpa_job_id"]
        return str(job_id)

    def job(self, job_id: str, sender: str) -> dict[str, Any]:
        """The job as its robot reads it."""
        token = JobKeys(MASTER_KEY).mint_token(job_id, sender)
        response = requests.get(
            f"{self.actions_url}/rpa/v1/jobs/{job_id}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job

    def tracker(self, sender: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params={"token": RASA_TOKEN},
            timeout=30,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def job_id(self, sender: str) -> str:
        value = self.tracker(sender)["slots"].get("rpa_job_id")
        assert value, f"no rpa_job_id slot for {sender}"
        return str(value)

    def job_state(self, job_id: str, sender: str) -> str:
        token = JobKeys(MASTER_KEY).mint_token(job_id, sender)
        response = requests.get(
            f"{self.actions_url}/rpa/v1/jobs/{job_id}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return str(response.json()["state"])

    def outbox_pending(self) -> int:
        """Messages the action server has yet to hand to Rasa."""
        response = requests.get(f"{self.actions_url}/rpa/health", timeout=10)
        response.raise_for_status()
        return int(response.json()["outbox"]["pending"])

    @staticmethod
    def new_sender() -> str:
        return f"e2e-{uuid.uuid4().hex[:12]}"
