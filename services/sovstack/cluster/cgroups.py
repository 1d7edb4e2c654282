"""One control group per node, created beside the caller's own.

Without D-Bus, ``systemd-nspawn --keep-unit`` puts a container's processes in
``payload/`` and itself in ``supervisor/`` below *its own* control group; two
nodes started from the same group would share those, and one node's systemd
would manage (and kill) the other's processes. So each node's nspawn is moved
into a group of its own before it starts. That group is also how ``down``
finds every process a node left, even one whose pid was never recorded.

Handles both layouts: the unified hierarchy alone (cgroup v2), and the hybrid
one where systemd's own ``name=systemd`` v1 hierarchy sits beside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from sovstack.cluster.commands import ClusterError

__all__ = ["bases", "kill_all", "members", "paths_for", "remove"]

ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """The caller's group in each hierarchy, keyed by the hierarchy's controllers ('' = v2)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    return own


def bases() -> list[Path]:
    """The folders to create node groups in: one per hierarchy nspawn uses."""
    own = _own_paths()
    if (ROOT / "cgroup.controllers").exists():
        return [ROOT / own.get("", "/").lstrip("/")]
    found = []
    if (ROOT / "systemd").is_dir() and "name=systemd" in own:
        found.append(ROOT / "systemd" / own["name=systemd"].lstrip("/"))
    if (ROOT / "unified" / "cgroup.procs").exists() and "" in own:
        found.append(ROOT / "unified" / own[""].lstrip("/"))
    if not found:
        raise ClusterError(f"no usable control group hierarchy under {ROOT}")
    return found


def paths_for(name: str) -> list[Path]:
    """The group folders ``name`` will have, one per hierarchy (not yet made)."""
    return [base / name for base in bases()]


def members(group: Path) -> set[int]:
    """Every process in ``group`` and the groups below it."""
    pids: set[int] = set()
    if not group.is_dir():
        return pids
    for folder, _, _ in os.walk(group):
        with contextlib.suppress(OSError):
            text = (Path(folder) / "cgroup.procs").read_text()
            pids.update(int(p) for p in text.split())
    return pids


def kill_all(groups: list[Path], wait: float = 10.0) -> None:
    """SIGKILL every process in ``groups`` until none is left, or raise after ``wait``."""
    deadline = time.monotonic() + wait
    while True:
        left = set().union(*(members(g) for g in groups)) if groups else set()
        if not left:
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"processes {sorted(left)} in {groups[0]} would not die; "
                "stop them by hand, then run 'sovstack cluster down' again"
            )
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove(group: Path) -> None:
    """Remove ``group`` and the groups below it (deepest first); it must hold no process."""
    if not group.is_dir():
        return
    for folder, _, _ in os.walk(group, topdown=False):
        with contextlib.suppress(FileNotFoundError):
            Path(folder).rmdir()
