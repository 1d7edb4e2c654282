"""The bundle's Debian repository: a flat repository with Packages and Release indexes.

Nodes use it as ``deb [trusted=yes] file:/<bundle>/debs ./``: apt trusts it
because ``sovstack bundle verify`` checked every byte of it (Packages and
Release included) against the signed manifest first. ``Release`` carries no
date, so that the same packages always give the same indexes.

:func:`check_installable` asks apt, in the minimal root and with this
repository as its only source, to plan the installation of every package:
a package missing from the closure fails the build, not a node.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from sovstack.bundle.errors import BundleError
from sovstack.bundle.proc import run

__all__ = ["check_installable", "write_indexes", "write_release"]

_CHECK = "var/cache/sovstack/check"


def write_indexes(repo: Path, suite: str, arch: str) -> list[Path]:
    """Write ``Packages`` (dpkg-scanpackages) and ``Release`` into ``repo``; return both."""
    text = run(["dpkg-scanpackages", "--multiversion", "."], "dpkg-scanpackages", cwd=repo)
    body = text  # its own report ('dpkg-scanpackages: info: ...') goes to stderr, kept apart
    packages = repo / "Packages"
    packages.write_text(body.strip("\n") + "\n\n" if body.strip() else "")
    return [packages, write_release(repo, suite, arch)]


def write_release(repo: Path, suite: str, arch: str) -> Path:
    """Write ``Release`` for ``repo``'s ``Packages`` (no date: the same input, the same file)."""
    data = (repo / "Packages").read_bytes()
    release = repo / "Release"
    release.write_text(
        "Origin: sovstack\n"
        "Label: sovstack offline bundle\n"
        f"Suite: {suite}\n"
        f"Codename: {suite}\n"
        f"Architectures: {arch} all\n"
        "Description: packages of a sovstack bundle; trust comes from its signed manifest\n"
        "SHA256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n"
    )
    return release


def _apt(root: Path, *args: str) -> list[str]:
    check = f"/{_CHECK}"
    return [
        "chroot",
        str(root),
        "apt-get",
        "-q",
        "-o",
        f"Dir::Etc::sourcelist={check}/sources.list",
        "-o",
        "Dir::Etc::sourceparts=-",
        "-o",
        f"Dir::State::lists={check}/lists",
        "-o",
        f"Dir::Cache={check}/cache",
        *args,
    ]


def check_installable(root: Path, repo: Path, packages: Sequence[str]) -> None:
    """Raise unless apt can install ``packages`` in ``root`` from ``repo`` alone."""
    work = root / _CHECK
    shutil.rmtree(work, ignore_errors=True)
    (work / "repo").mkdir(parents=True)
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True)
    # Only the indexes: planning an installation reads them, not the packages.
    for name in ("Packages", "Release"):
        shutil.copyfile(repo / name, work / "repo" / name)
    (work / "sources.list").write_text(f"deb [trusted=yes] file:/{_CHECK}/repo ./\n")
    try:
        run(_apt(root, "update"), "apt-get update from the bundle's repository alone")
        try:
            run(
                _apt(root, "install", "--simulate", "--no-install-recommends", "-y", *packages),
                "planning the install",
            )
        except BundleError as exc:
            raise BundleError(
                "the bundle's Debian repository is incomplete: apt on a minimal Debian "
                f"cannot install the roles' packages from it alone.\n{exc}"
            ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
