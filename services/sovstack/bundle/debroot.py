"""A minimal Debian 12 root (debootstrap ``minbase``): what the package closure is resolved against.

A fresh node has at least what ``minbase`` installs (the ``required``
packages and apt), so a repository that lets apt install every role's
packages here, with no other source, lets it install them on any node. The
root is made once by debootstrap from Debian's package registry (its Release
signature checked against the Debian archive keyring), cached under
``.cache/bundle/``, and used only through ``chroot apt-get``; its apt lists and
downloaded packages stay in it so later builds fetch only what changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from sovstack.bundle.errors import BundleError
from sovstack.bundle.files import remove
from sovstack.bundle.proc import run
from sovstack.core.locks import folder_lock
from sovstack.core.progress import Echo

__all__ = ["ARCHIVES", "KEYRING", "ensure", "locked", "require_tools"]

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Inside the root: where the bundle's packages are downloaded to (kept between builds).
ARCHIVES = "/var/cache/sovstack/archives"

_TOOLS = {
    "debootstrap": "debootstrap",
    "chroot": "coreutils",
    "dpkg-scanpackages": "dpkg-dev",
    "gpgv": "gpgv",
}


def require_tools() -> None:
    """Refuse, with the fix, when this host cannot build the Debian repository."""
    problems = []
    if os.geteuid() != 0:
        problems.append("it must run as root (debootstrap and chroot need it)")
    missing = sorted({pkg for tool, pkg in _TOOLS.items() if shutil.which(tool) is None})
    if not KEYRING.is_file():
        missing.append("debian-archive-keyring")
    if missing:
        problems.append(f"install the missing tools: apt-get install {' '.join(missing)}")
    if problems:
        raise BundleError(
            "the Debian repository (debs/) cannot be built here:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\n  (or leave it out with --skip debs)"
        )


def root_dir(cache: Path, suite: str) -> Path:
    return cache / f"debian-{suite}-minbase"


def locked(folder: Path) -> AbstractContextManager[None]:
    """One build at a time uses (or makes) the root."""
    return folder_lock(folder)


def ensure(cache: Path, suite: str, mirror: str, echo: Echo) -> Path:
    """The cached root for ``suite``, made first if needed. Call it under :func:`locked`."""
    target = root_dir(cache, suite)
    if (target / "usr" / "bin" / "apt-get").is_file():
        # mkdtemp made it 0700: apt's '_apt' user must be able to walk the root.
        target.chmod(0o755)
        return target
    echo(f"    making a minimal Debian {suite} root with debootstrap from {mirror} (once, ~1 min)")
    for stale in cache.glob(f".debian-{suite}-*"):
        remove(stale)
    work = Path(tempfile.mkdtemp(prefix=f".debian-{suite}-", dir=cache))
    try:
        run(
            ["debootstrap", "--variant=minbase", f"--keyring={KEYRING}", suite, work, mirror],
            "debootstrap",
            echo,
            show=lambda line: (
                line[3:] if line.startswith(("I: Retrieving Rel", "I: Base")) else None
            ),
        )
        # debootstrap leaves its own downloads behind; the root needs none of them.
        for deb in (work / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        work.chmod(0o755)
        remove(target)
        work.rename(target)
    finally:
        remove(work)
    return target
