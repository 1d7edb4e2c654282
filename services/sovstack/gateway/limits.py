"""Limits that protect the gateway and the models behind it.

``LimitsMiddleware`` (pure ASGI, so streams and cancellation pass untouched)
refuses a request fast when too many are in flight (503 with Retry-After) and
stops reading a body past the size limit (413). ``RateLimiter`` is a token
bucket per client, checked once the caller is known (429 with Retry-After).
"""

from __future__ import annotations

import json
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sovstack.gateway.errors import GatewayError, PayloadTooLarge, RateLimited, Unavailable

__all__ = ["LimitsMiddleware", "RateLimiter"]

_UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_error(send: Send, error: GatewayError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_in_flight: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send_error(send, Unavailable(
                "the gateway is at its limit of requests in flight; retry shortly",
                code="overloaded", retry_after=1,
            ))  # fmt: skip
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await send_error(send, self._too_large())
            return
        self.in_flight += 1
        try:
            await self.app(scope, self._counting(receive), send)
        finally:
            self.in_flight -= 1

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is larger than {self.max_body} bytes", code="body_too_large"
        )

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_large()
            return message

        return counted


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate) if self.rate > 0 else 60
            raise RateLimited(
                f"client {client!r} is over its rate limit", code="rate_limited", retry_after=wait
            )
        self._buckets[client] = (tokens - 1.0, now)
