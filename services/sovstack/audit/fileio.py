"""Small file primitives the audit log relies on for durability and secrecy."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sovstack.audit.errors import KeyFileError

__all__ = ["fsync_directory", "read_private_file", "write_all", "write_new_private_file"]


def fsync_directory(directory: Path) -> None:
    """Make the creation, rename or removal of entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write less on a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"short write: {len(view)} bytes not written")
        view = view[written:]


def write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only (0600); never overwrite one that exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists: refusing to overwrite a key") from exc
    try:
        os.fchmod(fd, 0o600)
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)


def read_private_file(path: Path, what: str) -> bytes:
    """Read a secret, refusing a file that its group or others may read or write."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): "
            f"run 'chmod 600 {path}'"
        )
    return data
