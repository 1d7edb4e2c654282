"""A worker's view of its siblings' audit logs: their durable records, for the quotas.

Each worker process of a gateway writes its own log (gateway/workers.py), and
its quota ledger counts its own records as they become durable. To judge a
client's quota by the whole gateway's usage, each worker also reads the
records its siblings made durable: :meth:`SiblingLogs.catch_up` once at
start, then every ``poll_s`` in the background. So usage on the other
workers is seen within about ``poll_s``: a client spreading requests over
workers may overshoot a quota by what it is granted in that window.

Only complete lines are read (an append in progress is left for the next
round), segments are followed as they roll over, and a sibling whose log
does not exist yet is read once it does. Records are read in a worker
thread and handed to ``count`` on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import list_segments

__all__ = ["SiblingLogs"]

_log = logging.getLogger(__name__)
Count = Callable[[Mapping[str, Any]], None]


class _Tail:
    """Where one sibling's log has been read up to: a segment and a byte offset in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.segment: tuple[int, Path] | None = None
        self.offset = 0

    def read(self) -> list[Mapping[str, Any]]:
        """The records made durable since the last read (blocking)."""
        records: list[Mapping[str, Any]] = []
        segments = list_segments(self.directory)  # before reading: see the module docstring
        if self.segment is None:
            if not segments:
                return records
            self.segment = segments[0]
        while True:
            with self.segment[1].open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            records.extend(decode_entry(line)[2] for line in complete.split(b"\n")[:-1])
            self.offset += len(complete)
            newer = [s for s in segments if s[0] > self.segment[0]]
            if not newer:
                return records
            # A segment with a newer one listed before it was read is finished and read whole.
            self.segment, self.offset = newer[0], 0


class SiblingLogs:
    """Follows the logs in ``directories``, handing each new durable record to ``count``."""

    def __init__(self, directories: Sequence[Path], count: Count, poll_s: float = 0.2) -> None:
        self._tails = [_Tail(d) for d in directories]
        self._count = count
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None

    def _read(self) -> list[Mapping[str, Any]]:
        records: list[Mapping[str, Any]] = []
        for tail in self._tails:
            records.extend(tail.read())
        return records

    async def catch_up(self) -> int:
        """Count every record made durable since the last round; how many there were."""
        records = await anyio.to_thread.run_sync(self._read)
        for record in records:
            self._count(record)
        return len(records)

    def start(self) -> None:
        if self._tails:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.catch_up()
            except (OSError, ValueError, KeyError) as exc:  # a sibling's bad line: say, go on
                _log.warning("reading a sibling worker's audit log: %s", exc)
