"""Body-size, concurrency and per-client rate limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.gateway import limits
from sovstack.gateway.auditing import Auditor
from sovstack.gateway.errors import PayloadTooLarge, RateLimited, RequestTimeout
from sovstack.gateway.limits import ClientSlots, LimitsMiddleware, RateLimiter
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.refusals import Refusals


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
    return {"type": "http", "path": path, "headers": headers, "state": {}}


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


def _stalled(*parts: bytes) -> Any:
    """A client that sends ``parts`` (more to come) and then nothing at all."""
    queue = list(parts)

    async def receive() -> dict[str, Any]:
        if queue:
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        await asyncio.Event().wait()  # never set: the rest of the body never comes
        raise AssertionError("unreachable")

    return receive


async def test_a_body_that_stops_arriving_gets_408_within_the_deadline() -> None:
    mw = LimitsMiddleware(_read_all, max_body_bytes=100, max_in_flight=4, body_timeout_s=0.2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(RequestTimeout) as late:
        await mw(_scope(), _stalled(b'{"model"', b": 1"), Recorder())
    assert 0.2 <= asyncio.get_running_loop().time() - started < 1.0
    assert late.value.status == 408 and late.value.code == "body_timeout"
    assert late.value.headers()["Connection"] == "close"  # the rest must not be read as a request
    assert mw.in_flight == 0


async def test_once_the_body_is_whole_receive_is_not_timed() -> None:
    """A stream waits on receive() for the client's disconnect, far past the body deadline."""
    waited: list[float] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["more_body"] is False
        started = asyncio.get_running_loop().time()
        assert (await receive())["type"] == "http.disconnect"
        waited.append(asyncio.get_running_loop().time() - started)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.3)  # the client goes away after the deadline
        return {"type": "http.disconnect"}

    mw = LimitsMiddleware(streaming, max_body_bytes=100, max_in_flight=4, body_timeout_s=0.1)
    sent = Recorder()
    await mw(_scope(), receive, sent)
    assert sent.status == 200 and waited[0] >= 0.3


def test_a_client_holds_at_most_its_slots_and_others_keep_theirs() -> None:
    slots = ClientSlots(per_client=2)
    scopes = [_scope() for _ in range(3)]
    slots.take(scopes[0], "line-monitor")
    slots.take(scopes[0], "line-monitor")  # the same request again: still one slot
    slots.take(scopes[1], "line-monitor")
    with pytest.raises(RateLimited) as refused:
        slots.take(scopes[2], "line-monitor")
    assert refused.value.status == 429 and refused.value.code == "too_many_in_flight"
    assert refused.value.retry_after == 1
    slots.take(_scope(), "quality-lab")
    slots.release("line-monitor")
    slots.take(scopes[2], "line-monitor")
    assert slots.held == {"line-monitor": 2, "quality-lab": 1}


async def test_a_slot_is_held_until_the_last_byte_of_a_stream() -> None:
    slots = ClientSlots(per_client=1)
    streaming, finish, sent_all, recorded = (asyncio.Event() for _ in range(4))

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        slots.take(scope, "line-monitor")  # as proxy.authenticate does
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        streaming.set()
        await finish.wait()
        await send({"type": "http.response.body", "body": b""})
        sent_all.set()
        await recorded.wait()  # the end record's fsync, after the client has its answer

    mw = LimitsMiddleware(stream, max_body_bytes=100, max_in_flight=4)
    running = asyncio.create_task(mw(_scope(), _receiver(b"{}"), Recorder()))
    await asyncio.wait_for(streaming.wait(), 5)
    assert slots.held == {"line-monitor": 1}
    with pytest.raises(RateLimited):
        slots.take(_scope(), "line-monitor")
    finish.set()
    await asyncio.wait_for(sent_all.wait(), 5)
    assert slots.held == {}  # free for the client's next request already
    recorded.set()
    await running
    assert slots.held == {} and mw.in_flight == 0


async def test_a_failed_request_gives_its_slot_back() -> None:
    slots = ClientSlots(per_client=1)

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        slots.take(scope, "line-monitor")
        raise RuntimeError("the handler failed")

    mw = LimitsMiddleware(failing, max_body_bytes=100, max_in_flight=4)
    with pytest.raises(RuntimeError):
        await mw(_scope(), _receiver(b"{}"), Recorder())
    assert slots.held == {}


async def test_a_refusal_before_the_caller_is_known_leaves_a_denied_record(
    tmp_path: Path,
) -> None:
    log = AuditLog.open(tmp_path / "audit", Ed25519PrivateKey.generate(), "plant-a.example/t")
    refusals = Refusals(log, per_interval=10, interval_s=60)
    # The app as LimitsMiddleware reaches it: scope["app"].state.gateway (Starlette sets it).
    app = SimpleNamespace(state=SimpleNamespace(gateway=SimpleNamespace(
        auditor=Auditor(log, None, refusals), metrics=Metrics())))  # fmt: skip
    mw = LimitsMiddleware(_read_all, max_body_bytes=10, max_in_flight=0)
    try:
        for request_id, path in (("busy", "/v1/chat/completions"), ("busy2", "/v1/\u2028x")):
            scope = _scope(path) | {"app": app, "client": ("10.0.0.7", 50000)}
            scope["state"]["request_id"] = request_id
            sent = Recorder()
            await mw(scope, _receiver(b"{}"), sent)
            _assert_error(sent, 503, "overloaded")
        await refusals.drain()
        records = [decode_entry(data)[2] for _, data, _ in Scanner(log.directory)]
    finally:
        log.close()
    assert [(r["request_id"], r["event"], r["route"]) for r in records] == [
        ("busy", "denied", None), ("busy2", "denied", None)
    ]  # fmt: skip
    assert records[0]["decision"]["reasons"] == [
        "the gateway is at its limit of requests in flight; retry shortly"
    ]
