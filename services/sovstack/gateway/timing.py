"""Stage timings: into ``sovstack_stage_seconds`` always, and into ``Server-Timing`` if asked.

Each stage of a request (metrics.STAGES) is timed by a :class:`Stage`, which
observes the stage's histogram and, while :class:`ServerTimingMiddleware`
holds the request, notes the duration for that request too. The middleware
(pure ASGI, on only with the ``server_timing`` setting) adds one header when
the response starts::

    Server-Timing: authenticate;dur=0.412, authorize;dur=1.305, audit;dur=0.788,
                   upstream_first_byte;dur=20.113, total;dur=23.004

Durations are in milliseconds. Only the stages done by the time the headers
go out are named; ``total`` (arrival to the headers) only on a response whose
body is whole by then (it carries a ``Content-Length``), never on a stream.
An error response (status 400 and up) gets no header, and no timing is ever
written into a body.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from types import TracebackType
from typing import Final, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SERVER_TIMING_ORDER", "ServerTimingMiddleware", "Stage"]

# The order stages are named in the header (metrics.STAGES, "total" last).
SERVER_TIMING_ORDER: Final = ("authenticate", "authorize", "audit", "upstream_first_byte")

# The current request's durations by stage, in seconds; None outside the middleware.
_current: ContextVar[dict[str, float] | None] = ContextVar("sovstack_timings", default=None)


class _Histogram(Protocol):
    def observe(self, amount: float) -> None: ...


class Stage:
    """One stage's timer: ``with stage.time():`` or ``stage.observe(seconds)``."""

    __slots__ = ("_histogram", "name")

    def __init__(self, name: str, histogram: _Histogram) -> None:
        self.name = name
        self._histogram = histogram

    def time(self) -> _Timer:
        return _Timer(self)

    def observe(self, seconds: float) -> None:
        self._histogram.observe(seconds)
        timings = _current.get()
        if timings is not None:
            timings[self.name] = seconds


class _Timer:
    """Times its ``with`` block, however it ends (as prometheus_client's own timer does)."""

    __slots__ = ("_stage", "_started")

    def __init__(self, stage: Stage) -> None:
        self._stage = stage
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stage.observe(time.perf_counter() - self._started)


def _header(timings: dict[str, float], total: float | None) -> bytes:
    parts = [f"{name};dur={timings[name] * 1000:.3f}" for name in SERVER_TIMING_ORDER
             if name in timings]  # fmt: skip
    if total is not None:
        parts.append(f"total;dur={total * 1000:.3f}")
    return ", ".join(parts).encode()


class ServerTimingMiddleware:
    """Adds ``Server-Timing`` to each successful response that has stages to show."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        timings: dict[str, float] = {}
        token = _current.set(timings)

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400 and timings:
                headers = message.get("headers", [])
                whole = any(name.lower() == b"content-length" for name, _ in headers)
                total = time.perf_counter() - started if whole else None
                message["headers"] = [*headers, (b"server-timing", _header(timings, total))]
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            _current.reset(token)
