"""``make run`` itself: the real Rasa, action server and chat page, then SIGTERM.

tests/test_stack.py covers every stop signal over stand-in services in
seconds; this is the one run through make and the real processes, because
what make does with a signal, and what Rasa's and Sanic's workers do, is
only known by trying.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from devtools.stack import MODEL, ROOT, free_port
from tests.waiting import descendants, kill_all, pid_gone, port_open, wait_until

pytestmark = pytest.mark.e2e

SUB_MAKE = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}


@pytest.mark.timeout(400)
def test_sigterm_to_make_run_stops_the_whole_stack(tmp_path):
    if not MODEL.exists():
        raise AssertionError(f"{MODEL} is missing: run `make setup` (it trains it)")
    ports = {"RASA_PORT": free_port(), "ACTIONS_PORT": free_port()}
    ports["WEB_PORT"] = free_port()
    output = (tmp_path / "make-run.out").open("wb")
    # `-o setup`: run `run`'s own recipe and never rebuild setup from a test.
    # `make test` has just made setup (CI's clean clone included); a worktree
    # that shares another checkout's venvs has older stamps and make would
    # reinstall into the shared venv. The recipe, and so the signal's path
    # (make, then `python -m devtools.stack`), is the same either way.
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "setup", "run"],
        cwd=ROOT,
        env={
            # As typed in a terminal, not as a sub-make of `make test`.
            **{k: v for k, v in os.environ.items() if k not in SUB_MAKE},
            **{name: str(port) for name, port in ports.items()},
        },
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make leads its own group, as in a terminal
    )
    started: set[int] = set()
    try:
        wait_until(
            lambda: all(port_open(port) for port in ports.values()),
            300,
            "make run's three ports answer",
            interval=0.5,
        )
        started |= descendants(make.pid)
        # The terminal's Ctrl-C, a `kill` of the job, systemd: the whole group.
        os.killpg(make.pid, signal.SIGTERM)
        wait_until(
            lambda: not any(port_open(port) for port in ports.values()),
            10,
            "SIGTERM freed make run's ports",
        )
        wait_until(
            lambda: all(map(pid_gone, started)), 10, "SIGTERM ended every process"
        )
    finally:
        kill_all(started | descendants(make.pid) | {make.pid})
        make.wait(10)
        output.close()
