"""The integrate and publish phases, on their own thread.

Integrate: leaf hashes of durable entries (handed over by the sequencer) are
added to the Merkle frontier, so the tree covers them. Publish: a checkpoint
for the new size is signed and appended to ``checkpoints`` and fsync'd.
Both happen at least once per interval while entries arrive, and once more
when the log closes. A checkpoint never covers an entry that is not durable.

A publish that fails (disk full) leaves ``checkpoints`` as it was (a torn
note is cut off again, :class:`AppendFile`) and is retried at the next
interval; ``failure`` holds its error until a publish succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit.appendfile import AppendFile
from sovstack.audit.checkpoint import Checkpoint, sign_checkpoint
from sovstack.audit.recovery import CHECKPOINTS_FILE
from sovstack.audit.tree import Frontier
from sovstack.core.keyfiles import fsync_directory

__all__ = ["Publisher"]


class Publisher(threading.Thread):
    """Integrates durable leaves and publishes signed checkpoints every ``interval`` seconds."""

    def __init__(
        self,
        directory: Path,
        key: Ed25519PrivateKey,
        origin: str,
        frontier: Frontier,
        latest: Checkpoint | None,
        interval: float,
        on_failure: Callable[[OSError], None],
    ) -> None:
        super().__init__(name="audit-publisher", daemon=True)
        self._key = key
        self._origin = origin
        self._frontier = frontier
        self._latest = latest
        self._interval = interval
        self._on_failure = on_failure
        self._pending: list[bytes] = []
        self._pending_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._stopping = threading.Event()
        self.failure: OSError | None = None
        path = directory / CHECKPOINTS_FILE
        existed = path.exists()
        self._file = AppendFile.open(path, create=True)
        if not existed:
            fsync_directory(directory)

    def integrate(self, leaves: list[bytes]) -> None:
        """Queue leaf hashes of entries that are durable (called by the sequencer)."""
        with self._pending_lock:
            self._pending.extend(leaves)

    @property
    def latest(self) -> Checkpoint | None:
        """The last checkpoint published.

        Read under the publish lock, so that it and the ``checkpoints`` file
        change together for a reader: once a note is in the file, this returns
        that checkpoint (or a later one), never the one before it.
        """
        with self._publish_lock:
            return self._latest

    def publish(self) -> Checkpoint:
        """Integrate what is pending and sign a checkpoint if the tree grew; return the latest."""
        with self._publish_lock:
            with self._pending_lock:
                leaves, self._pending = self._pending, []
            frontier = self._frontier
            for leaf in leaves:
                frontier.append(leaf)
            if self._latest is not None and self._latest.size == frontier.size:
                return self._latest
            checkpoint = Checkpoint(self._origin, frontier.size, frontier.root())
            note = sign_checkpoint(checkpoint, self._key)
            try:
                self._file.append(note.encode() + b"\n")
            except OSError as exc:
                self.failure = exc  # the leaves stay in the frontier: the next publish covers them
                raise
            self.failure = None
            self._latest = checkpoint
            return checkpoint

    def run(self) -> None:
        deadline = time.monotonic() + self._interval
        while not self._stopping.wait(max(0.0, deadline - time.monotonic())):
            deadline = time.monotonic() + self._interval
            try:
                self.publish()
            except OSError as exc:
                self._on_failure(exc)  # and try again at the next interval

    def stop(self) -> None:
        """End the periodic loop (the caller publishes the final checkpoint)."""
        self._stopping.set()

    def close(self) -> None:
        self._file.close()
