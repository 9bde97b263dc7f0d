"""``make run``: the reference stack in the foreground, stopped cleanly by any signal.

Rasa, the action server and the chat page each run in a session of their own
(devtools.stack), so nothing but this process stops them: it turns SIGTERM,
SIGINT and SIGHUP into an orderly stop of all three.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import yaml

from devtools.stack import (
    DEFAULT_TOKEN,
    ROOT,
    Service,
    action_service,
    rasa_service,
    stop_all,
    wait_http,
    web_service,
)

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


#: What stops ``make run``: the terminal's Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StopRequested(BaseException):
    """A stop signal arrived; unwinds :func:`run` as KeyboardInterrupt would.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    on the way (urllib's, say) swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _StopSignals:
    """Turns the first stop signal into :class:`StopRequested`, once.

    Python's default only covers SIGINT, and not even that when the stack was
    started with SIGINT ignored (``make run &`` in a script); SIGTERM and
    SIGHUP would kill the stack outright and leave its services (each in its
    own session) running. Only the first signal counts: make passes its own
    SIGTERM on to the stack, and that second one must not cut the clean-up
    short.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.holding = False

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if not self.holding:
            raise StopRequested(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Delay a stop signal until the block is over.

        Around starting a child: a signal between the fork and ``Popen``
        returning would lose the child's pid, and so the child.
        """
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.received is not None:
            raise StopRequested(self.received)


def _say(text: str, *, error: bool = False) -> None:
    """Print, unless the terminal is gone (SIGHUP): the clean-up still runs."""
    try:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
    except OSError:
        pass


def run(services: list[Service], ready: str) -> int:
    """Start ``services`` in order, print ``ready``, and keep them running.

    SIGTERM, SIGINT and SIGHUP stop every service and return 0; a service
    stopping on its own stops the others and returns 1.
    """
    signals = _StopSignals()
    signals.install()
    try:
        for service in services:
            _say(f"starting {service.name} (log: {os.path.relpath(service.log, ROOT)})")
            with signals.held():
                service.spawn()
            assert service.process is not None
            wait_http(service.health_url, 180, service.process, service.log)
        _say(ready)
        while all(s.process and s.process.poll() is None for s in services):
            time.sleep(0.5)
        dead = [s.name for s in services if s.process and s.process.poll() is not None]
        _say(f"{', '.join(dead)} stopped; see its log", error=True)
        return 1
    except StopRequested as stop:
        _say(f"\n{signal.Signals(stop.signum).name}: stopping...")
        return 0
    finally:
        signals.holding = True  # a signal now must not interrupt the clean-up
        stop_all(services)


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
