"""Body-size, concurrency and per-client rate limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sovstack.gateway import limits
from sovstack.gateway.errors import PayloadTooLarge, RateLimited
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


def _assert_error(sent: Recorder, status: int, code: str) -> None:
    """A whole, well-formed JSON error: start then body, the right status, type and length."""
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]
    assert sent.status == status
    assert sent.headers[b"content-type"] == b"application/json"
    assert sent.headers[b"content-length"] == str(len(sent.messages[1]["body"])).encode()
    assert sent.body["error"]["code"] == code and sent.body["error"]["message"]


async def test_a_body_of_exactly_the_limit_passes_and_one_byte_more_does_not() -> None:
    mw = LimitsMiddleware(_read_all, max_body_bytes=10, max_in_flight=4)
    for declared in (10, None):
        sent = Recorder()
        await mw(_scope(length=declared), _receiver(b"x" * 4, b"x" * 6), sent)
        assert sent.status == 200
    declared_over = Recorder()
    await mw(_scope(length=11), _receiver(b"x" * 11), declared_over)
    _assert_error(declared_over, 413, "body_too_large")
    with pytest.raises(PayloadTooLarge) as streamed_over:
        await mw(_scope(), _receiver(b"x" * 10, b"x"), Recorder())
    assert streamed_over.value.code == "body_too_large"
    assert mw.in_flight == 0  # a refused body does not hold a place


async def test_the_in_flight_count_holds_each_request_until_it_ends() -> None:
    release, both_in = asyncio.Event(), asyncio.Event()
    seen: list[Any] = []

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        if len(seen) == 2:
            both_in.set()
        await release.wait()
        await _read_all(scope, receive, send)

    mw = LimitsMiddleware(slow, max_body_bytes=100, max_in_flight=2)
    scopes = [_scope(), _scope()]
    running = [asyncio.create_task(mw(s, _receiver(b"{}"), Recorder())) for s in scopes]
    await asyncio.wait_for(both_in.wait(), 5)
    assert mw.in_flight == 2 and seen == scopes  # the app sees the request's own scope
    refused = Recorder()
    await mw(_scope(), _receiver(b"{}"), refused)
    _assert_error(refused, 503, "overloaded")
    release.set()
    await asyncio.gather(*running)
    assert mw.in_flight == 0


def test_the_bucket_refills_at_the_rate_and_says_how_long_to_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])  # the clock, not the code
    limiter = RateLimiter(rate=0.25, burst=2)
    limiter.check("c")
    limiter.check("c")
    for at, wait in ((100.0, 4), (102.0, 2)):  # empty, then half a token after 2 s
        now[0] = at
        with pytest.raises(RateLimited) as caught:
            limiter.check("c")
        assert caught.value.retry_after == wait and caught.value.code == "rate_limited"
        assert "'c' is over its rate limit" in caught.value.message
    now[0] = 104.0  # exactly one token again
    limiter.check("c")


def test_a_rate_of_zero_allows_the_burst_and_then_says_a_minute() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    limiter.check("c")
    with pytest.raises(RateLimited) as caught:
        limiter.check("c")
    assert caught.value.retry_after == 60
