"""Each way a replica can answer, or fail to, ends an accepted request with exactly one record.

The replicas are loopback servers (a transport); the forwarding code, the
pool, the auditor and the audit log are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import socket
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, decrypt_content, generate_site_key, load_site_key
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.gateway.auditing import Auditor, RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.config import Replica
from sovstack.gateway.energy import NO_COUNTER
from sovstack.gateway.errors import GatewayError
from sovstack.gateway.forwarding import Outgoing, forward
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.state import GatewayState
from sovstack.gateway.upstreams import Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "Stop pump P-7?"}],
    "tools": [{"type": "function", "function": {"name": "stop_pump"}}],
    "max_tokens": 8,
}


async def _raw_server(handle: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    await asyncio.sleep(30)  # takes the request, as vLLM does a long generation


async def _hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.close()  # as a replica that crashed mid-request


class Harness:
    """A pool of one replica at ``url``, a real auditor on a real log, and the records it holds."""

    def __init__(self, tmp_path: Path, session: aiohttp.ClientSession, url: str) -> None:
        generate_site_key(tmp_path / "site.key")
        self.site_key = load_site_key(tmp_path / "site.key")
        self.log = AuditLog.open(tmp_path / "audit", Ed25519PrivateKey.generate(), "test")
        self.pool = Pool([Replica(id="gpu-1", model="m", url=url, site="plant-a")], session, 60)
        self.replica = self.pool.replicas[0]
        self.replica.healthy = True
        self.metrics = Metrics()
        auditor = Auditor(self.log, self.site_key, observers=(self.metrics.observe,),
                          settle=self.pool.settle)  # fmt: skip
        self.state = cast(GatewayState, types.SimpleNamespace(
            pool=self.pool, upstream=session, metrics=self.metrics, auditor=auditor,
            sha256=GatewayState.sha256, count_tokens=lambda ctx, usage: None,
        ))  # fmt: skip

    def ctx(self, keep: bool = False) -> RequestContext:
        ctx = RequestContext("r1", "/v1/chat/completions", model="m")
        ctx.subject = Subject("alice", "line-monitor", ("operator",), "plant-a", "internal")
        ctx.decision = Decision(True, ("ok",), {"store_content": keep}, ("gpu-1",))
        return ctx

    def records(self) -> list[dict[str, Any]]:
        return [decode_entry(data)[2] for _, data, _ in Scanner(self.log.directory)]

    def kept(self, record: dict[str, Any], part: str) -> str:
        return decrypt_content(dict([self.site_key]), record["content"][part])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=None, connect=1.0, sock_read=0.5)
    async with aiohttp.ClientSession(timeout=timeout) as opened:
        yield opened


@pytest.mark.parametrize(
    ("handler", "status", "code", "error"),
    [
        (_never_answers, 504, "upstream_timeout", "upstream read timed out"),
        (_hangs_up, 502, "upstream", "upstream failed: ServerDisconnectedError"),
    ],
    ids=["read-timeout", "disconnect"],
)
async def test_a_replica_that_takes_the_request_but_does_not_answer(
    tmp_path: Path, session: aiohttp.ClientSession, handler: Handler, status: int, code: str,
    error: str,
) -> None:  # fmt: skip
    server, url = await _raw_server(handler)
    h = Harness(tmp_path, session, url)
    ctx = h.ctx()
    with pytest.raises(GatewayError) as raised:
        await forward(h.state, ctx, ("gpu-1",), Outgoing(BODY, False, False))
    server.close()
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.body()["error"]["type"] in {"timeout_error", "upstream_error"}
    [end] = h.records()
    assert (end["event"], end["status"], end["error"]) == ("error", status, error)
    assert end["replica"] == "gpu-1"
    assert not h.replica.healthy and h.replica.outstanding == 0
    h.log.close()


async def test_a_refused_connection_tries_no_one_else_and_records_503(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    h = Harness(tmp_path, session, url)
    with pytest.raises(GatewayError) as raised:
        await forward(h.state, h.ctx(), ("gpu-1",), Outgoing(BODY, False, False))
    assert (raised.value.status, raised.value.code) == (503, "no_replica")
    assert [(r["event"], r["status"]) for r in h.records()] == [("error", 503)]
    assert not h.replica.healthy
    h.log.close()


async def _vllm(answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url(runner: web.AppRunner) -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


REPLY = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None,
         "reasoning_content": "P-7 overheats", "tool_calls": [{"id": "c", "type": "function",
         "function": {"name": "stop_pump", "arguments": "{\"pump\": \"P-7\"}"}}]}}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 4}}  # fmt: skip


async def _run_background(response: Any) -> bytes:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_kept_content_is_the_whole_body_the_model_got_and_all_the_client_got(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    seen: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response(REPLY)

    runner = await _vllm(answer)
    h = Harness(tmp_path, session, _url(runner))
    response = await forward(h.state, h.ctx(keep=True), ("gpu-1",), Outgoing(BODY, False, False))
    got = await _run_background(response)
    await runner.cleanup()
    [end] = h.records()
    assert end["event"] == "completed" and end["tokens"] == {"prompt": 9, "completion": 4}
    assert json.loads(h.kept(end, "prompt")) == BODY == json.loads(seen[0])
    assert h.kept(end, "prompt").encode() == seen[0]  # exactly the bytes the model received
    assert h.kept(end, "completion").encode() == got
    assert json.loads(got) == REPLY
    h.log.close()


def _sse(*payloads: object) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)


STREAM = _sse(
    {"choices": [{"index": 0, "delta": {"reasoning_content": "P-7 overheats"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c", "type":
     "function", "function": {"name": "stop_pump", "arguments": "{\"pump\": \"P-7\"}"}}]}}]},
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
) + b"data: [DONE]\n\n"  # fmt: skip


async def _streams(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for part in STREAM.split(b"\n\n")[:-1]:
        await response.write(part + b"\n\n")
    await response.write_eof()
    return response


async def test_a_kept_stream_is_every_event_the_client_got(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    runner = await _vllm(_streams)
    h = Harness(tmp_path, session, _url(runner))
    out = Outgoing(BODY | {"stream": True}, True, False)
    got = await _run_background(await forward(h.state, h.ctx(keep=True), ("gpu-1",), out))
    await runner.cleanup()
    [end] = h.records()
    assert end["event"] == "completed" and end["tokens"] == {"prompt": 9, "completion": 4}
    kept = h.kept(end, "completion")
    assert kept.encode() == got and b"usage" not in got  # the client did not ask for usage
    assert "P-7 overheats" in kept and '{\\"pump\\": \\"P-7\\"}' in kept
    assert h.replica.outstanding == 0
    h.log.close()


async def test_a_stream_whose_client_left_before_the_first_byte_still_ends(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    runner = await _vllm(_streams)
    h = Harness(tmp_path, session, _url(runner))
    response = await forward(h.state, h.ctx(), ("gpu-1",), Outgoing(BODY, True, False))

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the client is gone")

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with pytest.raises(Exception):  # noqa: B017 -- Starlette's ClientDisconnect or the OSError
        await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    await runner.cleanup()
    assert [(r["event"], r["status"]) for r in h.records()] == [("aborted", 200)]
    assert h.replica.outstanding == 0
    h.log.close()


async def test_a_failure_nothing_foresaw_still_ends_the_request(tmp_path: Path) -> None:
    session = aiohttp.ClientSession()
    await session.close()  # using it now raises RuntimeError, not a ClientError
    h = Harness(tmp_path, session, "http://127.0.0.1:9")
    with pytest.raises(RuntimeError):
        await forward(h.state, h.ctx(), ("gpu-1",), Outgoing(BODY, False, False))
    [end] = h.records()
    assert (end["event"], end["status"], end["error"]) == (
        "error",
        500,
        "gateway failed: RuntimeError",
    )
    assert h.replica.outstanding == 0
    h.log.close()


# --- usage: time on the replica, GPU-seconds and energy in the end record and the metrics

WHO = {"client": "line-monitor", "model": "m", "site": "plant-a"}


def _value(h: Harness, name: str, **labels: str) -> float | None:
    return h.metrics.registry.get_sample_value(name, labels)


async def _served(h: Harness) -> dict[str, Any]:
    response = await forward(h.state, h.ctx(), ("gpu-1",), Outgoing(BODY, False, False))
    await _run_background(response)
    [end] = h.records()
    return end


async def _answer(request: web.Request) -> web.Response:
    return web.json_response(REPLY)


async def test_without_an_energy_counter_energy_is_null_with_the_reason_and_counted(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    runner = await _vllm(_answer)
    h = Harness(tmp_path, session, _url(runner))
    end = await _served(h)
    await runner.cleanup()
    assert isinstance(end["replica_us"], int) and end["replica_us"] > 0
    assert end["gpu_us"] == end["replica_us"]  # alone on the replica: all its busy time
    assert (end["energy_mj"], end["energy_unmeasured"]) == (None, NO_COUNTER)
    assert _value(h, "sovstack_client_tokens_total", **WHO, kind="prompt") == 9
    assert _value(h, "sovstack_client_tokens_total", **WHO, kind="completion") == 4
    assert _value(h, "sovstack_gpu_seconds_total", **WHO) == end["replica_us"] / 1e6
    assert _value(h, "sovstack_replica_seconds_total", **WHO) == end["replica_us"] / 1e6
    assert _value(h, "sovstack_energy_unmeasured_requests_total", **WHO) == 1
    assert _value(h, "sovstack_energy_joules_total", **WHO) is None
    h.log.close()


async def test_with_a_counter_the_request_gets_the_energy_measured_while_it_ran(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    meter_ready: list[object] = []

    async def answer(request: web.Request) -> web.Response:
        # While the request is on the replica the counter moves by 3 J.
        h.replica.meter.sample(13_000)
        meter_ready.append(True)
        return web.json_response(REPLY)

    runner = await _vllm(answer)
    h = Harness(tmp_path, session, _url(runner))
    h.replica.meter.sample(10_000)  # the sampler's reading before the request
    end = await _served(h)
    await runner.cleanup()
    assert meter_ready
    assert isinstance(end["energy_mj"], int) and end["energy_mj"] >= 3_000
    assert end["energy_unmeasured"] is None
    joules = _value(h, "sovstack_energy_joules_total", **WHO)
    assert joules == end["energy_mj"] / 1000
    assert _value(h, "sovstack_energy_unmeasured_requests_total", **WHO) is None
    h.log.close()
