"""Server-Timing: the stages done when the headers go out, on success only, when asked.

The middleware runs around a small Starlette app whose routes time their
stages with the gateway's own :class:`Metrics` (so the histograms they feed
are the ones /metrics serves), as gateway/proxy.py and gateway/forwarding.py
do, and answer as the gateway's routes do: JSON, a stream, an error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sovstack.gateway.app import create_app
from sovstack.gateway.config import Settings
from sovstack.gateway.metrics import STAGES, Metrics
from sovstack.gateway.timing import SERVER_TIMING_ORDER, ServerTimingMiddleware

ENTRY = re.compile(r"^([a-z_]+);dur=(\d+\.\d{3})$")


def _app(metrics: Metrics) -> Starlette:
    async def _stages(*names: str) -> None:
        for name in names:
            with metrics.stage[name].time():
                await asyncio.sleep(0.002)

    async def chat(request: Request) -> Response:
        await _stages("authenticate", "authorize", "audit", "upstream_first_byte")
        return JSONResponse({"choices": []})

    async def stream(request: Request) -> Response:
        await _stages("authenticate", "authorize", "audit", "upstream_first_byte")

        async def events() -> AsyncIterator[bytes]:
            yield b"data: {}\n\n"
            await _stages("audit")  # the end record, after the headers went out
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def denied(request: Request) -> Response:
        await _stages("authenticate", "authorize")
        return JSONResponse({"error": {"message": "no", "code": "policy_denied"}}, 403)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    routes = [
        Route("/chat", chat, methods=["POST"]),
        Route("/stream", stream, methods=["POST"]),
        Route("/denied", denied, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, middleware=[])


def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ServerTimingMiddleware(app)), base_url="http://gw"
    )


def _parsed(header: str) -> dict[str, float]:
    found = {}
    for entry in header.split(", "):
        match = ENTRY.match(entry)
        assert match, f"not name;dur=<ms>: {entry!r}"
        found[match.group(1)] = float(match.group(2))
    return found


async def test_a_whole_response_names_every_stage_and_the_total_in_order() -> None:
    metrics = Metrics()
    async with _client(_app(metrics)) as client:
        response = await client.post("/chat")
    assert response.status_code == 200
    timings = _parsed(response.headers["server-timing"])
    assert list(timings) == [*SERVER_TIMING_ORDER, "total"]
    assert all(timings[s] >= 2.0 for s in SERVER_TIMING_ORDER)  # each slept 2 ms: in ms
    assert timings["total"] >= sum(timings[s] for s in SERVER_TIMING_ORDER)
    assert response.json() == {"choices": []}  # the body is untouched


async def test_a_stream_names_the_stages_before_its_first_byte_and_no_total() -> None:
    async with _client(_app(Metrics())) as client:
        response = await client.post("/stream")
    assert response.status_code == 200
    assert list(_parsed(response.headers["server-timing"])) == list(SERVER_TIMING_ORDER)
    assert response.text == "data: {}\n\ndata: [DONE]\n\n"


async def test_an_error_gets_no_header_and_its_body_no_timing() -> None:
    async with _client(_app(Metrics())) as client:
        response = await client.post("/denied")
    assert response.status_code == 403
    assert "server-timing" not in response.headers
    assert "dur=" not in response.text


async def test_a_response_with_no_stage_gets_no_header() -> None:
    async with _client(_app(Metrics())) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200 and "server-timing" not in response.headers


async def test_requests_at_once_each_get_their_own_stages() -> None:
    async with _client(_app(Metrics())) as client:
        answers = await asyncio.gather(*(client.post(p) for p in ["/chat", "/stream"] * 10))
    for path, answer in zip(["/chat", "/stream"] * 10, answers, strict=True):
        timings = _parsed(answer.headers["server-timing"])
        assert ("total" in timings) == (path == "/chat")
        assert list(timings)[: len(SERVER_TIMING_ORDER)] == list(SERVER_TIMING_ORDER)


async def test_the_stages_still_feed_the_histograms() -> None:
    metrics = Metrics()
    async with _client(_app(metrics)) as client:
        await client.post("/chat")
        await client.post("/denied")
    count = {
        s.labels["stage"]: s.value
        for family in metrics.registry.collect() if family.name == "sovstack_stage_seconds"
        for s in family.samples if s.name.endswith("_count")
    }  # fmt: skip
    assert count == {"authenticate": 2, "authorize": 2, "audit": 1, "upstream_first_byte": 1,
                     "total": 0}  # fmt: skip


def test_the_header_names_the_stages_of_the_histogram() -> None:
    assert (*SERVER_TIMING_ORDER, "total") == STAGES


def _settings(tmp_path: Path, **more: object) -> Settings:
    return Settings(
        oidc_issuer="http://127.0.0.1:1/realms/plant",
        opa_url="unix:///run/opa/opa.sock",
        audit_dir=tmp_path / "audit",
        audit_signing_key=tmp_path / "audit.key",
        upstreams=[{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}],
        allow_plain_http=True,
        **more,  # type: ignore[arg-type]  # the settings under test, by name
    )


@pytest.mark.parametrize("on", [False, True])
def test_the_gateway_wires_the_header_only_when_asked(tmp_path: Path, on: bool) -> None:
    settings = _settings(tmp_path, server_timing=on) if on else _settings(tmp_path)
    app = create_app(settings)  # the middleware stack only: the state opens in the lifespan
    layers = [m.cls for m in app.user_middleware]
    assert (ServerTimingMiddleware in layers) is on
