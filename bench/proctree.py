"""CPU time of whole process trees, read from /proc: what a target spends per request.

A process's CPU is ``utime + stime`` of its ``/proc/<pid>/stat`` plus
``cutime + cstime`` (the children it has reaped), so a short-lived child
still counts after it exits; a live child counts through its own line.
A tree is a root and every process whose parent chain reaches it. Read a
tree before and after a phase and subtract: CPU seconds in between.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROC", "Stat", "cpu_seconds", "read_stats", "tree", "wait_quiet"]

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    ticks: int  # utime + stime + cutime + cstime


def _parse(pid: int, text: str) -> Stat:
    # The command name is in parentheses and may hold spaces or ')': split after the last one.
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5) (state): ppid is 4, utime..cstime are 14..17.
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Stat(pid, ppid, utime + stime + cutime + cstime)


def read_stats(proc: Path = PROC) -> dict[int, Stat]:
    """Every process's :class:`Stat` under ``proc``; one that exits while read is left out."""
    stats = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        stats[int(entry.name)] = _parse(int(entry.name), text)
    return stats


def tree(stats: dict[int, Stat], roots: Iterable[int]) -> set[int]:
    """``roots`` (those still running) and all their descendants in ``stats``."""
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    found: set[int] = set()
    todo = [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def cpu_seconds(
    roots: Iterable[int], proc: Path = PROC, stats: dict[int, Stat] | None = None
) -> float:
    """CPU seconds used so far by the trees under ``roots`` (read now, or from ``stats``)."""
    stats = read_stats(proc) if stats is None else stats
    return sum(stats[pid].ticks for pid in tree(stats, roots)) / CLOCK_TICKS


def wait_quiet(groups: Iterable[Iterable[int]], *, window_s: float = 1.0, max_share: float = 0.05,
               timeout_s: float = 30.0, proc: Path = PROC) -> tuple[float, bool]:  # fmt: skip
    """Wait until every group of trees used under ``max_share`` of a core for ``window_s``.

    Returns the seconds waited and whether it got quiet (False: ``timeout_s`` passed).
    """
    groups = [tuple(g) for g in groups]
    start = time.monotonic()
    while True:
        before = read_stats(proc)
        time.sleep(window_s)
        after = read_stats(proc)
        busy = [
            cpu_seconds(g, stats=after) - cpu_seconds(g, stats=before) > max_share * window_s
            for g in groups
        ]
        waited = time.monotonic() - start
        if not any(busy):
            return waited, True
        if waited >= timeout_s:
            return waited, False
