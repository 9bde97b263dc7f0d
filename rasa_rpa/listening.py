"""Where a running action server listens, and where robots are told to call back.

``rasa-rpa run --port N`` decides the public URL robots get
(``callbacks.public_url``) before its workers start, and hands it to them
through :data:`~rasa_rpa.configvalues.PUBLIC_URL_ENV`:

* rpa.yml sets no ``callbacks.public_url``: robots are told the server's own
  address, ``http://<host>:N`` (``127.0.0.1`` when it listens on every
  interface), so moving the port never leaves robots calling the old one;
* rpa.yml sets a loopback URL on another port: it is kept (something may
  forward that port), but the terminal says plainly that robots on this
  machine will call a port this server is not on;
* any other URL (a proxy, an ingress, another host) is used as written.

The server also leaves its address in ``<state dir>/server.json`` while it
runs, so ``rasa-rpa doctor`` finds it on whatever port it was started.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from rasa_rpa.config import RpaConfig
from rasa_rpa.providers.http import safe_url

__all__ = [
    "SERVER_FILE",
    "connect_url",
    "is_loopback",
    "port_taken",
    "public_url_for",
    "recorded_server",
    "server_recorded",
]

#: The file in the state directory naming the running server's address.
SERVER_FILE = "server.json"
_EVERYWHERE = {"", "0.0.0.0", "::", "[::]"}


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine only (no URL at all counts as local)."""
    host = urlsplit(url).hostname
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to ``host:port``."""
    if host in _EVERYWHERE:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def _port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number: validation's business
        return None


def public_url_for(
    config: RpaConfig, host: str, port: int
) -> tuple[str | None, list[str]]:
    """The public URL to hand the workers (None: rpa.yml's stands), and what to say.

    The notes are for the terminal of ``rasa-rpa run``; a note starting with
    ``WARNING`` is one a developer must not miss.
    """
    own = connect_url(host, port)
    where = config.source
    if "public_url" not in config.callbacks.model_fields_set:
        notes = [f"robots call back at {own} (callbacks.public_url is not set)"]
        if host in _EVERYWHERE:
            notes.append(
                "robots on other machines cannot use 127.0.0.1: set "
                f"callbacks.public_url in {where} to an address they reach"
            )
        return own, notes
    configured = config.callbacks.public_url
    configured_port = _port(configured)
    if is_loopback(configured) and configured_port != port:
        return None, [
            f"WARNING: callbacks.public_url in {where} is {safe_url(configured)}, "
            "but this "
            f"server listens on port {port}: robots on this machine will call "
            f"back to port {configured_port}, not to this server (unless "
            f"something there forwards to it). Set callbacks.public_url to {own}, "
            "or remove it and `rasa-rpa run` uses its own port."
        ]
    shown = safe_url(configured)  # user info or a query may hold credentials
    return None, [f"robots call back at {shown} (callbacks.public_url)"]


@contextlib.contextmanager
def server_recorded(config: RpaConfig, url: str, public_url: str) -> Iterator[None]:
    """Leave the server's address in the state directory while it runs.

    Best effort: a state directory that cannot be written only costs the
    doctor its hint (it still looks at ``callbacks.public_url``).
    """
    path = config.state_dir / SERVER_FILE
    record = {"url": url, "public_url": public_url, "pid": os.getpid()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")
    except OSError:
        pass
    try:
        yield
    finally:
        # Only our own record: a second server may have replaced it since.
        if _read(path).get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()


def recorded_server(config: RpaConfig) -> str | None:
    """The address a running ``rasa-rpa run`` of this config left, if it still runs."""
    record = _read(config.state_dir / SERVER_FILE)
    url, pid = record.get("url"), record.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or pid <= 0:
        return None
    if not _alive(pid):
        return None
    return url


def _read(path: Path) -> dict[str, object]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # someone else's process, but alive
    except (OSError, OverflowError):
        return False
    return True


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it can.

    Checked before Sanic starts its workers, so a busy port is one line in
    the terminal instead of a worker's traceback.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As a server binds: a port left in TIME_WAIT by the last run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
