"""What every collector gets (:class:`Context`) and gives back (:class:`Collected`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sovstack.bundle.files import copy_hashed, sha256_file
from sovstack.bundle.manifest import FileEntry, check_path
from sovstack.bundle.profiles import Profile
from sovstack.core.paths import Paths
from sovstack.core.progress import Echo

__all__ = ["Collected", "Context", "Package"]


@dataclass(frozen=True)
class Package:
    """A software or model component, as the SBOM lists it (CycloneDX)."""

    kind: str  # CycloneDX component type: library, application, machine-learning-model, data
    name: str
    version: str
    purl: str | None = None
    sha256: str | None = None
    group: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Context:
    paths: Paths
    profile: Profile
    staging: Path
    cache: Path
    echo: Echo


@dataclass
class Collected:
    """What a collector placed: files for the manifest, packages for the SBOM, and counts."""

    files: list[FileEntry] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    fetched: int = 0
    reused: int = 0
    notes: list[str] = field(default_factory=list)

    def place(
        self,
        ctx: Context,
        src: Path,
        rel: str,
        component: str,
        version: str,
        origin: str,
        executable: bool = False,
    ) -> FileEntry:
        """Copy ``src`` to ``rel`` in the staging folder and list it."""
        check_path(rel)
        size, digest = copy_hashed(src, ctx.staging / rel, executable)
        entry = FileEntry(rel, size, digest, component, version, origin)
        self.files.append(entry)
        return entry

    def add_written(
        self, ctx: Context, rel: str, component: str, version: str, origin: str
    ) -> None:
        """List a file the collector wrote into the staging folder itself (an index, a lock)."""
        size, digest = sha256_file(ctx.staging / check_path(rel))
        self.files.append(FileEntry(rel, size, digest, component, version, origin))
