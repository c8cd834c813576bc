"""Processes as Linux's /proc shows them: the one reader of /proc/<pid>/stat.

The Ray scan's reaper finds a local cluster's processes with it, and the tests and benchmarks use it to
find what a killed scan left running and how much CPU a scan's processes spent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    state: str  # "R", "S", "Z" (zombie), ...
    parent: int
    session: int
    started: int  # start time in clock ticks after boot: with the pid, names one process (pids are reused)
    cpu_seconds: float  # user + system time so far


def process_info(pid: int) -> ProcessInfo | None:
    """The process's entry, or None when it is gone (or /proc is not there)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The command name (field 2) is in parentheses and may hold spaces or ")": split after the last.
            fields = handle.read().rsplit(b")", 1)[1].split()
        return ProcessInfo(
            pid=pid,
            state=fields[0].decode(),
            parent=int(fields[1]),
            session=int(fields[3]),
            started=int(fields[19]),
            cpu_seconds=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        )
    except (OSError, IndexError, ValueError):
        return None


def all_processes() -> dict[int, ProcessInfo]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    found = {}
    for name in names:
        if name.isdigit() and (info := process_info(int(name))) is not None:
            found[info.pid] = info
    return found


def descendants(pid: int, table: dict[int, ProcessInfo] | None = None) -> dict[int, int]:
    """pid -> start time of every process below `pid` (children, their children, ...)."""
    table = all_processes() if table is None else table
    children: dict[int, list[ProcessInfo]] = {}
    for info in table.values():
        children.setdefault(info.parent, []).append(info)
    found, stack = {}, [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found[child.pid] = child.started
            stack.append(child.pid)
    return found


def session_members(session: int) -> dict[int, ProcessInfo]:
    return {pid: info for pid, info in all_processes().items() if info.session == session}


def still_running(family: dict[int, int]) -> list[int]:
    """Those of `family` (pid -> start time) still running: not gone, not a zombie, not a new process
    that reused the pid."""
    alive = []
    for pid, started in family.items():
        info = process_info(pid)
        if info is not None and info.started == started and info.state != "Z":
            alive.append(pid)
    return alive
