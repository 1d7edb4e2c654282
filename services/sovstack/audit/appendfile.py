"""An append-only file that knows how much of itself is durable: :class:`AppendFile`.

Both files the writer appends to (the open segment, ``checkpoints``) go
through it. ``append`` writes the bytes and fdatasyncs them; only then does
``length`` (the durable length) grow. When the write or the sync fails (disk
full, I/O error, file size limit), whatever part of the bytes reached the file
is cut off again, so the file ends where it ended before: a refused append
leaves no trace, and a later append never lands after a torn line.

If cutting fails as well, the file is *dirty*: every later ``append`` first
retries the cut and writes nothing until it succeeds. So the file only ever
holds whole, acknowledged appends, plus at most one unacknowledged tail while
it is dirty (what recovery trims if the process dies then).

After a failed fdatasync the kernel may already have dropped the unsynced
pages; the cut and a new fdatasync of the shortened file make the durable
state the one the caller was told about, and the bytes before ``length``
were made durable by an earlier, successful sync.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sovstack.core.keyfiles import write_all

__all__ = ["AppendFile"]


class AppendFile:
    """An ``O_APPEND`` descriptor and the durable length of its file."""

    def __init__(self, fd: int, length: int) -> None:
        self.fd = fd
        self.length = length
        self.dirty = False

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> AppendFile:
        """Open ``path`` for appending; its current size is taken as durable."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o640)
        try:
            return cls(fd, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise

    def append(self, data: bytes) -> None:
        """Write ``data`` and make it durable, or raise ``OSError`` with the file as before."""
        self.restore()
        try:
            write_all(self.fd, data)
            os.fdatasync(self.fd)
        except OSError:
            self.dirty = True
            with contextlib.suppress(OSError):  # if this fails too, the next append retries it
                self.restore()
            raise
        self.length += len(data)

    def restore(self) -> None:
        """Cut a failed append's bytes off, durably; ``OSError`` (still dirty) if that fails."""
        if not self.dirty:
            return
        os.ftruncate(self.fd, self.length)
        os.fdatasync(self.fd)
        self.dirty = False

    def close(self) -> None:
        os.close(self.fd)
