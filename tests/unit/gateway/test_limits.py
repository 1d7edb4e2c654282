"""Body-size, concurrency and per-client rate limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sovstack.gateway.errors import RateLimited
from sovstack.gateway.limits import LimitsMiddleware, RateLimiter


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.messages[1]["body"]))


async def _read_all(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(path: str = "/v1/chat/completions", length: int | None = None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "path": path, "headers": headers}


def _receiver(*parts: bytes) -> Any:
    queue = list(parts)

    async def receive() -> dict[str, Any]:
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    return receive


async def test_a_declared_body_over_the_limit_is_refused_with_413_before_reading() -> None:
    mw, sent = LimitsMiddleware(_read_all, max_body_bytes=10, max_in_flight=4), Recorder()
    await mw(_scope(length=11), _receiver(b"x" * 11), sent)
    assert sent.status == 413
    assert sent.body["error"]["type"] == "invalid_request_error"


async def test_a_streamed_body_over_the_limit_is_stopped() -> None:
    mw = LimitsMiddleware(_read_all, max_body_bytes=10, max_in_flight=4)
    with pytest.raises(Exception, match="larger than 10 bytes"):
        await mw(_scope(), _receiver(b"x" * 6, b"x" * 6), Recorder())


async def test_too_many_in_flight_gets_a_fast_503_with_retry_after() -> None:
    release = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await _read_all(scope, receive, send)

    mw = LimitsMiddleware(slow, max_body_bytes=100, max_in_flight=1)
    first = asyncio.create_task(mw(_scope(), _receiver(b"{}"), Recorder()))
    await asyncio.sleep(0)
    refused = Recorder()
    await mw(_scope(), _receiver(b"{}"), refused)
    assert refused.status == 503
    assert refused.headers[b"retry-after"] == b"1"
    release.set()
    await first
    after = Recorder()
    await mw(_scope(), _receiver(b"{}"), after)
    assert after.status == 200


async def test_health_endpoints_are_never_limited() -> None:
    mw, sent = LimitsMiddleware(_read_all, max_body_bytes=1, max_in_flight=0), Recorder()
    await mw(_scope("/readyz"), _receiver(b""), sent)
    assert sent.status == 200


def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not() -> None:
    limiter = RateLimiter(rate=1.0, burst=3)
    for _ in range(3):
        limiter.check("line-monitor")
    with pytest.raises(RateLimited) as caught:
        limiter.check("line-monitor")
    assert caught.value.status == 429
    assert int(caught.value.headers()["Retry-After"]) >= 1
    limiter.check("quality-lab")
