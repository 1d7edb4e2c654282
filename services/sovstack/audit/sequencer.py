"""The sequence phase: give each record its index and make it durable (group commit).

One writer thread owns the open segment. It takes every record queued since
its last fsync, frames them as entries, writes them with one ``write`` and
makes them durable with one ``fdatasync``, then acknowledges each waiter
with its index. Concurrent appends therefore share one fsync, and no waiter
is acknowledged before its entry is on disk.

After any write or fsync failure the thread stops accepting records: the
failed batch and everything after it get :class:`AuditWriteError` (what
reached the disk is sorted out by recovery on the next open, which never
loses an acknowledged record).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Final

from sovstack.audit.entries import entry_prefix
from sovstack.audit.errors import AuditWriteError
from sovstack.audit.recovery import Recovery
from sovstack.audit.rfc6962 import LEAF_PREFIX
from sovstack.audit.segments import segment_name
from sovstack.core.keyfiles import fsync_directory, write_all

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
        self._fd: int | None = None
        self._segment_bytes = recovery.segment_bytes
        if recovery.segment is not None:
            self._fd = os.open(recovery.segment, os.O_WRONLY | os.O_APPEND)
        self.failure: AuditWriteError | None = None
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _commit(self, batch: list[_Item]) -> None:
        if self.failure is not None:
            _settle(batch, [self.failure] * len(batch))
            return
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
            fd = self._segment_for(len(data))
            write_all(fd, data)
            os.fdatasync(fd)
        except OSError as exc:
            self.failure = AuditWriteError(
                f"the audit log could not make records durable: {exc.strerror or exc}"
                f" ({self._directory}); the log refuses further records until it is reopened"
            )
            self._undo_partial_write()
            _settle(batch, [self.failure] * len(batch))
            return
        first = self.size
        self.size, self._prev = index, prev
        self._segment_bytes += len(data)
        self.batches += 1
        self._on_durable(leaves)
        _settle(batch, list(range(first, index)))

    def _segment_for(self, incoming: int) -> int:
        full = self._segment_bytes > 0 and self._segment_bytes + incoming > self._segment_limit
        if self._fd is not None and not full:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = self._directory / segment_name(self.size)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        self._segment_bytes = 0
        fsync_directory(self._directory)  # the new file must survive a crash with its records
        return self._fd

    def _undo_partial_write(self) -> None:
        # Best effort: cut what this batch may have left, so that a refused
        # record is less likely to reappear after the next recovery.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._segment_bytes)
