"""What one node needs from a bundle, as one tar to carry to it: a *part*.

The deploy copies each node only the parts its roles use, once (the
``offline_repo`` role): ``debs`` (the Debian repository), ``wheels:<set>``
(the wheels one virtualenv installs, found by the SHA-256 its
``requirements-<set>.txt`` pins, plus that file), or a folder of the bundle
(``models/<name>``, ``dist``, ``bin``, ``policy``). A part's tar holds those
files under their bundle paths and ``SHA256SUMS.<part>`` (their SHA-256 as the
signed manifest gives them), so the node checks what it unpacked with
``sha256sum -c``. The caller MUST have verified the bundle first; each file is
hashed again while it is written, and one that no longer matches the manifest
stops the write.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sovstack.bundle.errors import BundleError
from sovstack.bundle.manifest import MANIFEST_NAME, FileEntry, Manifest
from sovstack.bundle.tarball import atomic_tar

__all__ = ["load_manifest", "part_files", "sums_name", "write_part"]

_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_PART = re.compile(r"^(debs|wheels:[a-z0-9-]+|[a-z]+(/[A-Za-z0-9._-]+)*)$")


def sums_name(part: str) -> str:
    """The checksum file a part's tar carries (``SHA256SUMS.wheels-vllm``)."""
    return "SHA256SUMS." + part.replace(":", "-").replace("/", "-")


def _wheel_set(manifest: Manifest, bundle: Path, name: str) -> list[FileEntry]:
    rel = f"wheels/requirements-{name}.txt"
    entries = manifest.by_path()
    if rel not in entries:
        sets = sorted(
            f.path.removeprefix("wheels/requirements-").removesuffix(".txt")
            for f in manifest.files
            if f.path.startswith("wheels/requirements-")
        )
        raise BundleError(f"the bundle has no wheel set {name!r} (it has: {', '.join(sets)})")
    wanted = set(_HASH.findall((bundle / rel).read_text()))
    chosen = [f for f in manifest.files if f.top == "wheels" and f.sha256 in wanted]
    if len({f.sha256 for f in chosen}) != len(wanted):
        raise BundleError(f"{rel} pins a wheel the bundle does not hold")
    return [entries[rel], *chosen]


def part_files(manifest: Manifest, bundle: Path, part: str) -> list[FileEntry]:
    """The manifest entries ``part`` is made of, sorted by path; BundleError if none."""
    if not _PART.fullmatch(part):
        raise BundleError(
            f"{part!r} is not a part: give debs, wheels:<set> or a folder of the bundle"
        )
    if part.startswith("wheels:"):
        files = _wheel_set(manifest, bundle, part.split(":", 1)[1])
    else:
        files = [f for f in manifest.files if f.path.startswith(part + "/")]
    if not files:
        raise BundleError(f"the bundle has nothing under {part}/")
    return sorted(files, key=lambda f: f.path)


class _Hashing:
    """A reader that hashes what tarfile reads through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.digest.update(data)
        return data


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add(tar: tarfile.TarFile, bundle: Path, entry: FileEntry) -> None:
    with (bundle / entry.path).open("rb") as stream:
        reader = _Hashing(stream)
        tar.addfile(_member(entry.path, entry.size), reader)
    if reader.digest.hexdigest() != entry.sha256:
        raise BundleError(f"{entry.path} no longer matches the manifest: verify the bundle again")


def write_part(manifest: Manifest, bundle: Path, part: str, out: Path) -> Sequence[FileEntry]:
    """Write ``part`` of the verified bundle folder ``bundle`` to the tar ``out``, atomically.

    The tar is the same bytes for the same bundle (fixed order, owner, mode
    and time), so a deploy can tell from its checksum whether a node has it.
    """
    files = part_files(manifest, bundle, part)
    sums = "".join(f"{f.sha256}  {f.path}\n" for f in files).encode()
    with atomic_tar(out) as tar:
        tar.addfile(_member(sums_name(part), len(sums)), io.BytesIO(sums))
        for entry in files:
            _add(tar, bundle, entry)
    return files


def load_manifest(bundle: Path) -> Manifest:
    """The manifest of a bundle folder (its signature is the caller's to have checked)."""
    return Manifest.from_bytes((bundle / MANIFEST_NAME).read_bytes())
