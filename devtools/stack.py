"""Starting the reference stack's processes: Rasa, the action server, the chat page.

Shared by ``make run`` (devtools.runner) and the end-to-end
tests, so both start the parts exactly the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA_VENV = ROOT / ".venv-rasa"
MODEL = ROOT / "models" / "reference.tar.gz"
DEFAULT_TOKEN = "rasa-rpa-dev-token"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``url`` until it answers below 500; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(
                f"{url}: process exited with {process.returncode}\n{tail}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f}s")


@dataclass
class Service:
    """One child process with its log file."""

    name: str
    command: list[str]
    health_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the process, in a session (and so a process group) of its own.

        Its own group, so that stopping it reaches its workers too (Rasa's,
        Sanic's), and so that a Ctrl-C in the terminal reaches only the stack,
        which then stops the services in order.
        """
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self, timeout: float = 60.0) -> Service:
        """Start and wait until healthy."""
        self.spawn()
        assert self.process is not None
        wait_http(self.health_url, timeout, self.process, self.log)
        return self

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the service's process group.

        Also when the leader has exited already: its workers may not have.
        """
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass  # nobody left in the group

    def wait_stopped(self, timeout: float) -> bool:
        """Wait until the process and everyone in its group exited; True if so."""
        if self.process is None:
            return True
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return _wait_group_gone(self.process.pid, deadline - time.monotonic())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the process group (SIGKILL if it does not go)."""
        if self.process is None:
            return
        self.signal_group(sig)
        if not self.wait_stopped(timeout):
            self.signal_group(signal.SIGKILL)
            self.wait_stopped(5)

    def kill(self) -> None:
        """kill -9 the server process only (its robots live in their own sessions)."""
        self.stop(signal.SIGKILL)


def stop_all(services: list[Service], timeout: float = 8.0) -> None:
    """SIGTERM every service at once, then SIGKILL whatever is left at ``timeout``.

    All at once rather than one after the other, so the ports are free within
    ``timeout`` (and a moment) however slow any one service is to go.
    """
    for service in services:
        service.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    stuck = [
        service
        for service in services
        if not service.wait_stopped(max(0.0, deadline - time.monotonic()))
    ]
    for service in stuck:
        service.signal_group(signal.SIGKILL)
    for service in stuck:
        service.wait_stopped(2)


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """Wait until every process of the group (Sanic's workers too) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def rasa_python() -> Path:
    """The Rasa environment's interpreter."""
    return RASA_VENV / "bin" / "python"


def rasa_service(
    port: int,
    *,
    token: str,
    endpoints: Path,
    credentials: Path,
    log: Path,
    model: Path = MODEL,
    cwd: Path = ROOT,
) -> Service:
    """The real Rasa 3.6 server with the HTTP API on 127.0.0.1."""
    command = [
        str(RASA_VENV / "bin" / "rasa"),
        "run",
        "--enable-api",
        "-i",
        "127.0.0.1",
        "--port",
        str(port),
        "--cors",
        "*",
        "--auth-token",
        token,
        "-m",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
    ]
    return Service(
        "rasa",
        command,
        f"http://127.0.0.1:{port}/",
        log,
        cwd=cwd,
        env={"SQLALCHEMY_SILENCE_UBER_WARNING": "1"},
    )


def action_service(
    port: int,
    *,
    config: Path,
    log: Path,
    env: dict[str, str] | None = None,
    actions: str = "actions",
    entry: tuple[str, ...] = ("rasa_rpa.cli", "run"),
    cwd: Path = ROOT,
) -> Service:
    """The rasa-sdk action server with rasa-rpa, as ``rasa-rpa run`` starts it.

    ``entry`` is the module (and arguments) to run instead, for a server that
    adds routes of its own (the benchmark's floor routes). ``cwd`` is the
    bot's folder: the actions package is imported from there.
    """
    command = [
        sys.executable,
        "-m",
        *entry,
        "--actions",
        actions,
        "--config",
        str(config),
        "--port",
        str(port),
    ]
    health = f"http://127.0.0.1:{port}/rpa/health"
    return Service("actions", command, health, log, env=env or {}, cwd=cwd)


def web_service(port: int, *, log: Path) -> Service:
    """A static server for web/ (the chat page and the widget bundle)."""
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(ROOT / "web"),
    ]
    return Service("web", command, f"http://127.0.0.1:{port}/", log)
