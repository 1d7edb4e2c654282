"""Refusals: recorded without delaying the answer, and bounded under a flood.

A refusal sent nothing upstream, so its ``denied`` record need not be durable
before the caller hears "no" (only ``accepted`` must be, ARCHITECTURE.md):
:meth:`Refusals.submit` queues the record for the log's next group commit and
returns at once, so a run of refusals shares fsyncs instead of paying one each.

A caller never authenticated is known only by its address, its *source*.
Each source may leave ``per_interval`` records of its own per ``interval_s``
(a token bucket); a refusal beyond that is counted into the source's open
*episode*, and one ``denied`` summary record per episode says how many
refusals it stands for, from where, between when, and why::

    request_id  "refusals-<uuid>"        event     denied
    subject client site  null            roles     []
    route       the route, if every refusal had the same one, else null
    decision    {allow: false, reasons: the distinct reasons (at most 8 kept, each
                at most 200 printable characters), obligations: {}, policy_revision: ""}
    refusals    {count, source, first, last}        (the schema: audit/records.py)

An episode ends ``interval_s`` after its first refusal, so a source grows the
log by at most ``per_interval`` + 1 records per interval, whatever it sends.
Sources are tracked up to ``max_sources``; past that, new ones share the
source ``*``. Episodes still open when the gateway stops are written by
:meth:`aclose`; a gateway killed outright loses them (refusals: nothing
reached a model, and the individual records before them are kept).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sovstack.audit import AuditLog, build_record
from sovstack.audit import Decision as RecordedDecision
from sovstack.audit.records import format_time

__all__ = ["MANY_SOURCES", "Refusals", "bounded_reason"]

MANY_SOURCES: Final = "*"  # the source of refusals from sources past ``max_sources``
MAX_REASONS: Final = 8
REASON_CHARS: Final = 200
_log = logging.getLogger("sovstack.gateway.refusals")


def bounded_reason(reason: str) -> str:
    """``reason`` cut to 200 characters, anything not printable shown as ``?``.

    A reason may carry what a caller sent (a token header's value): bounded,
    and without line or paragraph separators, before it goes into a record.
    """
    cut = reason[:REASON_CHARS]
    return cut if cut.isprintable() else "".join(c if c.isprintable() else "?" for c in cut)


@dataclass
class _Episode:
    first: datetime
    route: str | None
    last: datetime = field(init=False)
    count: int = 0
    mixed_routes: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    other_reasons: int = 0

    def __post_init__(self) -> None:
        self.last = self.first

    def add(self, at: datetime, route: str | None, reasons: Sequence[str]) -> None:
        self.count += 1
        self.last = at
        if route != self.route:
            self.mixed_routes = True
        for reason in reasons[:MAX_REASONS]:
            kept = bounded_reason(reason)
            if kept in self.reasons or len(self.reasons) < MAX_REASONS:
                self.reasons[kept] = self.reasons.get(kept, 0) + 1
            else:
                self.other_reasons += 1

    def reason_lines(self) -> list[str]:
        lines = [f"{reason} ({n})" for reason, n in self.reasons.items()]
        if self.other_reasons:
            lines.append(f"other reasons ({self.other_reasons})")
        return lines


class Refusals:
    """Queues ``denied`` records, and throttles those of callers not authenticated.

    Use from one event loop. Call :meth:`aclose` before the log is closed.
    """

    def __init__(
        self, log: AuditLog, per_interval: int, interval_s: float, max_sources: int = 4096
    ) -> None:
        self.log = log
        self.per_interval = float(per_interval)
        self.interval_s = interval_s
        self.max_sources = max_sources
        self._rate = per_interval / interval_s
        self._buckets: dict[str, tuple[float, float]] = {}  # source: (tokens, when)
        self._episodes: dict[str, _Episode] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._pending: set[asyncio.Task[int]] = set()

    def throttled(self, source: str | None, route: str | None, reasons: Sequence[str]) -> bool:
        """Whether this refusal of an unauthenticated caller is counted, not recorded.

        False: the caller records it on its own (its source is within its
        budget). True: it was counted into the source's episode summary.
        """
        key = self._key(source or "unknown")
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.per_interval, now))
        tokens = min(self.per_interval, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return False
        self._buckets[key] = (tokens, now)
        at = datetime.now(UTC)
        episode = self._episodes.get(key)
        if episode is None:
            episode = self._episodes[key] = _Episode(at, route)
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self.interval_s, self._end, key)
        episode.add(at, route, reasons)
        return True

    def _key(self, source: str) -> str:
        if source in self._buckets or len(self._buckets) < self.max_sources:
            return source
        # Forget sources whose budget is whole again and that have no open episode.
        now = time.monotonic()
        for known, (tokens, last) in list(self._buckets.items()):
            whole = tokens + (now - last) * self._rate >= self.per_interval
            if whole and known not in self._episodes:
                del self._buckets[known]
        return source if len(self._buckets) < self.max_sources else MANY_SOURCES

    def _end(self, key: str) -> None:
        self._timers.pop(key, None)
        episode = self._episodes.pop(key, None)
        if episode is not None:
            self.submit(self.summary(key, episode))

    @staticmethod
    def summary(source: str, episode: _Episode) -> dict[str, Any]:
        """The ``denied`` record that stands for ``episode``'s refusals from ``source``."""
        return build_record(
            request_id=f"refusals-{uuid.uuid4().hex}", event="denied",
            route=None if episode.mixed_routes else episode.route,
            subject=None, client=None, roles=(), site=None,
            decision=RecordedDecision(False, episode.reason_lines()),
            refusals={
                "count": episode.count, "source": source,
                "first": format_time(episode.first), "last": format_time(episode.last),
            },
        )  # fmt: skip

    def submit(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for the log's next group commit; return without waiting for it."""
        task = asyncio.get_running_loop().create_task(self.log.append(record))
        self._pending.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[int]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The refusal was answered; only its trace is missing: say so loudly.
            _log.error("a refusal could not be recorded: %s", task.exception())

    async def drain(self) -> None:
        """Wait until every queued record is durable (or has failed)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        """Write every open episode's summary, then wait for every queued record."""
        for key in list(self._episodes):
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            self._end(key)
        await self.drain()
