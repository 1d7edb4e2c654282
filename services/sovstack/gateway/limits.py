"""Limits that protect the gateway and the models behind it.

``LimitsMiddleware`` (pure ASGI, so streams and cancellation pass untouched)
refuses a request fast when too many are in flight (503 with Retry-After),
stops reading a body past the size limit (413) or past its deadline (408, a
slow body), and gives back the caller's in-flight slot when the response ends.
``RateLimiter`` is a token bucket per client and ``ClientSlots`` a count of
requests in flight per client, both checked once the caller is known (429
with Retry-After), so one client cannot hold every place of the global limit.

A refusal made here, before the caller is known, is recorded like any other
(a ``denied`` record through the auditor, summarised per source in a flood:
gateway/refusals.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.errors import (
    GatewayError,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unavailable,
)

__all__ = [
    "ClientSlots", "LimitsMiddleware", "RateLimiter", "client_source", "over_rate", "send_error",
    "spend",
]  # fmt: skip

_UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_SLOT = "sovstack.client_slot"  # scope["state"] key: the (slots, client) to give back


async def send_error(send: Send, error: GatewayError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client_source(scope: Scope) -> str | None:
    """The peer's address (from the socket, never from a header), or None."""
    client = scope.get("client")
    return str(client[0]) if client else None


class LimitsMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_in_flight: int,
        body_timeout_s: float = 30.0,
    ) -> None:  # fmt: skip
        self.app = app
        self.max_body = max_body_bytes
        self.max_in_flight = max_in_flight
        self.body_timeout_s = body_timeout_s
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await _refuse(scope, send, Unavailable(
                "the gateway is at its limit of requests in flight; retry shortly",
                code="overloaded", retry_after=1,
            ))  # fmt: skip
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _refuse(scope, send, self._too_large())
            return
        self.in_flight += 1

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # The client has its whole answer and may send the next request at
                # once: the slot is free now, not after the end record is durable.
                _give_back(scope)

        try:
            await self.app(scope, self._reading(receive), sending)
        finally:
            self.in_flight -= 1
            _give_back(scope)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is larger than {self.max_body} bytes", code="body_too_large"
        )

    def _reading(self, receive: Receive) -> Receive:
        """``receive`` that counts the body and holds it to one deadline from now.

        Once the body is complete, messages pass through untimed: a stream's
        wait for the client's disconnect must not be cut by the body deadline.
        """
        seen, done = 0, False
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def read() -> Message:
            nonlocal seen, done
            if done:
                return await receive()
            try:
                # asyncio's own timeout: a third of anyio.fail_after's cost, on every request.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {self.body_timeout_s:g} s",
                    code="body_timeout",
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_large()
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return read


def _give_back(scope: Scope) -> None:
    slot = scope.get("state", {}).pop(_SLOT, None)
    if slot is not None:
        slot[0].release(slot[1])


async def _refuse(scope: Scope, send: Send, error: GatewayError) -> None:
    """Answer ``error`` and leave the refusal's ``denied`` record (caller not yet known)."""
    state = getattr(getattr(scope.get("app"), "state", None), "gateway", None)
    request_id = scope.get("state", {}).get("request_id")
    if state is not None:
        state.metrics.refused(error)
    if state is not None and request_id is not None:
        # The path is not recorded: it is the caller's, unchecked, and not yet routed.
        ctx = RequestContext(request_id=request_id, route=None, source=client_source(scope))
        try:
            await state.auditor.decided(ctx, reasons=[error.message])
        except GatewayError as exc:
            error = exc  # the log cannot take it: say so (503), as for any request
    await send_error(send, error)


def spend(rate: float, burst: float, tokens: float, last: float, now: float) -> float | None:
    """A token bucket's draw at ``now``: the tokens left, or None when none is left to take.

    ``tokens`` were in the bucket at ``last``; it refills at ``rate`` a second up to ``burst``.
    """
    tokens = min(burst, tokens + (now - last) * rate)
    return tokens - 1.0 if tokens >= 1.0 else None


def over_rate(client: str, rate: float, tokens: float) -> RateLimited:
    wait = math.ceil((1.0 - tokens) / rate) if rate > 0 else 60
    return RateLimited(
        f"client {client!r} is over its rate limit", code="rate_limited", retry_after=wait
    )


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        left = spend(self.rate, self.burst, tokens, last, now)
        if left is None:
            refilled = min(self.burst, tokens + (now - last) * self.rate)
            self._buckets[client] = (refilled, now)
            raise over_rate(client, self.rate, refilled)
        self._buckets[client] = (left, now)


class ClientSlots:
    """Requests in flight per client, at most ``per_client`` each.

    :meth:`take` is called once the caller is authenticated, before its body
    is read; ``LimitsMiddleware`` gives the slot back when the response's last
    byte is sent (a stream's included), or when the request fails.
    """

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self.held: dict[str, int] = {}

    def take(self, scope: Scope, client: str) -> None:
        """Hold a slot for ``client`` until this request ends; RateLimited (429) if none is free."""
        state = scope.setdefault("state", {})
        if _SLOT in state:
            return  # one slot per request, however often it is authenticated
        held = self._acquire(client)
        if held is not None:
            raise RateLimited(
                f"this client has {held} requests in flight, its limit; retry when one ends",
                code="too_many_in_flight", retry_after=1,
            )  # fmt: skip
        state[_SLOT] = (self, client)

    def _acquire(self, client: str) -> int | None:
        """Count one more request of ``client``; at its limit, what it holds (nothing counted)."""
        held = self.held.get(client, 0)
        if held >= self.per_client:
            return held
        self.held[client] = held + 1
        return None

    def release(self, client: str) -> None:
        left = self.held.get(client, 0) - 1
        if left > 0:
            self.held[client] = left
        else:
            self.held.pop(client, None)
