"""What the host needs before ``cluster up`` can run, checked all at once.

Every missing piece is named in one message that ends with the one command
that fixes it, so that a person fixes everything in one go.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sovstack.cluster.commands import ClusterError
from sovstack.core import syspkgs
from sovstack.core.syspkgs import Need

__all__ = ["Need", "check", "missing"]

KEYRING = syspkgs.DEBIAN_KEYRING

# Tools every command that changes the cluster needs.
RUN: tuple[Need, ...] = syspkgs.CLUSTER_RUN
# Only needed when the root image is not cached yet.
BUILD: tuple[Need, ...] = syspkgs.CLUSTER_BUILD


def missing(needs: tuple[Need, ...]) -> list[str]:
    """One line per problem: not Linux, not root, or a tool that is not installed."""
    problems: list[str] = []
    if not sys.platform.startswith("linux"):
        return [f"the local cluster needs Linux (this is {sys.platform})"]
    if os.geteuid() != 0:
        problems.append(
            "it must run as root (it creates network namespaces, a bridge and mounts): "
            "run it with sudo"
        )
    if not Path("/proc/self/ns/net").exists():
        problems.append("this kernel has no network namespaces")
    absent = [n for n in needs if not n.present()]
    problems += [f"{n.what} is not installed (Debian package {n.package})" for n in absent]
    packages = sorted({n.package for n in absent})
    if packages:
        problems.append(f"install them with: apt-get install {' '.join(packages)}")
    return problems


def check(needs: tuple[Need, ...]) -> None:
    """Raise one :class:`ClusterError` listing every problem, or return."""
    problems = missing(needs)
    if problems:
        raise ClusterError(
            "the local cluster cannot run on this host:\n" + "\n".join(f"  - {p}" for p in problems)
        )
