"""Each replica's vLLM API key goes with every probe and request, read once at start."""

from __future__ import annotations

import socket
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web

from sovstack.core.errors import KeyFileError
from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.config import Replica
from sovstack.gateway.forwarding import open_upstream  # the step that sends to a replica
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.upstreams import Pool

KEY = "k3y-for-gpu-1"


@asynccontextmanager
async def _replica_requiring(key: str) -> AsyncIterator[tuple[str, list[str | None]]]:
    """A loopback server that, like vLLM with --api-key, refuses a missing or wrong key."""
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        seen.append(auth)
        if auth != f"Bearer {key}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def vllm_with_key() -> AsyncIterator[tuple[str, list[str | None]]]:
    async with _replica_requiring(KEY) as served:
        yield served


def _key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "gpu-1.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def _replica(url: str, key_file: Path | None) -> Replica:
    return Replica(id="gpu-1", model="m", url=url, site="plant-a", api_key_file=key_file)


async def test_probe_and_request_carry_the_key(
    vllm_with_key: tuple[str, list[str | None]], tmp_path: Path
) -> None:
    url, seen = vllm_with_key
    async with aiohttp.ClientSession() as client:
        pool = Pool([_replica(url, _key_file(tmp_path, KEY + "\n"))], client, 60.0)
        await pool.probe_all()
        assert pool.any_healthy()
        state = types.SimpleNamespace(pool=pool, upstream=client, metrics=Metrics())
        ctx = RequestContext(request_id="r1", route="/v1/chat/completions", model="m")
        response, _ = await open_upstream(cast(Any, state), ctx, ("gpu-1",), b'{"model":"m"}')
        assert response.status == 200
        response.release()
    assert seen == [f"Bearer {KEY}", f"Bearer {KEY}"]


async def test_without_the_key_the_replica_refuses_and_is_not_healthy(
    vllm_with_key: tuple[str, list[str | None]],
) -> None:
    url, seen = vllm_with_key
    async with aiohttp.ClientSession() as client:
        pool = Pool([_replica(url, None)], client, 60.0)
        await pool.probe_all()
        assert not pool.any_healthy()
    assert seen == [None]


@pytest.mark.parametrize(("text", "mode"), [("", 0o600), ("a b", 0o600), (KEY, 0o640)])
def test_an_unusable_key_file_refuses_start(tmp_path: Path, text: str, mode: int) -> None:
    replica = _replica("http://127.0.0.1:9", _key_file(tmp_path, text, mode))
    with pytest.raises(KeyFileError, match="gpu-1"):
        Pool([replica], cast(Any, None), 60.0)


def test_a_missing_key_file_refuses_start(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        Pool([_replica("http://127.0.0.1:9", tmp_path / "none")], cast(Any, None), 60.0)


async def test_each_replica_gets_its_own_key_and_no_other(tmp_path: Path) -> None:
    keys = {"gpu-1": "key-of-gpu-1", "gpu-2": "key-of-gpu-2"}
    async with (
        _replica_requiring(keys["gpu-1"]) as (url_1, seen_1),
        _replica_requiring(keys["gpu-2"]) as (url_2, seen_2),
        aiohttp.ClientSession() as client,
    ):
        replicas = []
        for (rid, key), url in zip(keys.items(), (url_1, url_2), strict=True):
            key_file = tmp_path / f"{rid}.key"
            key_file.write_text(key)
            key_file.chmod(0o600)
            replicas.append(Replica(id=rid, model="m", url=url, site="plant-a",
                                    api_key_file=key_file))  # fmt: skip
        pool = Pool(replicas, client, 60.0)
        await pool.probe_all()
        assert [r.healthy for r in pool.replicas] == [True, True]
        state = types.SimpleNamespace(pool=pool, upstream=client, metrics=Metrics())
        for rid in keys:
            ctx = RequestContext(request_id=rid, route="/v1/chat/completions", model="m")
            response, replica = await open_upstream(cast(Any, state), ctx, (rid,), b"{}")
            assert (response.status, replica.id) == (200, rid)
            response.release()
    assert seen_1 == [f"Bearer {keys['gpu-1']}"] * 2  # the probe, then the request
    assert seen_2 == [f"Bearer {keys['gpu-2']}"] * 2
