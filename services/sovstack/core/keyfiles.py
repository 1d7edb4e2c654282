"""Files that hold a secret (private keys, client secrets, credentials), and their public peers.

Every such file in sovstack is written and read here, one way:

- created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` at mode 0600 (set on the
  open descriptor, so neither the umask nor an older file's mode ever shows
  the secret to anyone else, not even for a moment);
- written in full, then the file and its folder fsync'd: a key that was
  reported written survives a crash;
- never written over unless the caller says ``overwrite=True``; then the new
  content goes to a fresh file beside it that is renamed over the old one, so
  a symlink planted at the path is refused, not followed, and the old file's
  mode is not kept;
- a private file is loaded only if it is not a symlink and neither its group
  nor others may read or write it.

Each refusal has one wording, raised as the caller's ``error`` (a
:class:`~sovstack.core.errors.SovstackError`; :class:`KeyFileError` by
default), so every package raises the type it documents.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from sovstack.core.errors import KeyFileError, SovstackError

__all__ = ["fsync_directory", "read_private", "write_all", "write_private", "write_public"]

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


def _refuse_existing(path: Path, error: type[SovstackError]) -> SovstackError:
    if path.is_symlink():
        return error(f"{path} is a symbolic link: refusing to write a key or secret through it")
    return error(f"{path} already exists: refusing to overwrite a key or secret")


def _create(path: Path, data: bytes, mode: int, error: type[SovstackError]) -> None:
    try:
        fd = os.open(path, _CREATE, mode)
    except FileExistsError as exc:
        raise _refuse_existing(path, error) from exc
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode passes through the umask; this does not
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, mode: int, overwrite: bool, error: type[SovstackError]) -> None:
    if not overwrite or not (path.exists() or path.is_symlink()):
        _create(path, data, mode, error)
    else:
        if path.is_symlink():
            raise _refuse_existing(path, error)
        fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
        _create(fresh, data, mode, error)
        try:
            fresh.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                fresh.unlink()
            raise
    fsync_directory(path.parent)


def write_private(
    path: Path, data: bytes, *, overwrite: bool = False, error: type[SovstackError] = KeyFileError
) -> None:
    """Create ``path`` holding ``data``, 0600 from its creation; durable on return.

    Refuses (``error``) a path that exists unless ``overwrite``, and a symlink always.
    """
    _write(path, data, PRIVATE_MODE, overwrite, error)


def write_public(
    path: Path, data: bytes, *, overwrite: bool = False, error: type[SovstackError] = KeyFileError
) -> None:
    """Like :func:`write_private`, at 0644: the public half that sits beside a private key."""
    _write(path, data, PUBLIC_MODE, overwrite, error)


def read_private(path: Path, what: str, error: type[SovstackError] = KeyFileError) -> bytes:
    """Read the secret in ``path``, refusing a symlink and a file its group or others may use."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{what} {path} is a symbolic link: refusing to load it") from exc
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise error(
                f"{what} {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {path}'"
            )
        return file.read()
