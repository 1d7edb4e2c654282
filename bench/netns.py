"""Run a benchmark in a network namespace of its own with only loopback, or refuse to run.

:func:`enter` re-runs the calling script under ``unshare --net`` (a fresh
network namespace: its only interface is ``lo``, down until brought up), then,
in the new process, brings ``lo`` up and checks the interface list. Any
interface other than ``lo`` refuses the run (:class:`NotIsolated`) before a
single component starts, so nothing a target tries (a telemetry call, a model
cost map, a version check) can leave the machine. The interface list is read
from ``/proc/self/net/dev``, which shows the reading process's own namespace
(``/sys/class/net`` would show the namespace that mounted sysfs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MARK", "NET_DEV", "NotIsolated", "enter", "interfaces", "require_only_loopback"]

# Set for the re-run; only says a re-run was asked for; the interface check decides.
MARK = "SOVSTACK_BENCH_NETNS"
NET_DEV = Path("/proc/self/net/dev")


class NotIsolated(RuntimeError):
    """The process can reach an interface other than loopback: the bench does not run."""


def interfaces(net_dev: Path = NET_DEV) -> list[str]:
    """The names of the interfaces in ``net_dev`` (the kernel's /proc/net/dev table)."""
    lines = net_dev.read_text().splitlines()[2:]  # two header lines
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line]


def require_only_loopback(net_dev: Path = NET_DEV) -> None:
    """Refuse (:class:`NotIsolated`) unless ``lo`` is the one interface in ``net_dev``."""
    names = interfaces(net_dev)
    others = sorted(set(names) - {"lo"})
    if others or "lo" not in names:
        raise NotIsolated(
            f"this network namespace has interfaces other than loopback ({', '.join(others)})"
            if others
            else "this network namespace has no loopback interface"
        )


def _loopback_answers() -> bool:
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client.settimeout(2.0)
        return client.connect_ex(server.getsockname()) == 0


def enter(argv: Sequence[str] | None = None, net_dev: Path = NET_DEV) -> None:
    """Re-run ``argv`` (default: this script) in a fresh namespace; return once inside it.

    Inside: ``lo`` brought up, the interfaces checked (:class:`NotIsolated`
    otherwise), loopback checked to answer. Outside: never returns (exec).
    """
    if os.environ.get(MARK) != "1":
        args = list(argv if argv is not None else sys.argv)
        # Without root, a user namespace gives the new network namespace its own root.
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        env = {**os.environ, MARK: "1"}
        # Exec, not a shell: the argv is this interpreter and the caller's own arguments.
        os.execvpe("unshare", ["unshare", "--net", *user, "--", sys.executable, *args], env)  # noqa: S606
    require_only_loopback(net_dev)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    require_only_loopback(net_dev)
    if not _loopback_answers():
        raise NotIsolated("loopback does not answer in this network namespace")
