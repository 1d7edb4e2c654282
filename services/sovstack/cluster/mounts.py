"""Find and remove mounts below a folder, and remove a folder only once nothing is mounted in it.

A tree that still has something mounted in it (a node's overlay, the /proc a
crashed debootstrap left) must never be deleted recursively: that would reach
through the mount into what it shows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sovstack.cluster.commands import ClusterError, run, try_run

__all__ = ["is_mounted", "mounts_under", "remove_tree", "unmount"]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first."""
    top = path.resolve() if path.exists() else path
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(_unescape(line.split()[4]))
        if point == top or top in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def is_mounted(path: Path) -> bool:
    top = path.resolve() if path.exists() else path
    return top in mounts_under(top)


def unmount(point: Path) -> None:
    """Unmount ``point``; if it is busy, detach it lazily rather than leave it."""
    code, _ = try_run(["umount", str(point)])
    if code != 0 and is_mounted(point):
        run(["umount", "--lazy", str(point)])


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below ``path``, then delete it; a missing path is fine."""
    if not path.exists() and not path.is_symlink():
        return
    for point in mounts_under(path):
        unmount(point)
    left = mounts_under(path)
    if left:
        raise ClusterError(f"{left[0]} is still mounted; unmount it, then run this again")
    shutil.rmtree(path, onerror=_gone_is_fine)


def _gone_is_fine(
    func: Callable[..., Any],
    path: str,
    exc_info: tuple[type[BaseException], BaseException, TracebackType],
) -> None:
    # An SSH control socket may vanish on its own while the tree is removed.
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]
