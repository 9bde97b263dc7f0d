"""Starting the reference stack's processes: Rasa, the action server, the chat page.

Shared by ``make run`` (``python -m devtools.stack``) and the end-to-end
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

import yaml

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

    def start(self, timeout: float = 60.0) -> Service:
        """Start and wait until healthy."""
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
        wait_http(self.health_url, timeout, self.process, self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the process group (SIGKILL if it does not go)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass
        _wait_group_gone(process.pid)

    def kill(self) -> None:
        """kill -9 the server process only (its robots live in their own sessions)."""
        self.stop(signal.SIGKILL)


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Wait until every process of the group (Sanic's workers too) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
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
) -> Service:
    """The rasa-sdk action server with rasa-rpa, as ``rasa-rpa run`` starts it.

    ``entry`` is the module (and arguments) to run instead, for a server that
    adds routes of its own (the benchmark's floor routes).
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
    return Service(
        "actions", command, f"http://127.0.0.1:{port}/rpa/health", log, env=env or {}
    )


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


#: ``make run``'s ports, each overridable from the environment (two stacks on
#: one machine, or a test that must not collide with a developer's own stack).
PORTS = {
    "rasa": ("RASA_PORT", 5005),
    "actions": ("ACTIONS_PORT", 5055),
    "web": ("WEB_PORT", 8080),
}


def port_from_env(variable: str, default: int) -> int:
    """The port in ``$variable`` (``default`` when unset); exits on a bad value."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{variable}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def endpoints_for(actions_port: int, state: Path) -> Path:
    """endpoints.yml, rewritten into ``state`` when the action server moved.

    Rasa's own ``${VAR}`` interpolation has no default, so endpoints.yml keeps
    the plain URL a developer can read and the stack derives a copy only for a
    port that is not the default. Relative paths in it are relative to Rasa's
    working directory (ROOT), so the copy may live anywhere.
    """
    endpoints = ROOT / "endpoints.yml"
    if actions_port == PORTS["actions"][1]:
        return endpoints
    content = yaml.safe_load(endpoints.read_text())
    content["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
    derived = state / "endpoints.yml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(content))
    return derived


def reference_services(token: str, ports: dict[str, int]) -> list[Service]:
    """The reference bot's three processes on ``ports`` (see :data:`PORTS`)."""
    # rpa.yml reads these for the Rasa URL and the robots' callback URL.
    os.environ["RASA_PORT"] = str(ports["rasa"])
    os.environ["ACTIONS_PORT"] = str(ports["actions"])
    state = ROOT / ".rasa-rpa"
    logs = state / "logs"
    return [
        action_service(
            ports["actions"], config=ROOT / "rpa.yml", log=logs / "actions.log"
        ),
        rasa_service(
            ports["rasa"],
            token=token,
            endpoints=endpoints_for(ports["actions"], state),
            credentials=ROOT / "credentials.yml",
            log=logs / "rasa.log",
        ),
        web_service(ports["web"], log=logs / "web.log"),
    ]


def run(services: list[Service], ready: str) -> int:
    """Start ``services`` in order, print ``ready``, and keep them running.

    Returns 1 when one of them stops on its own, 0 on Ctrl-C; every started
    service is stopped before returning.
    """
    try:
        for service in services:
            log = os.path.relpath(service.log, ROOT)
            print(f"starting {service.name} (log: {log})...", flush=True)
            service.start(timeout=180)
        print(ready, flush=True)
        while all(s.process and s.process.poll() is None for s in services):
            time.sleep(0.5)
        dead = [s.name for s in services if s.process and s.process.poll() is not None]
        print(f"{', '.join(dead)} stopped; see its log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        for service in reversed(services):
            service.stop()


def main() -> int:
    """``make run``: Rasa on 5005, actions on 5055, the chat page on 8080.

    ``RASA_PORT``, ``ACTIONS_PORT`` and ``WEB_PORT`` move them.
    """
    token = os.environ.setdefault("RASA_TOKEN", DEFAULT_TOKEN)
    ports = {name: port_from_env(*PORTS[name]) for name in PORTS}
    rasa = f"http://127.0.0.1:{ports['rasa']}"
    actions = f"http://127.0.0.1:{ports['actions']}"
    page = f"http://127.0.0.1:{ports['web']}"
    if ports["rasa"] != PORTS["rasa"][1]:
        page += f"/?rasa={rasa}"  # web/index.html reads Rasa's URL from ?rasa=
    ready = (
        f'\nReady. Open {page} and say "get my orders".\n'
        f"  Rasa:          {rasa} (API token from $RASA_TOKEN)\n"
        f"  Action server: {actions} (callbacks under /rpa/v1)\n"
        "Ctrl-C stops all three."
    )
    return run(reference_services(token, ports), ready)


if __name__ == "__main__":
    raise SystemExit(main())
