"""A process and all its descendants, found and signalled as one (Linux /proc).

A robot's children may leave its process group: Robot Framework's Process
library starts each one in a session of its own, so a signal to the robot's
group misses them, and once the robot exits they are re-parented to init
and no longer look like its descendants. So the tree is collected before
the first signal, and every member is signalled by its pid (and, if it
leads a group, by its group).

Each member is remembered with its start time: a pid is reused after its
process exits, and a signal must never reach a stranger that got it.
Standard library only; on a system without ``/proc`` the tree is the root.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Member", "alive", "collect", "signal_all"]


@dataclass(frozen=True)
class Member:
    """One process of a tree, as it was when the tree was collected."""

    pid: int
    #: Clock ticks after boot (``/proc/<pid>/stat`` field 22): tells a reused pid.
    started: int
    #: Its process group, to signal the group too when it leads one.
    group: int


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """State, parent, group and start time of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def collect(root: int) -> list[Member]:
    """``root`` and every living descendant of it, root first."""
    stats: dict[int, tuple[str, int, int, int]] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                stats[int(entry.name)] = stat
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    members, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        state, _, group, started = stats[pid]
        if state != "Z":  # a zombie has nothing left to stop
            members.append(Member(pid, started, group))
        todo += children.get(pid, [])
    return members


def alive(member: Member) -> bool:
    """Whether ``member`` still runs as the same process (not a reused pid)."""
    stat = _stat(member.pid)
    return stat is not None and stat[3] == member.started and stat[0] != "Z"


def signal_all(members: list[Member], sig: signal.Signals) -> None:
    """Send ``sig`` to each member still alive, and to each group one leads."""
    for member in members:
        if not alive(member):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if member.group == member.pid:
                os.killpg(member.pid, sig)
            os.kill(member.pid, sig)
