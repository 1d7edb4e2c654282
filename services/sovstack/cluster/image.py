"""The nodes' Debian 12 root, built once with debootstrap and cached under ``.cache/cluster/``.

The image is made from Debian's package registry by debootstrap, its Release
signature checked against the Debian archive keyring, then adjusted by a
recipe that is plain data (:data:`RECIPE`): the cache folder is named after the
recipe's digest, so a changed recipe builds a new image and an unchanged one
is reused. Nodes never write to it: each boots from an overlay on top of it.
A build is assembled in a private folder and renamed into place only when it
is complete, under a lock, so a crash or a concurrent build never leaves a
half-made image where a node would boot it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sovstack.cluster import prereqs
from sovstack.cluster.commands import ClusterError, run
from sovstack.cluster.mounts import remove_tree
from sovstack.core import proc
from sovstack.core.locks import folder_lock
from sovstack.core.progress import Echo

__all__ = ["DEFAULT_MIRROR", "RECIPE", "USER", "Progress", "Recipe", "ensure", "image_dir"]

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
USER = "sovstack"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the image's content; its digest names the cache folder."""

    suite: str
    variant: str
    packages: tuple[str, ...]
    user: str
    files: tuple[tuple[str, int, str], ...]  # (path in the root, mode, content)
    masked: tuple[str, ...]
    removed: tuple[str, ...]  # globs, relative to the root

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


RECIPE = Recipe(
    suite=SUITE,
    variant="minbase",
    packages=(
        "dbus",
        "iproute2",
        "openssh-server",
        "procps",
        "python3",
        "sudo",
        "systemd",
        "systemd-sysv",
    ),
    user=USER,
    files=(
        ("etc/sudoers.d/sovstack", 0o440, f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"),
        (
            "etc/ssh/sshd_config.d/sovstack.conf",
            0o644,
            "# Keys only, never root: the control host logs in as the cluster user.\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin no\n",
        ),
        (
            "etc/apt/sources.list",
            0o644,
            "# An air-gapped node: packages come only from the offline bundle's repository.\n",
        ),
        ("etc/resolv.conf", 0o644, "# No name server: nodes find each other through /etc/hosts.\n"),
        ("etc/default/locale", 0o644, "LANG=C.UTF-8\n"),
    ),
    # Timers that would reach for the internet on an air-gapped node.
    masked=("apt-daily-upgrade.timer", "apt-daily.timer"),
    # Written per node at boot (host name, machine id, host keys), or mere download caches.
    removed=(
        "etc/hostname",
        "etc/machine-id",
        "etc/ssh/ssh_host_*",
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*_*",
    ),
)


def image_dir(cache: Path, recipe: Recipe = RECIPE) -> Path:
    """Where the image for ``recipe`` lives (or will)."""
    return cache / "cluster" / f"debian-{recipe.suite}-{recipe.digest()}"


class Progress:
    """Turn debootstrap's hundreds of lines into a few: each new phase, then one every few seconds.

    Warnings and errors always pass through.
    """

    def __init__(self, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._phase = ""
        self._count = 0
        self._last = -every

    def feed(self, line: str) -> str | None:
        line = line.rstrip()
        if not line.startswith("I: "):
            return line or None
        words = line[3:].split()
        phase = words[0] if words else ""
        if phase == "Validating":  # follows each "Retrieving": one phase, not two
            phase = "Retrieving"
        now = self._clock()
        if phase != self._phase:
            self._phase, self._count = phase, 0
        self._count += 1
        if self._count == 1 or now - self._last >= self._every:
            self._last = now
            suffix = f" ({self._count} so far)" if self._count > 1 else ""
            return f"{line[3:]}{suffix}"
        return None


def ensure(cache: Path, mirror: str, echo: Echo) -> Path:
    """Return the cached image, building it first if the cache lacks it."""
    target = image_dir(cache)
    if target.is_dir():
        echo(f"root image: cached ({target})")
        return target
    prereqs.check(prereqs.BUILD)
    with folder_lock(target.parent):
        if target.is_dir():  # another build finished while we waited for the lock
            return target
        for stale in target.parent.glob(".build-*"):
            echo(f"removing an unfinished build: {stale}")
            remove_tree(stale)
        started = time.monotonic()
        echo(
            f"root image: building Debian {SUITE} with debootstrap from {mirror} (a minute or two)"
        )
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            root = work / "root"
            _debootstrap(root, mirror, echo)
            echo("applying the image recipe (user, sshd, masked timers)")
            _apply_recipe(root)
            root.rename(target)
        finally:
            remove_tree(work)
    echo(f"root image: built in {time.monotonic() - started:.0f}s ({target})")
    return target


def _debootstrap(root: Path, mirror: str, echo: Echo) -> None:
    argv = [
        "debootstrap",
        f"--variant={RECIPE.variant}",
        f"--include={','.join(RECIPE.packages)}",
        f"--keyring={prereqs.KEYRING}",
        SUITE,
        str(root),
        mirror,
    ]
    # debootstrap's full story is in its own log; our tail is the fallback when it wrote none.
    done = proc.run(
        argv, "debootstrap", echo=echo, show=Progress().feed, check=False, error=ClusterError
    )
    if done.returncode != 0:
        log = root / "debootstrap" / "debootstrap.log"
        detail = log.read_text(errors="replace")[-2000:] if log.is_file() else done.tail
        raise ClusterError(
            f"debootstrap failed (exit {done.returncode}); is {mirror} reachable?\n{detail}"
        )


def _apply_recipe(root: Path, recipe: Recipe = RECIPE) -> None:
    for pattern in recipe.removed:
        for path in root.glob(pattern):
            path.unlink()
    for rel, mode, content in recipe.files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # resolv.conf may be a symlink
        path.write_text(content)
        path.chmod(mode)
    for unit in recipe.masked:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", recipe.user])
    # '*': no password to log in with, yet not a locked account (sshd refuses those).
    run(["chroot", str(root), "usermod", "--password", "*", recipe.user])
