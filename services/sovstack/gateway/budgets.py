"""Per-client budgets shared by a gateway's worker processes: rate and requests in flight.

With workers (gateway/workers.py) the supervisor makes one table in shared
memory before it forks; every worker reads and updates it, so each client's
token bucket and its count of requests in flight are the whole gateway's,
wherever its connections land, exactly as in one process.

One slot per client (found by a 64-bit hash of its id, open addressing): the
bucket's tokens and time, and the requests in flight counted per worker, so
a worker that dies leaves no slot held: its successor clears its column
before taking requests (:meth:`SharedBudgets.attach`). Each update is made
under an exclusive ``flock`` on a file of the supervisor's, opened by each
worker on its own, which the kernel releases when a worker dies mid-update.
The table holds ``slots`` clients (16,384 by default); a client that finds
it full is refused (429), never let through.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from sovstack.gateway.config import MAX_WORKERS
from sovstack.gateway.errors import RateLimited
from sovstack.gateway.limits import ClientSlots, RateLimiter, over_rate, spend

__all__ = ["SharedBudgets", "SharedClientSlots", "SharedRateLimiter", "WorkerBudgets"]

_HEAD: Final = struct.Struct("<Qdd")  # key (0: free), bucket tokens, bucket time
_HELD: Final = struct.Struct(f"<{MAX_WORKERS}i")  # requests in flight, per worker
_SLOT: Final = _HEAD.size + _HELD.size
_WORKER: Final = struct.Struct("<i")


def _key(client: str) -> int:
    return int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest()) or 1


class SharedBudgets:
    """The table, made by the supervisor before it forks (its memory is inherited)."""

    def __init__(self, folder: Path, slots: int = 16_384) -> None:
        self.slots = slots
        self.memory = mmap.mmap(-1, slots * _SLOT)  # MAP_SHARED: the workers see one table
        self.lock_file = folder / "budgets.lock"
        self.lock_file.touch(mode=0o600)

    def attach(self, worker: int) -> WorkerBudgets:
        """Worker ``worker``'s handle (in it, after fork); clears what its predecessor held."""
        budgets = WorkerBudgets(self, worker)
        with budgets.locked():
            for slot in range(self.slots):
                _WORKER.pack_into(self.memory, slot * _SLOT + _HEAD.size + 4 * worker, 0)
        return budgets


class WorkerBudgets:
    """One worker's view of the table: its own lock descriptor and its column of counts."""

    def __init__(self, table: SharedBudgets, worker: int) -> None:
        self.table = table
        self.worker = worker
        # Its own open file description: flock excludes the other workers' (a shared one would not).
        self._fd = os.open(table.lock_file, os.O_RDWR | os.O_CLOEXEC)

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def slot(self, client: str, burst: float, now: float) -> int:
        """The offset of ``client``'s slot (made with a full bucket); call it locked."""
        key, memory, slots = _key(client), self.table.memory, self.table.slots
        start = key % slots
        for probe in range(slots):
            offset = ((start + probe) % slots) * _SLOT
            found = _HEAD.unpack_from(memory, offset)[0]
            if found == key:
                return offset
            if found == 0:
                _HEAD.pack_into(memory, offset, key, burst, now)
                return offset
        raise RateLimited(
            "the gateway's table of client budgets is full; retry later",
            code="rate_limited", retry_after=60,
        )  # fmt: skip

    def bucket(self, offset: int) -> tuple[float, float]:
        _, tokens, last = _HEAD.unpack_from(self.table.memory, offset)
        return tokens, last

    def set_bucket(self, offset: int, tokens: float, now: float) -> None:
        key = _HEAD.unpack_from(self.table.memory, offset)[0]
        _HEAD.pack_into(self.table.memory, offset, key, tokens, now)

    def held(self, offset: int) -> int:
        return sum(_HELD.unpack_from(self.table.memory, offset + _HEAD.size))

    def add_held(self, offset: int, delta: int) -> None:
        at = offset + _HEAD.size + 4 * self.worker
        _WORKER.pack_into(
            self.table.memory, at, _WORKER.unpack_from(self.table.memory, at)[0] + delta
        )


class SharedRateLimiter(RateLimiter):
    """:class:`RateLimiter` whose buckets are the table's: one bucket per client, all workers."""

    def __init__(self, budgets: WorkerBudgets, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self.budgets = budgets

    def check(self, client: str) -> None:
        now = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
        with self.budgets.locked():
            offset = self.budgets.slot(client, self.burst, now)
            tokens, last = self.budgets.bucket(offset)
            left = spend(self.rate, self.burst, tokens, last, now)
            refilled = min(self.burst, tokens + (now - last) * self.rate)
            self.budgets.set_bucket(offset, refilled if left is None else left, now)
        if left is None:
            raise over_rate(client, self.rate, refilled)


class SharedClientSlots(ClientSlots):
    """:class:`ClientSlots` counted in the table: a client's requests in flight on all workers."""

    def __init__(self, budgets: WorkerBudgets, per_client: int) -> None:
        super().__init__(per_client)
        self.budgets = budgets

    def _acquire(self, client: str) -> int | None:
        with self.budgets.locked():
            offset = self.budgets.slot(client, 0.0, time.monotonic())
            held = self.budgets.held(offset)
            if held >= self.per_client:
                return held
            self.budgets.add_held(offset, 1)
        return None

    def release(self, client: str) -> None:
        with self.budgets.locked():
            self.budgets.add_held(self.budgets.slot(client, 0.0, time.monotonic()), -1)
