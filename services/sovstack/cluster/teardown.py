"""Remove what a state record lists, newest first, and only that.

Nodes are stopped first, all together: nspawn gets SIGTERM (the node powers
off cleanly); whatever is still in a node's control group after the grace
period is killed. Then every other object goes in reverse creation order.
Each removal tolerates an object that is already gone, so ``down`` after a
crash, after a half-finished ``up`` and a second time all work. An object
that cannot be removed stays in the record, and the error names it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from sovstack.cluster import cgroups, mounts, network, nodes
from sovstack.cluster.commands import ClusterError
from sovstack.cluster.record import Record, Resource
from sovstack.core.progress import Echo

__all__ = ["NSPAWN_RUN", "teardown"]


NSPAWN_RUN = Path("/run/systemd/nspawn")
POWEROFF_GRACE = 30.0


def _stop_nodes(record: Record, echo: Echo) -> None:
    procs = [r for r in record.resources if r["kind"] == "process"]
    running = [p for p in procs if nodes.alive(int(p["pid"]), p["start_time"])]
    for p in running:
        echo(f"powering off {p['node']}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(p["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + POWEROFF_GRACE
    while running and time.monotonic() < deadline:
        running = [p for p in running if nodes.alive(int(p["pid"]), p["start_time"])]
        time.sleep(0.2)
    for p in running:
        echo(f"{p['node']} did not power off within {POWEROFF_GRACE:.0f}s: killing it")
    groups = [Path(r["path"]) for r in record.resources if r["kind"] == "cgroup"]
    cgroups.kill_all(groups)


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        path.rmdir()


def _run_netns(resource: Resource) -> None:
    """Undo what the first 'ip netns add' did to /run/netns, if nobody else uses it now."""
    path = network.NETNS_DIR
    if not path.is_dir() or any(path.iterdir()):
        return
    if not resource["was_mounted"] and mounts.is_mounted(path):
        mounts.unmount(path)
    if not resource["existed"]:
        _rmdir_if_empty(path)


def _remove(resource: Resource) -> None:
    kind = resource["kind"]
    if kind == "bridge" or kind == "veth":
        network.delete_link(resource["name"])
    elif kind == "netns":
        network.delete_netns(resource["name"])
    elif kind == "mount":
        if mounts.is_mounted(Path(resource["path"])):
            mounts.unmount(Path(resource["path"]))
    elif kind == "tree":
        mounts.remove_tree(Path(resource["path"]))
    elif kind == "cgroup":
        cgroups.remove(Path(resource["path"]))
    elif kind == "file":
        Path(resource["path"]).unlink(missing_ok=True)
    elif kind == "empty-dir":
        _rmdir_if_empty(Path(resource["path"]))
    elif kind == "run-netns":
        _run_netns(resource)
    elif kind == "nspawn-machine":
        # nspawn's own runtime folder for the machine, if it left one.
        mounts.remove_tree(NSPAWN_RUN / "propagate" / resource["name"])
    elif kind != "process":
        raise ClusterError(f"the record lists an unknown kind of object: {resource}")


def _describe(resource: Resource) -> str:
    detail = resource.get("name") or resource.get("path") or resource.get("node") or ""
    return f"{resource['kind']} {detail}".strip()


def teardown(record: Record, echo: Echo) -> int:
    """Remove every object in ``record``; return how many; delete the record when all are gone."""
    _stop_nodes(record, echo)
    failed: list[tuple[Resource, str]] = []
    removed = 0
    for resource in reversed(record.resources):
        try:
            _remove(resource)
            removed += 1
        except (ClusterError, OSError) as exc:
            failed.append((resource, str(exc)))
    if failed:
        record.resources = [r for r, _ in reversed(failed)]
        record.save()
        raise ClusterError(
            "some of the cluster's objects could not be removed (they stay in "
            f"{record.path}; 'sovstack cluster down' tries again):\n"
            + "\n".join(f"  - {_describe(r)}: {why}" for r, why in failed)
        )
    record.remove()
    return removed
