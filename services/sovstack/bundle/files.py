"""Hash and copy files in one pass, in chunks (bundles hold multi-GB wheels)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["CHUNK", "copy_hashed", "hash_stream", "remove", "sha256_file", "walk_files"]

CHUNK = 1 << 20


def hash_stream(stream: IO[bytes]) -> tuple[int, str]:
    """(bytes read, hex SHA-256) of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def sha256_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as stream:
        return hash_stream(stream)


def copy_hashed(src: Path, dst: Path, executable: bool = False) -> tuple[int, str]:
    """Copy ``src`` to a new ``dst`` (0644 or 0755), hashing what is written: (size, sha)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as reader, dst.open("xb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    dst.chmod(0o755 if executable else 0o644)
    return size, digest.hexdigest()


def walk_files(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry below ``root`` that is not a directory, as (relative POSIX path, entry).

    Symbolic links are yielded (never followed), so a caller can refuse them.
    """
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append((f"{rel}/", Path(entry.path)))
                else:
                    yield rel, entry


def remove(path: Path) -> None:
    """Remove a file or a whole folder, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
