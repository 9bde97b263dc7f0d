"""Waiting for a condition with a deadline, never for a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too
long everywhere else (a slow one); polling the condition is neither.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    message: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Raises:
        AssertionError: ``condition`` stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not true within {timeout:g}s")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Awaitable[T]] | Callable[[], T],
    timeout: float = 10.0,
    message: str = "condition",
    interval: float = 0.02,
) -> T:
    """:func:`wait_until` for a test running on an event loop (awaits coroutines)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not true within {timeout:g}s")
        await asyncio.sleep(interval)


def pid_gone(pid: int) -> bool:
    """True once ``pid`` has exited: no such process, or a zombie nobody reaped yet.

    Each check may lose a race with the reaper (the process vanishes between
    ``kill(pid, 0)`` and reading its ``/proc`` entry); vanished means gone.
    """
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return True
    return state == "Z"


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        frontier -= found
        found |= frontier
    return found


def processes_with(*needles: bytes) -> list[int]:
    """The processes whose command line contains every one of ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # exited while we looked
            if all(needle in cmdline for needle in needles):
                found.append(int(entry.name))
    return found


def kill_all(pids: set[int]) -> None:
    """SIGKILL whichever of ``pids`` still run: a failed test leaves no orphans."""
    for pid in pids:
        if not pid_gone(pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def knocks_on(port: int, timeout: float) -> bool:
    """Listen on ``port`` until a client connects, then drop it unanswered.

    Stands in for a server that is down, and shows that someone tried it: a
    dropped connection is, to a client, what a dead server's is.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(timeout)
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return False
        connection.close()
        return True


def outbox_counts(server_url: str) -> dict[str, int]:
    """An action server's outbox counts (pending, delivered, dead), from /rpa/health."""
    response = requests.get(f"{server_url}/rpa/health", timeout=5)
    response.raise_for_status()
    return dict(response.json()["outbox"])


def delivery_retries(server_url: str) -> float:
    """Deliveries to Rasa that failed and were put back for a retry (/rpa/metrics)."""
    text = requests.get(f"{server_url}/rpa/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rasa_rpa_delivery_attempts_total"
        and sample.labels.get("outcome") == "retry"
    )


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
