"""devtools.runner: ``make run`` stops everything it started, whatever stops it.

The real stack takes Rasa's half-minute start-up, so these tests run the
stack's own ``run`` loop over three stand-in services (a static web server
each, with a ``sleep`` beside it in its process group, as Rasa and Sanic have
workers). tests/e2e/test_make_run.py does it once through ``make run`` and
real Rasa.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.runner import port_from_env
from devtools.stack import ROOT, free_port
from tests.waiting import descendants, kill_all, pid_gone, port_open, wait_until

# The stand-in stack: ``python -c STACK port port port logs``.
STACK = """
import sys
from pathlib import Path
from devtools.runner import run
from devtools.stack import Service
*ports, logs = sys.argv[1:]
serve = f"{sys.executable} -m http.server --bind 127.0.0.1"
services = [
    Service(
        f"standin-{port}",
        ["sh", "-c", f"sleep 300 & exec {serve} {port}"],
        f"http://127.0.0.1:{port}/",
        Path(logs) / f"{port}.log",
    )
    for port in ports
]
raise SystemExit(run(services, "ready"))
"""


def ignore_sigint() -> None:
    """What a non-interactive shell does to a command it starts with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_stack(tmp_path: Path, sigint_ignored: bool) -> tuple[
    subprocess.Popen[bytes], list[int]
]:
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [sys.executable, "-c", STACK, *map(str, ports), str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # its own group, as make and the stack have
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )
    return process, ports


def serving(stack: subprocess.Popen[bytes], ports: list[int]) -> bool:
    """Whether every stand-in answers; fails at once if the stack exited."""
    assert stack.poll() is None, f"the stack exited with {stack.returncode}"
    return all(map(port_open, ports))


@pytest.mark.parametrize(
    ("sig", "sigint_ignored"),
    [
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGINT, False),
        # `make run &` from a script: SIGINT arrives ignored, and still stops it.
        (signal.SIGINT, True),
    ],
    ids=["TERM", "HUP", "INT", "INT-inherited-as-ignored"],
)
def test_a_stop_signal_stops_every_service_and_frees_the_ports(
    tmp_path, sig, sigint_ignored
):
    stack, ports = start_stack(tmp_path, sigint_ignored)
    children: set[int] = set()
    try:
        wait_until(lambda: serving(stack, ports), 30, "the stand-ins answer")
        children |= descendants(stack.pid)
        # three services, each a web server and its sleeping companion
        assert len(children) >= 6, children
        os.killpg(stack.pid, sig)
        wait_until(
            lambda: not any(map(port_open, ports)), 10, f"{sig.name} freed the ports"
        )
        wait_until(
            lambda: all(map(pid_gone, children)), 10, f"{sig.name} ended every child"
        )
        assert stack.wait(10) == 0
    finally:
        kill_all(children | descendants(stack.pid) | {stack.pid})
        stack.wait(5)


def test_a_service_that_dies_stops_the_others(tmp_path):
    stack, ports = start_stack(tmp_path, sigint_ignored=False)
    children: set[int] = set()
    try:
        wait_until(lambda: serving(stack, ports), 30, "the stand-ins answer")
        children |= descendants(stack.pid)
        victim = next(
            pid for pid in children if os.getpgid(pid) == pid  # a service's leader
        )
        os.kill(victim, signal.SIGKILL)
        assert stack.wait(15) == 1
        assert [port for port in ports if port_open(port)] == []
        assert [pid for pid in children if not pid_gone(pid)] == []
    finally:
        kill_all(children | descendants(stack.pid) | {stack.pid})
        stack.wait(5)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 5005), ("", 5005), (" 6005 ", 6005)]
)
def test_ports_come_from_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("RASA_PORT", raising=False)
    else:
        monkeypatch.setenv("RASA_PORT", value)
    assert port_from_env("RASA_PORT", 5005) == expected


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_bad_port_is_refused_with_the_variables_name(monkeypatch, value):
    monkeypatch.setenv("WEB_PORT", value)
    with pytest.raises(SystemExit, match="WEB_PORT"):
        port_from_env("WEB_PORT", 8080)
