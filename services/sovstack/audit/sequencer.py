"""The sequence phase: give each record its index and make it durable (group commit).

One writer thread owns the open segment. It takes every record queued since
its last fsync, frames them as entries, writes them with one ``write`` and
makes them durable with one ``fdatasync``, then acknowledges each waiter
with its index. Concurrent appends therefore share one fsync, and no waiter
is acknowledged before its entry is on disk.

A write or fsync failure (disk full, I/O error) fails that batch alone: each
of its waiters gets :class:`AuditWriteError`, none is acknowledged, and the
segment is cut back to its last acknowledged entry (:class:`AppendFile`), so
the batch's indexes are given again to the next records. The next batch
retries the disk, so the log comes back by itself once space returns. Only
a segment that could not be cut back is never written after; what a crash
leaves there is sorted out by recovery on the next open, which never loses
an acknowledged record.

``failure`` is the last batch's error while no batch has succeeded since.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import threading
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Final

from sovstack.audit.appendfile import AppendFile
from sovstack.audit.entries import entry_prefix
from sovstack.audit.errors import AuditWriteError
from sovstack.audit.recovery import Recovery
from sovstack.audit.rfc6962 import LEAF_PREFIX
from sovstack.audit.segments import segment_name
from sovstack.core.keyfiles import fsync_directory

__all__ = ["Sequencer", "Waiter"]

MAX_BATCH: Final = 4096

AsyncWaiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[int]"]
Waiter = AsyncWaiter | concurrent.futures.Future[int]
_Item = tuple[bytes, Waiter]


def _settle_async(pairs: list[tuple[asyncio.Future[int], int | BaseException]]) -> None:
    for future, outcome in pairs:
        if future.done():  # the awaiting task was cancelled; the record stays logged
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _settle(items: list[_Item], outcomes: list[int | BaseException]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int | BaseException]]]
    by_loop = {}
    for (_, waiter), outcome in zip(items, outcomes, strict=True):
        if isinstance(waiter, concurrent.futures.Future):
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)
        else:
            by_loop.setdefault(waiter[0], []).append((waiter[1], outcome))
    for loop, pairs in by_loop.items():
        # RuntimeError: the caller's event loop is closed, so nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_async, pairs)


class Sequencer(threading.Thread):
    """The writer thread. ``submit`` queues canonical record JSON with its waiter."""

    def __init__(
        self,
        directory: Path,
        recovery: Recovery,
        segment_limit: int,
        on_durable: Callable[[list[bytes]], None],
    ) -> None:
        super().__init__(name="audit-sequencer", daemon=True)
        self._directory = directory
        self._segment_limit = segment_limit
        self._on_durable = on_durable
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        self.size = recovery.size
        self._prev = recovery.prev
        self._file: AppendFile | None = None
        if recovery.segment is not None:
            self._file = AppendFile.open(recovery.segment)
        # A new segment whose directory entry is not yet durable: synced before it is used.
        self._unsynced_segment = False
        self.failure: AuditWriteError | None = None
        self.error: OSError | None = None  # the OSError behind ``failure``
        self.batches = 0

    def submit(self, record_json: bytes, waiter: Waiter) -> None:
        self._queue.put((record_json, waiter))

    def stop(self) -> None:
        """Finish everything queued so far, then end the thread."""
        self._queue.put(None)

    def run(self) -> None:
        queue = self._queue
        stopping = False
        while not stopping:
            first = queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)
        if self._file is not None:
            with contextlib.suppress(OSError):  # else recovery trims the tail at the next open
                self._file.restore()
            self._file.close()
            self._file = None

    def _commit(self, batch: list[_Item]) -> None:
        index, prev = self.size, self._prev
        lines, leaves = [], []
        for record_json, _ in batch:
            line = entry_prefix(index, prev) + record_json + b"}"
            prev = sha256(LEAF_PREFIX + line).digest()
            lines.append(line)
            leaves.append(prev)
            index += 1
        data = b"\n".join(lines) + b"\n"
        try:
            self._segment_for(len(data)).append(data)
        except OSError as exc:
            self.error = exc
            self.failure = AuditWriteError(
                f"the audit log could not make records durable: {exc.strerror or exc}"
                f" ({self._directory}); they were not logged, and the next records retry"
            )
            _settle(batch, [self.failure] * len(batch))
            return
        self.failure = self.error = None
        first = self.size
        self.size, self._prev = index, prev
        self.batches += 1
        self._on_durable(leaves)
        _settle(batch, list(range(first, index)))

    def _segment_for(self, incoming: int) -> AppendFile:
        current = self._file
        if current is not None:
            current.restore()  # a failed batch's bytes are gone before anything else is written
            if current.length == 0 or current.length + incoming <= self._segment_limit:
                if self._unsynced_segment:
                    fsync_directory(self._directory)
                    self._unsynced_segment = False
                return current
            current.close()
            self._file = None
        path = self._directory / segment_name(self.size)
        fresh = AppendFile.open(path, create=True)
        if fresh.length:  # never append to a segment this thread did not start empty
            fresh.close()
            raise FileExistsError(errno.EEXIST, "a segment of that name already has entries", path)
        self._file = fresh
        # The new file must survive a crash with its records; until its directory
        # entry is synced (retried before each use) nothing is written to it.
        self._unsynced_segment = True
        fsync_directory(self._directory)
        self._unsynced_segment = False
        return self._file
