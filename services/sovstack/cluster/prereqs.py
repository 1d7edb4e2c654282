"""What the host needs before ``cluster up`` can run, checked all at once.

Every missing piece is named in one message that ends with the one command
that fixes it, so that a person fixes everything in one go.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sovstack.cluster.commands import ClusterError

__all__ = ["Need", "check", "missing"]

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class Need:
    """A host tool (or file) and the Debian package that provides it."""

    what: str
    package: str
    is_file: bool = False

    def present(self) -> bool:
        if self.is_file:
            return Path(self.what).is_file()
        return shutil.which(self.what) is not None


# Tools every command that changes the cluster needs.
RUN: tuple[Need, ...] = (
    Need("ip", "iproute2"),
    Need("systemd-nspawn", "systemd-container"),
    Need("nsenter", "util-linux"),
    Need("mount", "mount"),
    Need("umount", "mount"),
    Need("ssh", "openssh-client"),
    Need("ssh-keygen", "openssh-client"),
)
# Only needed when the root image is not cached yet.
BUILD: tuple[Need, ...] = (
    Need("debootstrap", "debootstrap"),
    Need("gpgv", "gpgv"),
    Need(str(KEYRING), "debian-archive-keyring", is_file=True),
)


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
