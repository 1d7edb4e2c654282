"""The one file to carry: a plain tar of the bundle, manifest and signature first.

Members are written in a fixed order (``manifest.json``, ``manifest.sig``,
then the manifest's files by path) with owner root, modes 0644 or 0755 and one
modification time, so a verifier can check the signature before it reads
anything else, in one pass. It is not compressed: wheels, debs and weights
are compressed already, and an uncompressed tar can be checked while it is
read from removable media.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest

__all__ = ["atomic_tar", "write_tar"]


def _add(tar: tarfile.TarFile, directory: Path, name: str, mtime: int) -> None:
    path = directory / name
    info = tarfile.TarInfo(name)
    st = path.stat()
    info.size = st.st_size
    info.mode = 0o755 if st.st_mode & 0o100 else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with path.open("rb") as stream:
        tar.addfile(info, stream)


@contextlib.contextmanager
def atomic_tar(out: Path) -> Iterator[tarfile.TarFile]:
    """A plain (PAX) tar written beside ``out`` and renamed onto it only once it is whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with (
            os.fdopen(fd, "wb") as stream,
            tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            yield tar
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_tar(directory: Path, manifest: Manifest, out: Path, mtime: int) -> None:
    """Write ``directory`` (a signed bundle) to ``out``, atomically."""
    with atomic_tar(out) as tar:
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            _add(tar, directory, name, mtime)
        for entry in sorted(manifest.files, key=lambda f: f.path):
            _add(tar, directory, entry.path, mtime)
