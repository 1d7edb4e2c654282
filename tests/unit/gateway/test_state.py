"""The gateway's state opens whole, asks OPA where opa_url says, and leaks nothing on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from sovstack.audit import AuditLog, LogStateError, generate_signing_key, load_signing_key
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.gateway.auditing import Auditor, RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision, PolicyClient
from sovstack.gateway.config import Settings
from sovstack.gateway.endpoints import parse_opa_url
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.state import GatewayState


@pytest.fixture
async def opa_behind_a_prefix() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering as OPA does, but only under /opa-prefix/; logs paths."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.path == "/opa-prefix/health":
            return web.json_response({})
        if request.path == "/opa-prefix/v1/data/sovstack/decision":
            return web.json_response({"result": {"allow": True, "reasons": ["ok"]}})
        return web.json_response({}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/opa-prefix", seen
    finally:
        await runner.cleanup()


async def test_opa_is_asked_at_the_scheme_host_port_and_path_given(
    opa_behind_a_prefix: tuple[str, list[str]],
) -> None:
    url, seen = opa_behind_a_prefix
    client = PolicyClient(parse_opa_url(url), "sovstack/decision", "sovstack/visible_models", 5.0)
    async with client.opened():
        assert await client.healthy()
        assert (await client.decide({"model": "m"})).allow
    assert seen == ["/opa-prefix/health", "/opa-prefix/v1/data/sovstack/decision"]


def _settings(tmp_path: Path, audit_dir: Path, **more: Any) -> Settings:
    key = tmp_path / "audit.key"
    generate_signing_key(key)
    return Settings(
        oidc_issuer="http://127.0.0.1:1/realms/plant",
        opa_url="http://127.0.0.1:1",
        audit_dir=audit_dir,
        audit_signing_key=key,
        upstreams=[{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}],
        allow_plain_http=True,
        health_interval_s=60.0,
        **more,
    )


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every aiohttp session (the upstreams' and OPA's) and httpx client made, as made."""
    made: list[Any] = []
    for module, name in ((aiohttp, "ClientSession"), (httpx, "AsyncClient")):
        real = getattr(module, name)

        def record(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            made.append(_real(*args, **kwargs))
            return made[-1]

        monkeypatch.setattr(module, name, record)
    return made


def _closed(client: Any) -> bool:
    return bool(client.is_closed if hasattr(client, "is_closed") else client.closed)


async def test_an_unwritable_audit_folder_leaves_no_client_open(
    tmp_path: Path, made: list[Any]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit folder's parent should be")
    settings = _settings(tmp_path, blocker / "audit")
    with pytest.raises(LogStateError, match=r"cannot use .* for the audit log"):
        async with GatewayState.open(settings, Metrics()):
            pytest.fail("the state opened on an unwritable audit folder")
    kinds = sorted(type(c).__name__ for c in made)
    assert kinds == ["AsyncClient", "ClientSession", "ClientSession"]  # upstreams, OPA; JWKS
    assert all(_closed(c) for c in made)


async def test_every_client_is_closed_when_the_gateway_stops(
    tmp_path: Path, made: list[Any]
) -> None:
    async with GatewayState.open(_settings(tmp_path, tmp_path / "audit"), Metrics()) as state:
        assert state.auditor.log.writable() and not any(_closed(c) for c in made)
    assert len(made) == 3 and all(_closed(c) for c in made)


async def test_the_gateway_closes_what_a_killed_one_left_in_flight_when_it_starts(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, tmp_path / "audit")
    key = load_signing_key(settings.audit_signing_key)
    log = AuditLog.open(settings.audit_dir, key, settings.audit_origin)
    ctx = RequestContext("in-flight", "/v1/completions")
    ctx.subject = Subject("alice", "line-monitor", ("operator",), "plant-a", None)
    ctx.decision = Decision(True, ("ok",))
    await Auditor(log, None).decided(ctx)
    log.close()
    async with GatewayState.open(settings, Metrics()):
        pass
    ends = [
        decode_entry(data)[2] for _, data, _ in Scanner(settings.audit_dir)
        if decode_entry(data)[2]["event"] == "aborted"
    ]  # fmt: skip
    assert [(r["request_id"], r["error"]) for r in ends] == [("in-flight", "gateway_restart")]


@pytest.fixture
async def keycloak_down() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback JWKS URL that answers 503, like a Keycloak still starting; logs each fetch."""
    fetched: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/certs", fetched
    finally:
        await runner.cleanup()


async def test_a_readyz_flood_fetches_the_jwks_at_most_once_per_floor(
    tmp_path: Path, keycloak_down: tuple[str, list[str]]
) -> None:
    url, fetched = keycloak_down
    settings = _settings(tmp_path, tmp_path / "audit", oidc_jwks_url=url,
                         jwks_refetch_floor_s=60.0)  # fmt: skip
    async with GatewayState.open(settings, Metrics()) as state:
        assert fetched == ["/certs"]  # at start-up
        checks = [await state.readiness() for _ in range(50)]
        assert all(c["jwks"] is False for c in checks)
        assert fetched == ["/certs"] * 2  # the first /readyz fetched again; the rest waited


async def test_the_jwks_is_refreshed_on_schedule_until_the_gateway_stops(
    tmp_path: Path, keycloak_down: tuple[str, list[str]]
) -> None:
    url, fetched = keycloak_down
    settings = _settings(tmp_path, tmp_path / "audit", oidc_jwks_url=url,
                         jwks_refresh_interval_s=0.05)  # fmt: skip
    async with GatewayState.open(settings, Metrics()):
        deadline = asyncio.get_running_loop().time() + 5
        while len(fetched) < 4:  # start-up, then three scheduled refreshes
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "jwks-refresh"]
    stopped_at = len(fetched)
    await asyncio.sleep(0.3)
    assert len(fetched) == stopped_at
