"""Finding and signalling a robot's whole process tree."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

from rasa_rpa.providers import proctree
from tests.waiting import pid_gone, wait_until


def test_a_child_in_its_own_session_is_part_of_the_tree():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.Popen(['sleep', '30'],"
            " start_new_session=True); print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"ok\n"
        tree = proctree.collect(parent.pid)
        assert tree[0].pid == parent.pid
        [child] = tree[1:]
        assert child.group == child.pid != parent.pid  # a group of its own
        proctree.signal_all(tree, signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: pid_gone(child.pid), 10, "the child was killed")
    finally:
        parent.kill()
        parent.wait(10)


def test_a_reused_pid_is_not_signalled():
    me = proctree.collect(os.getpid())[0]
    stranger = dataclasses.replace(me, started=me.started + 1)
    assert proctree.alive(me) and not proctree.alive(stranger)
    proctree.signal_all([stranger], signal.SIGKILL)  # would end this test run
    assert proctree.collect(2**22 + 12345) == []  # no such process
