"""tests/waiting.py: the waits the other tests rely on must not be flaky themselves."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.waiting import async_wait_until, pid_gone, wait_until

NO_SUCH_PID = 2**22 + 12345  # above Linux's highest pid_max


def test_a_process_reaped_between_two_looks_is_gone(monkeypatch):
    """kill(pid, 0) still finds it, then the reaper takes /proc/<pid> away.

    The race that made test_local's robot-is-gone check raise
    FileNotFoundError in a clean-clone ``make test``.
    """
    real_kill = os.kill

    def still_there_at_first_look(pid: int, sig: int) -> None:
        if (pid, sig) != (NO_SUCH_PID, 0):
            real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", still_there_at_first_look)
    assert pid_gone(NO_SUCH_PID)


def test_a_running_process_is_not_gone_and_a_zombie_is():
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        assert not pid_gone(child.pid)
    finally:
        child.communicate(b"\n", timeout=10)  # exits, and is reaped by communicate
    assert pid_gone(child.pid)
    zombie = subprocess.Popen(["true"])
    # Not reaped (no wait): it stays a zombie, which counts as gone.
    wait_until(lambda: pid_gone(zombie.pid), 10, "true exited")
    assert zombie.poll() == 0


def test_wait_until_returns_the_first_truthy_answer():
    answers = iter([None, 0, [], "here"])
    assert wait_until(lambda: next(answers), 5) == "here"


def test_wait_until_fails_at_the_deadline_with_the_message():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the moon is up: not true within 0\.2s"):
        wait_until(lambda: False, 0.2, "the moon is up")
    assert time.monotonic() - started < 2


async def test_async_wait_until_awaits_a_coroutine_condition():
    answers = iter([False, False, True])

    async def check() -> bool:
        return next(answers)

    assert await async_wait_until(check, 5) is True
    with pytest.raises(AssertionError, match=r"never: not true within 0\.1s"):
        await async_wait_until(lambda: False, 0.1, "never")
