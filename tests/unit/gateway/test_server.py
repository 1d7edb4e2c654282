"""The server the gateway runs on: bounded headers, read deadlines, the metrics listener.

Each test runs the real uvicorn server, configured by ``gateway.server``, on
loopback sockets in this process, and talks to it over raw sockets the way a
slow or hostile client would.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette

from sovstack.audit import AuditLog
from sovstack.gateway.auditing import Auditor
from sovstack.gateway.config import Settings
from sovstack.gateway.connections import ConnectionLimits, Refused
from sovstack.gateway.errors import GatewayError, HeadersTooLarge
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.refusals import Refusals
from sovstack.gateway.server import MetricsListener, bind, recording, uvicorn_config
from tests.unit.gateway import test_auditing, test_config

log = test_auditing.log  # the fixture: a real audit log in a temporary folder

LIMITS: dict[str, Any] = {
    "max_header_bytes": 4096,
    "max_header_count": 20,
    "header_read_timeout_s": 1.0,
    "body_read_timeout_s": 1.0,
    "keep_alive_timeout_s": 1,
}


def _settings(**over: Any) -> Settings:
    return test_config._settings(**(LIMITS | over))


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Answers every request at once with its path, without reading the body."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def _serving(
    settings: Settings, app: Any, *sockets: socket.socket, refused: Refused | None = None
) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn_config(settings, app, refused))
    task = asyncio.create_task(server.serve(sockets=list(sockets)))
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def _gateway_like(**over: Any) -> AsyncIterator[int]:
    sock = bind("127.0.0.1", 0)
    async with _serving(_settings(**over), _app, sock):
        yield sock.getsockname()[1]


async def _until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """All the server sends until it closes the connection (fails past ``within`` s)."""
    return await asyncio.wait_for(reader.read(), within)


async def _trickle(writer: asyncio.StreamWriter, byte: bytes) -> None:
    """One byte every 0.2 s, for ten seconds: each keeps the connection busy."""
    for _ in range(50):
        await asyncio.sleep(0.2)
        writer.write(byte)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _header(answer: bytes, name: bytes) -> str:
    head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return next(line.split(b": ", 1)[1].decode() for line in head if line.startswith(name + b":"))


def _error(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    return body


async def test_a_plain_request_is_served_and_an_idle_connection_closed_after_keep_alive() -> None:
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        near_both_limits = (b"x-h%d: %s\r\n" % (i, b"v" * 150) for i in range(18))
        headers = b"".join(near_both_limits)
        writer.write(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n" + headers + b"\r\n")
        started = asyncio.get_running_loop().time()
        answer = await _until_closed(reader, 3.0)
        assert _status(answer) == 200 and answer.endswith(b"/v1/models")
        assert b"server:" not in answer.lower()
        assert 0.9 < asyncio.get_running_loop().time() - started < 2.5  # keep-alive 1 s
        writer.close()


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"".join(b"x-h%d: v\r\n" % i for i in range(25)) + b"\r\n", "too_many_headers"),
        (b"x-big: " + b"a" * 5000 + b"\r\n\r\n", "headers_too_large"),
        (b"x-ok: 1\r\n" * 3 + b"\r\n", None),
    ],
    ids=["too-many", "too-large", "within"],
)
async def test_headers_over_a_limit_get_431_and_the_connection_closed(
    head: bytes, code: str | None
) -> None:
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n" + head)
        answer = await _until_closed(reader, 3.0)
        writer.close()
    if code is None:
        assert _status(answer) == 200
        return
    assert _status(answer) == 431 and b"connection: close" in answer
    error = _error(answer)
    assert error["code"] == code and error["type"] == "invalid_request_error"


async def test_an_endless_header_is_cut_off_before_it_ends() -> None:
    """Bytes are counted as they arrive: a header that never ends is not buffered whole."""
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: gw\r\nx-endless: ")
        await writer.drain()
        sent = 0
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            while sent < 1 << 20:
                await asyncio.sleep(0.01)  # separate reads, as a client streaming it
                writer.write(b"a" * 1024)
                await writer.drain()
                sent += 1024
        assert sent < 64 << 10  # refused long before a megabyte
        try:
            answer = await _until_closed(reader, 1.0)
        except ConnectionError:  # the refusal crossed our writes: the peer reset
            answer = b""
        assert answer == b"" or _status(answer) == 431
        writer.close()


async def test_slowloris_headers_get_408_and_the_connection_closed_within_the_timeout() -> None:
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = asyncio.get_running_loop().time()
        writer.write(b"GET / HTTP/1.1\r\nhost: gw\r\n")

        dripping = asyncio.create_task(_trickle(writer, b"x"))
        answer = await _until_closed(reader, 3.0)
        elapsed = asyncio.get_running_loop().time() - started
        dripping.cancel()
        writer.close()
    assert 0.9 < elapsed < 2.0  # header_read_timeout_s is 1
    assert _status(answer) == 408 and _error(answer)["code"] == "header_timeout"


async def test_a_large_body_in_the_same_reads_as_its_headers_is_not_taken_for_headers() -> None:
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"x" * (200 << 10)  # fifty times max_header_bytes, sent with the headers
        for _ in range(2):  # twice on one connection: the second follows the first's body
            head = b"POST /v1/embeddings HTTP/1.1\r\nhost: gw\r\ncontent-length: %d\r\n\r\n"
            writer.write(head % len(body) + body)
        answer = await _until_closed(reader, 4.0)
        writer.close()
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and b"431" not in answer


async def test_bytes_trickled_between_requests_do_not_keep_a_connection_open() -> None:
    async with _gateway_like(keep_alive_timeout_s=30) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: gw\r\n\r\n")
        started = asyncio.get_running_loop().time()
        dripping = asyncio.create_task(_trickle(writer, b"\r\n"))  # each resets keep-alive
        answer = await _until_closed(reader, 4.0)
        elapsed = asyncio.get_running_loop().time() - started
        dripping.cancel()
        writer.close()
    assert _status(answer) == 200 and elapsed < 2.5  # header_read_timeout_s is 1


async def test_a_connection_that_never_sends_is_closed_after_the_header_timeout() -> None:
    async with _gateway_like() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await _until_closed(reader, 3.0)
        writer.close()
    assert _status(answer) == 408


async def test_a_body_still_trickling_after_the_answer_is_cut_off() -> None:
    async with _gateway_like(keep_alive_timeout_s=30) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nhost: gw\r\ncontent-length: 1000\r\n\r\n{")
        started = asyncio.get_running_loop().time()

        dripping = asyncio.create_task(_trickle(writer, b" "))
        answer = await _until_closed(reader, 4.0)
        elapsed = asyncio.get_running_loop().time() - started
        dripping.cancel()
        writer.close()
    assert _status(answer) == 200  # answered before the body ended (as a 401 would be)
    assert elapsed < 2.5  # body_read_timeout_s is 1, not keep-alive's 30


async def test_a_refused_request_is_told_with_the_id_its_answer_carries() -> None:
    told: list[tuple[str | None, str, int]] = []
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]

    def refused(source: str | None, request_id: str, error: GatewayError) -> None:
        told.append((source, request_id, error.status))

    async with _serving(_settings(), _app, sock, refused=refused):
        answers = []
        for first_bytes in (b"GET / HTTP/1.1\r\n" + b"x-a: b\r\n" * 30 + b"\r\n", b"GET /", b""):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first_bytes)  # too many headers; headers never finished; nothing
            answers.append(await _until_closed(reader, 3.0))
            writer.close()
    assert [_status(a) for a in answers] == [431, 408, 408]
    ids = [_header(a, b"x-request-id") for a in answers]
    # A connection that never began a request is closed without a refusal to record.
    assert told == [("127.0.0.1", ids[0], 431), ("127.0.0.1", ids[1], 408)]


async def test_a_refusal_before_the_app_is_recorded_through_its_auditor(log: AuditLog) -> None:
    app = Starlette()
    refused = recording(app)
    refused("10.0.0.7", "early", HeadersTooLarge("too large"))  # before start-up: nothing
    refusals = Refusals(log, per_interval=5, interval_s=60)
    app.state.gateway = SimpleNamespace(auditor=Auditor(log, None, refusals), metrics=Metrics())
    refused("10.0.0.7", "r431", HeadersTooLarge("the request has more than 20 headers"))
    await asyncio.sleep(0.05)
    await refusals.drain()
    records = test_auditing._records(log.directory)
    assert [(r["request_id"], r["event"], r["route"], r["subject"]) for r in records] == [
        ("r431", "denied", None, None)
    ]
    assert records[0]["decision"]["reasons"] == ["the request has more than 20 headers"]


async def test_metrics_are_served_on_their_own_listener_only() -> None:
    main, metrics = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    app = MetricsListener(_app, metrics.getsockname()[1])
    async with _serving(_settings(), app, main, metrics):
        answers = {}
        for name, sock in (("main", main), ("metrics", metrics)):
            for path in ("/metrics", "/v1/models"):
                reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
                writer.write(
                    b"GET %s HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n" % path.encode()
                )
                answers[name, path] = await _until_closed(reader, 3.0)
                writer.close()
    assert _status(answers["metrics", "/metrics"]) == 200
    assert answers["metrics", "/metrics"].endswith(b"/metrics")
    assert _status(answers["main", "/v1/models"]) == 200
    for refused in (answers["main", "/metrics"], answers["metrics", "/v1/models"]):
        assert _status(refused) == 404 and _error(refused)["code"] == "unknown_route"
        assert b"/metrics" not in refused.split(b"\r\n\r\n")[1]  # the path is not echoed


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"metrics_port": 9100}, "go together"),
        ({"metrics_host": "127.0.0.1", "metrics_port": 8443}, "must differ"),
        ({"metrics_host": "10.0.0.5", "metrics_port": 9100}, "loopback only"),
        ({"max_in_flight_per_client": 300}, "cannot be more"),
        ({"max_header_bytes": 100}, "greater than or equal"),
        ({"header_read_timeout_s": 0}, "greater than 0"),
    ],
)
def test_unsafe_abuse_settings_are_refused(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**over)


def test_the_server_takes_its_limits_from_the_settings() -> None:
    config = uvicorn_config(_settings(keep_alive_timeout_s=7), _app)
    assert config.http.limits == ConnectionLimits(4096, 20, 1.0, 1.0)  # type: ignore[union-attr]
    assert config.timeout_keep_alive == 7
    assert config.ws == "none" and config.server_header is False and config.proxy_headers is False
