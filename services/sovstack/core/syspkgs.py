"""The Debian packages each ``make`` target needs, installed when missing.

Run by the Makefile with the system's ``python3`` before the project's
virtualenv exists, so this module uses the standard library only::

    python3 services/sovstack/core/syspkgs.py venv deps cluster

As root, what is missing is installed with ``apt-get``; otherwise the missing
packages are named with the one command that installs them, and the exit
status is 1. A group is the set of host tools one kind of target runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GROUPS", "Need", "absent", "main"]

DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class Need:
    """A host tool (a command, a file, or a Python module) and the Debian package providing it."""

    what: str
    package: str
    kind: str = "command"  # "command", "file" or "module"

    def present(self) -> bool:
        if self.kind == "file":
            return Path(self.what).is_file()
        if self.kind == "module":
            return importlib.util.find_spec(self.what) is not None
        return shutil.which(self.what) is not None


# The local cluster: every command that changes it, then building its root image.
CLUSTER_RUN: tuple[Need, ...] = (
    Need("ip", "iproute2"),
    Need("systemd-nspawn", "systemd-container"),
    Need("nsenter", "util-linux"),
    Need("mount", "mount"),
    Need("umount", "mount"),
    Need("ssh", "openssh-client"),
    Need("ssh-keygen", "openssh-client"),
)
CLUSTER_BUILD: tuple[Need, ...] = (
    Need("debootstrap", "debootstrap"),
    Need("gpgv", "gpgv"),
    Need(str(DEBIAN_KEYRING), "debian-archive-keyring", kind="file"),
)

GROUPS: dict[str, tuple[Need, ...]] = {
    # python3 -m venv needs ensurepip, which Debian ships apart.
    "venv": (Need("venv", "python3-venv", "module"), Need("ensurepip", "python3-venv", "module")),
    # make deps: OPA and Regal by go, Keycloak by mvn (which runs on a JRE).
    "deps": (Need("go", "golang-go"), Need("mvn", "maven"), Need("java", "default-jre-headless"),
             Need("curl", "curl")),
    "cluster": CLUSTER_RUN + CLUSTER_BUILD,
    # The bundle's Debian repository; gpg signs the test apt source.
    "bundle": (Need("dpkg-scanpackages", "dpkg-dev"), Need("gpg", "gpg"),
               Need("gpg-agent", "gpg-agent")),
    "bench": (Need("wrk", "wrk"),),
    # make deploy: the controller copies each gateway's audit log back with rsync.
    "deploy": (Need("rsync", "rsync"),),
    # make audit: the report's HTML page is rendered and checked by a headless browser.
    "audit": (Need("chromium-headless-shell", "chromium-headless-shell"),),
}  # fmt: skip


def absent(groups: Iterable[str], present: Callable[[Need], bool] = Need.present) -> list[str]:
    """The Debian packages the named groups need and this machine lacks, sorted, each once."""
    return sorted({n.package for g in groups for n in GROUPS[g] if not present(n)})


def _install(packages: Sequence[str]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            print(f"'{' '.join(argv)}' failed", file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str]) -> int:
    """Install what ``argv``'s groups lack (as root), or name it; 0 when nothing is missing."""
    unknown = [g for g in argv if g not in GROUPS]
    if unknown or not argv:
        print(f"usage: syspkgs.py GROUP... (groups: {', '.join(GROUPS)})", file=sys.stderr)
        return 2
    missing = absent(argv)
    if not missing:
        return 0
    command = f"apt-get install -y {' '.join(missing)}"
    if shutil.which("apt-get") is None:
        print(f"missing system packages: {', '.join(missing)} (no apt-get here: "
              "install their equivalents)", file=sys.stderr)  # fmt: skip
        return 1
    if os.geteuid() != 0:
        print(f"missing system packages: {', '.join(missing)}; as root run: {command}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"installing missing system packages: {' '.join(missing)}", file=sys.stderr)
    if _install(missing) != 0:
        return 1
    still = absent(argv)
    if still:
        print(f"still missing after apt-get install: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
