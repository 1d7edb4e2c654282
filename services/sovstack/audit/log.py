"""The audit log a gateway writes to: :class:`AuditLog`.

Three phases, each with its own guarantee:

* **sequence** — ``append`` returns a record's index only once the record is
  durable (written and fdatasync'd, shared with every concurrent append);
* **integrate** — the Merkle tree covers the record (within one interval);
* **publish** — a signed checkpoint for a tree that includes it is durable
  in ``checkpoints`` (within one interval, and on close).

A failed write (disk full, I/O error) refuses the records it held and leaves
the files as they were; the log keeps no failed state beyond that, so it
takes records again as soon as the disk does, without a reopen. Records that
open a request (``accepted``, ``denied``) are refused while free space is
below ``min_free_bytes``; the records that end one may use that reserve, so a
disk filling up stops new requests while the ones under way can still end.

The directory holds ``entries-*.jsonl`` segments, the ``checkpoints`` file,
a ``.lock`` (one writer at a time) and, after a crash, ``trimmed/``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit.checkpoint import Checkpoint, check_origin
from sovstack.audit.errors import AuditWriteError, CheckpointError, LogStateError
from sovstack.audit.publisher import Publisher
from sovstack.audit.records import encode_validated, validate_record
from sovstack.audit.recovery import Recovery, recover
from sovstack.audit.sequencer import Sequencer

__all__ = ["DEFAULT_SEGMENT_BYTES", "AuditLog"]

DEFAULT_SEGMENT_BYTES: Final = 64 << 20
_OPENING: Final = frozenset({"accepted", "denied"})  # records that start a request's trail
_log = logging.getLogger("sovstack.audit")


class AuditLog:
    """An open, append-only, tamper-evident audit log in one directory.

    Make one with :meth:`open`; one process may hold a directory at a time.
    ``append``/``append_sync`` are safe from any thread or event loop.
    """

    def __init__(
        self,
        directory: Path,
        lock_fd: int,
        recovery: Recovery,
        sequencer: Sequencer,
        publisher: Publisher,
        min_free_bytes: int,
    ) -> None:
        self.directory = directory
        self.recovery = recovery
        self._lock_fd = lock_fd
        self._sequencer = sequencer
        self._publisher = publisher
        self._min_free_bytes = min_free_bytes
        self._state_lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: Path,
        signing_key: Ed25519PrivateKey,
        origin: str,
        checkpoint_interval: float = 1.0,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        min_free_bytes: int = 16 << 20,
    ) -> AuditLog:
        """Open (creating if needed) the log in ``directory`` and start its background work.

        A torn tail left by a crash is trimmed and reported in ``recovery``
        (and logged as a warning). Raises :class:`LogStateError` when the
        directory cannot be used: another process holds it, it belongs to
        another key or origin, or its entries no longer match its own
        checkpoint. Below ``min_free_bytes`` of free space, records that open
        a request are refused (see the module docstring).
        """
        try:
            check_origin(origin)
        except CheckpointError as exc:
            raise LogStateError(str(exc)) from exc
        if checkpoint_interval <= 0:
            raise LogStateError("checkpoint_interval must be positive")
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o750)
            lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise LogStateError(f"cannot use {directory} for the audit log: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            raise LogStateError(f"another process has the audit log {directory} open") from exc
        try:
            log = cls._start(directory, lock_fd, signing_key, origin, checkpoint_interval,
                             segment_bytes, min_free_bytes)  # fmt: skip
        except BaseException:
            os.close(lock_fd)
            raise
        for trim in log.recovery.trimmed:
            _log.warning("audit log %s: %s", directory, trim.describe())
        return log

    @classmethod
    def _start(
        cls,
        directory: Path,
        lock_fd: int,
        key: Ed25519PrivateKey,
        origin: str,
        interval: float,
        segment_bytes: int,
        min_free_bytes: int,
    ) -> AuditLog:
        try:
            recovery = recover(directory, key.public_key(), origin)
            holder: list[AuditLog] = []
            publisher = Publisher(
                directory, key, origin, recovery.frontier, recovery.checkpoint, interval,
                lambda exc: holder[0]._publish_failed(exc),
            )  # fmt: skip
            sequencer = Sequencer(directory, recovery, segment_bytes, publisher.integrate)
            if recovery.checkpoint is None:
                publisher.publish()  # bind the origin and key to the directory from the start
        except OSError as exc:
            raise LogStateError(f"cannot open the audit log in {directory}: {exc}") from exc
        log = cls(directory, lock_fd, recovery, sequencer, publisher, min_free_bytes)
        holder.append(log)
        sequencer.start()
        publisher.start()
        return log

    def _publish_failed(self, exc: OSError) -> None:
        _log.error(
            "audit log %s: publishing a checkpoint failed (will retry): %s", self.directory, exc
        )

    def _free_bytes(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize

    def _admit(self, record: Mapping[str, Any]) -> bytes:
        validate_record(record)
        data = encode_validated(record)
        if self._closed:
            raise AuditWriteError("the audit log is closed: the record was not logged")
        unpublished = self._publisher.failure
        if unpublished is not None:
            # Fail closed: a record no checkpoint can cover could be cut unnoticed.
            raise AuditWriteError(
                f"the audit log cannot publish checkpoints ({unpublished.strerror or unpublished}):"
                " the record was not logged"
            )
        if record["event"] in _OPENING:
            try:
                free = self._free_bytes()
            except OSError as exc:
                raise AuditWriteError(f"the audit log's folder is unusable: {exc}") from exc
            if free < self._min_free_bytes:
                raise AuditWriteError(
                    f"the audit log's disk has {free} bytes free, below the {self._min_free_bytes}"
                    " kept for requests under way: the record was not logged"
                )
        return data

    async def append(self, record: Mapping[str, Any]) -> int:
        """Log ``record`` and return its index once it is durable.

        The record is validated (schema 1) and canonicalised here; the write
        and fsync run on the writer thread, shared with concurrent appends.
        Raises :class:`RecordError` for a record outside the schema and
        :class:`AuditWriteError` when it cannot be made durable (log closed,
        disk full or below the reserve, directory unwritable, checkpoints not
        publishable): then it is NOT logged, and a later append tries again.
        Cancelling the awaiting task does not withdraw a queued record.
        """
        data = self._admit(record)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._state_lock:
            if self._closed:
                raise AuditWriteError("the audit log is closed: the record was not logged")
            self._sequencer.submit(data, (loop, future))
        return await future

    def append_sync(self, record: Mapping[str, Any]) -> int:
        """Blocking :meth:`append`, for CLIs, tests and threads without an event loop."""
        data = self._admit(record)
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        with self._state_lock:
            if self._closed:
                raise AuditWriteError("the audit log is closed: the record was not logged")
            self._sequencer.submit(data, future)
        return future.result()

    @property
    def size(self) -> int:
        """The number of durable records."""
        return self._sequencer.size

    @property
    def commits(self) -> int:
        """Group commits so far: one write and one fdatasync each, shared by their appends."""
        return self._sequencer.batches

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The latest published checkpoint."""
        return self._publisher.latest

    def publish(self) -> Checkpoint:
        """Integrate and publish now (normally the background thread does it)."""
        try:
            return self._publisher.publish()
        except OSError as exc:
            raise AuditWriteError(f"publishing a checkpoint failed: {exc}") from exc

    def writable(self) -> bool:
        """Whether an append can be expected to succeed (for a readiness probe).

        False once the log is closed, when its directory is not writable,
        when free space is below ``min_free_bytes``, and while the last write
        or publish failed for a reason other than a full disk (an I/O error,
        a file size limit) and nothing has succeeded since. A full disk is
        judged by the free space now, so this turns true again by itself
        when space returns.
        """
        if self._closed or not self._sequencer.is_alive() or not self._publisher.is_alive():
            return False
        for error in (self._sequencer.error, self._publisher.failure):
            if error is not None and error.errno != errno.ENOSPC:
                return False
        try:
            free = self._free_bytes()
        except OSError:
            return False
        return os.access(self.directory, os.W_OK) and free >= self._min_free_bytes

    def close(self) -> None:
        """Finish queued appends, publish a final checkpoint and stop; idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._sequencer.stop()
        self._sequencer.join()
        self._publisher.stop()
        self._publisher.join()
        try:
            self._publisher.publish()
        except OSError as exc:
            raise AuditWriteError(f"publishing the final checkpoint failed: {exc}") from exc
        finally:
            self._publisher.close()
            os.close(self._lock_fd)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
