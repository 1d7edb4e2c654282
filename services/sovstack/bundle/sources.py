"""Read a bundle for verification, as a directory or as the one tar file that was carried.

Both give the same two things: the manifest and its signature, then every
other file with its size and a way to hash it. A tar is read as a stream,
once, without unpacking anything: its first two members must be
``manifest.json`` and ``manifest.sig`` (``sovstack bundle build --tar``
writes them first).
"""

from __future__ import annotations

import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sovstack.bundle.errors import BundleError
from sovstack.bundle.files import CHUNK, hash_stream, sha256_file, walk_files
from sovstack.bundle.manifest import MANIFEST_NAME, RESERVED, SIGNATURE_NAME

__all__ = ["DirSource", "Found", "Source", "TarSource", "open_source"]

# A manifest of a million files is about 300 MB; more than this is not a manifest.
_HEAD_LIMIT = 512 << 20


@dataclass(frozen=True)
class Found:
    """A file found in the bundle. ``kind`` is 'file', 'symlink' or 'other'."""

    path: str
    kind: str
    size: int
    digest: Callable[[], str]


def _file_hasher(path: Path) -> Callable[[], str]:
    return lambda: sha256_file(path)[1]


def _stream_hasher(stream: IO[bytes] | None) -> Callable[[], str]:
    return lambda: hash_stream(stream)[1] if stream is not None else ""


class Source(Protocol):
    label: str

    def head(self) -> tuple[bytes | None, bytes | None]:
        """(manifest.json, manifest.sig) bytes, None where one is missing."""

    def files(self) -> Iterator[Found]:
        """Everything else in the bundle; call after :meth:`head`."""

    def close(self) -> None:
        """Release what the source holds open."""


def _read_small(read: Callable[[], bytes], size: int, name: str) -> bytes:
    if size > _HEAD_LIMIT:
        raise BundleError(f"{name} is {size} bytes: too large to be a bundle manifest")
    return read()


class DirSource:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.label = str(directory)

    def _head_file(self, name: str) -> bytes | None:
        path = self.directory / name
        if path.is_symlink() or not path.is_file():
            return None
        return _read_small(path.read_bytes, path.stat().st_size, name)

    def head(self) -> tuple[bytes | None, bytes | None]:
        return self._head_file(MANIFEST_NAME), self._head_file(SIGNATURE_NAME)

    def close(self) -> None:
        pass

    def files(self) -> Iterator[Found]:
        for rel, entry in walk_files(self.directory):
            if rel in RESERVED:
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                yield Found(rel, "symlink", 0, lambda: "")
            elif not stat.S_ISREG(info.st_mode):
                yield Found(rel, "other", 0, lambda: "")
            else:
                yield Found(rel, "file", info.st_size, _file_hasher(Path(entry.path)))


class TarSource:
    def __init__(self, tar_path: Path) -> None:
        self.label = str(tar_path)
        try:
            self._tar = tarfile.open(tar_path, mode="r|*", bufsize=CHUNK)  # noqa: SIM115 -- closed by close()
        except tarfile.TarError as exc:
            raise BundleError(f"{tar_path} is not a readable tar file: {exc}") from exc
        self._members: Iterator[tarfile.TarInfo] = iter(self._tar)

    def _next_regular(self, name: str) -> bytes | None:
        member = next(self._members, None)
        if member is None or member.name != name or not member.isfile():
            return None
        stream = self._tar.extractfile(member)
        if stream is None:
            return None
        return _read_small(stream.read, member.size, name)

    def head(self) -> tuple[bytes | None, bytes | None]:
        try:
            return self._next_regular(MANIFEST_NAME), self._next_regular(SIGNATURE_NAME)
        except tarfile.TarError as exc:
            raise BundleError(f"{self.label}: the tar is damaged: {exc}") from exc

    def files(self) -> Iterator[Found]:
        try:
            for member in self._members:
                if member.isdir():
                    continue
                name = member.name.removeprefix("./")
                if not member.isfile():
                    kind = "symlink" if member.issym() or member.islnk() else "other"
                    yield Found(name, kind, 0, lambda: "")
                    continue
                yield Found(
                    name, "file", member.size, _stream_hasher(self._tar.extractfile(member))
                )
        except tarfile.TarError as exc:
            raise BundleError(f"the tar is damaged: {exc}") from exc

    def close(self) -> None:
        self._tar.close()


def open_source(path: Path) -> Source:
    """A bundle directory, or a bundle tar file."""
    if path.is_dir():
        return DirSource(path)
    if path.is_file():
        return TarSource(path)
    raise BundleError(f"{path} does not exist: give a bundle directory or a bundle .tar")
