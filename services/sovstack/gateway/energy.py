"""Each request's time on its replica, GPU-seconds and joules, apportioned over those in flight.

One :class:`Meter` per replica, told four things, none of which waits:

* :meth:`~Meter.begin` / :meth:`~Meter.end`: a request was sent to the replica / its
  answer is over (``Pool.acquire`` / ``Pool.release``);
* :meth:`~Meter.sample`: the node's total-energy counter, read by the replica's sampler
  (gateway/sampler.py, a background task that polls the energy agent beside the
  replica), never on the request path; or why there is none;
* :meth:`~Meter.settle`: the request's tokens, when its end record is written;
  returns its :class:`Share`.

**GPU-seconds.** Each moment the replica is busy is split evenly over the requests
in flight then (a running integral of 1/k over time), so the shares of all requests
add up to the replica's busy time, and a request alone gets its time on the replica.

**Energy.** The counter's increase between two samples is that interval's energy; the
replica's energy while idle goes to no request. It is apportioned over the requests
in flight during the interval by tokens: a request's weight is its token rate (its
tokens over its time on the replica) times its time in the interval. Tokens are
known only when a request ends, so a request settling takes its share of what is
left of each interval it was in, weighing those not settled yet at the replica's mean
token rate so far; the last to settle takes the rest, so an interval's shares add up
to its energy. The stretch after the last sample is estimated at the last interval's
power, and what was handed out from it is taken off that interval's energy when it
is sampled. A request is unmeasured (``energy_mj`` null, with the reason) when the
replica had no counter reading before it began, a reading failed while it ran,
or it ended before the counter had measured a first interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NO_COUNTER", "Meter", "Share"]

NO_COUNTER = "the replica's node has no energy counter"  # no sampler configured for it
FORGET_AFTER_S = 60.0  # an ended request not settled by then never will be


@dataclass(frozen=True)
class Share:
    """One request's usage of its replica, in the end record's integer units."""

    replica_us: int
    gpu_us: int
    energy_mj: int | None
    energy_unmeasured: str | None  # why energy_mj is None

    def as_record(self) -> dict[str, Any]:
        return {
            "replica_us": self.replica_us, "gpu_us": self.gpu_us,
            "energy_mj": self.energy_mj, "energy_unmeasured": self.energy_unmeasured,
        }  # fmt: skip


@dataclass
class _Interval:
    """The energy between two samples, and the requests in it not yet settled."""

    start: float
    stop: float | None = None  # None: the stretch since the last sample
    energy: float = 0.0  # millijoules left to hand out (for the open stretch: handed out)
    members: set[str] = field(default_factory=set)


@dataclass
class _Request:
    began: float
    share_at_begin: float
    ended: float | None = None
    gpu_s: float = 0.0
    unmeasured: str | None = None
    intervals: list[_Interval] = field(default_factory=list)


class Meter:
    """One replica's requests and energy samples (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, _Request] = {}
        self._running = 0  # requests in flight (begun, not ended)
        self._share = 0.0  # GPU-seconds one request in flight has accrued since start
        self._moved = clock()
        self._counter: tuple[float, int] | None = None  # the last reading: time, mJ
        self._unmeasured: str | None = NO_COUNTER
        self._power: float | None = None  # mJ per second in the last measured interval
        self._open = _Interval(self._moved)
        self._tokens = 0  # tokens and seconds of the requests settled, for the mean rate
        self._seconds = 0.0

    def _advance(self) -> float:
        now = self._clock()
        if self._running:
            self._share += (now - self._moved) / self._running
        self._moved = now
        return now

    def begin(self, request_id: str) -> None:
        now = self._advance()
        request = _Request(now, self._share, unmeasured=self._unmeasured)
        self._requests[request_id] = request
        self._running += 1
        self._join(request_id, request, self._open)

    def end(self, request_id: str) -> None:
        request = self._requests.get(request_id)
        if request is None or request.ended is not None:
            return
        request.ended = self._advance()
        request.gpu_s = self._share - request.share_at_begin
        self._running -= 1

    def sample(self, counter_mj: int | None, reason: str | None = None) -> None:
        """A reading of the counter (millijoules since some origin), or None and why not."""
        now = self._clock()
        last = self._counter
        closing, self._open = self._open, _Interval(now)
        for request_id in closing.members:
            request = self._requests[request_id]
            if request.ended is None:
                self._join(request_id, request, self._open)
        self._forget_unsettled(now)
        if counter_mj is None:
            self._counter, self._unmeasured = None, reason or NO_COUNTER
            self._fail(closing, self._unmeasured)
            return
        self._counter, self._unmeasured = (now, counter_mj), None
        if last is None:
            self._fail(closing, "the energy counter had no reading when the request began")
        elif counter_mj < last[1]:
            self._fail(closing, "the energy counter went back (reset) while the request ran")
        else:
            measured = counter_mj - last[1]
            self._power = measured / (now - last[0]) if now > last[0] else 0.0
            closing.stop = now
            closing.energy = max(0.0, measured - closing.energy)  # less what was estimated

    def settle(self, request_id: str, tokens: int | None) -> Share | None:
        """The request's share, once (None for a request this meter never saw)."""
        self.end(request_id)  # when its answer is over, if not told yet
        request = self._requests.pop(request_id, None)
        if request is None or request.ended is None:
            return None
        on_replica = request.ended - request.began
        rate = (tokens or 0) / on_replica if on_replica > 0 else 0.0
        mean = self._tokens / self._seconds if self._seconds > 0 else rate
        if self._power is None and request_id in self._open.members:
            # Its last stretch cannot be estimated before the counter measured an interval.
            request.unmeasured = request.unmeasured or "no energy interval measured yet"
        energy = 0.0
        for interval in request.intervals:
            energy += self._take(interval, request_id, request, rate, mean)
        if tokens is not None:
            self._tokens += tokens
            self._seconds += on_replica
        unmeasured = request.unmeasured
        return Share(
            replica_us=int(on_replica * 1_000_000), gpu_us=int(request.gpu_s * 1_000_000),
            energy_mj=None if unmeasured else round(energy), energy_unmeasured=unmeasured,
        )  # fmt: skip

    def _join(self, request_id: str, request: _Request, interval: _Interval) -> None:
        interval.members.add(request_id)
        request.intervals.append(interval)

    def _fail(self, interval: _Interval, reason: str) -> None:
        """Mark the requests of an interval that could not be measured, and drop its energy."""
        for request_id in interval.members:
            request = self._requests[request_id]
            request.unmeasured = request.unmeasured or reason
        interval.members.clear()

    def _forget_unsettled(self, now: float) -> None:
        """Drop requests that ended long ago and were never settled (sent on to another replica)."""
        for request_id, request in list(self._requests.items()):
            if request.ended is not None and now - request.ended > FORGET_AFTER_S:
                del self._requests[request_id]
                for interval in request.intervals:
                    interval.members.discard(request_id)

    def _overlap(self, interval: _Interval, request: _Request, now: float) -> float:
        stop = interval.stop if interval.stop is not None else now
        ended = request.ended if request.ended is not None else now
        return max(0.0, min(stop, ended) - max(interval.start, request.began))

    def _take(
        self, interval: _Interval, request_id: str, request: _Request, rate: float, mean: float
    ) -> float:
        """This request's share of what is left of ``interval``; removes it from the interval."""
        if request_id not in interval.members:
            return 0.0  # the interval failed
        now = self._clock()
        interval.members.discard(request_id)
        mine = rate * self._overlap(interval, request, now)
        others = sum(
            mean * self._overlap(interval, self._requests[other], now) for other in interval.members
        )
        if interval.stop is None:  # the stretch since the last sample: estimated
            left = max(0.0, (self._power or 0.0) * (now - interval.start) - interval.energy)
            share = left * mine / (mine + others) if mine + others > 0 else 0.0
            interval.energy += share
            return share
        if not interval.members:
            share, interval.energy = interval.energy, 0.0  # the last one takes the rest
            return share
        share = interval.energy * mine / (mine + others) if mine + others > 0 else 0.0
        interval.energy -= share
        return share
