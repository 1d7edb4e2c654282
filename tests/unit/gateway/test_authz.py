"""Decisions: anything but a clear allow denies; the cache is keyed on the whole input.

OPA is faked at the transport: an HTTP server that answers as OPA does, or
fails, or is slow, on loopback TCP or on a Unix socket (every test runs on
both). The real :class:`PolicyClient` talks to it over that socket, so the
code that turns a connection error, an HTTP error, a body that is not JSON or
a timeout into :class:`Unavailable` is what runs.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sovstack.core import services
from sovstack.gateway.authz import PolicyClient
from sovstack.gateway.endpoints import parse_opa_url
from sovstack.gateway.errors import Unavailable

DECISION_PATH, MODELS_PATH = "sovstack/decision", "sovstack/visible_models"
DECISION, MODELS = f"/v1/data/{DECISION_PATH}", f"/v1/data/{MODELS_PATH}"
TIMEOUT_S = 0.3

Answer = dict[str, Any] | Callable[[], web.StreamResponse]


@dataclass
class Opa:
    """What the fake OPA answers, in turn (the last answer repeats), and what it was asked."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    # The connection each question came on (held, so no two share an id()).
    connections: list[object] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    was_asked: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.release.set()

    def client(self, ttl: float = 0.0, decision_path: str = DECISION_PATH) -> PolicyClient:
        return PolicyClient(
            parse_opa_url(self.url), decision_path, MODELS_PATH, TIMEOUT_S, cache_ttl_s=ttl
        )


@pytest.fixture(params=["tcp", "unix"])
async def opa(request: pytest.FixtureRequest) -> AsyncIterator[Opa]:
    fake = Opa("")

    async def answer(request: web.Request) -> web.StreamResponse:
        fake.asked.append(request.path)
        fake.bodies.append(await request.json() if request.can_read_body else None)
        fake.queries.append(dict(request.query))
        fake.connections.append(request.transport)
        fake.was_asked.set()
        await fake.release.wait()
        reply = fake.answers[min(len(fake.asked), len(fake.answers)) - 1]
        if callable(reply):
            return reply()
        # OPA names the bundles only when asked (it reads the flag case-blind).
        if request.query.get("provenance", "").lower() != "true":
            reply = {k: v for k, v in reply.items() if k != "provenance"}
        return web.json_response(reply)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    # A short folder of its own: pytest's tmp_path can outgrow a socket path's 107 bytes.
    with tempfile.TemporaryDirectory(prefix="opa-") as folder:
        if request.param == "unix":
            site: web.BaseSite = web.UnixSite(runner, str(Path(folder) / "opa.sock"))
            await site.start()
            fake.url = f"unix://{folder}/opa.sock"
        else:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield fake
        finally:
            fake.release.set()
            await runner.cleanup()


async def decide(opa: Opa, input_: dict[str, Any], ttl: float = 0.0) -> Any:
    client = opa.client(ttl)
    async with client.opened():
        return await client.decide(input_)


ALLOW = {
    "result": {"allow": True, "reasons": ["ok"], "obligations": {"max_tokens": 64},
               "allowed_replicas": ["gpu-1"], "data_classification": "internal"},
    "provenance": {"bundles": {"sovstack": {"revision": "0.1.0+abc"}}},
}  # fmt: skip


async def test_allow_carries_reasons_obligations_replicas_and_revision(opa: Opa) -> None:
    opa.answers = [ALLOW]
    decision = await decide(opa, {"model": "m", "subject": {"roles": ["operator"]}})
    assert decision.allow and decision.allowed_replicas == ("gpu-1",)
    assert decision.reasons == ("ok",)
    assert decision.max_tokens_cap == 64 and not decision.store_content
    assert decision.revision == "0.1.0+abc"
    assert decision.data_classification == "internal"
    assert opa.asked == [DECISION]
    assert opa.bodies == [{"input": {"model": "m", "subject": {"roles": ["operator"]}}}]
    assert [{k: v.lower() for k, v in q.items()} for q in opa.queries] == [{"provenance": "true"}]


async def test_the_whole_decision_path_is_asked(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client(decision_path="site/plant_a/decision")
    async with client.opened():
        assert (await client.decide({"model": "m"})).allow
    assert opa.asked == ["/v1/data/site/plant_a/decision"]


async def test_odd_fields_of_an_allow_are_dropped_not_trusted(opa: Opa) -> None:
    opa.answers = [{
        "result": {"allow": True, "reasons": "ok", "obligations": [1], "allowed_replicas": "a",
                   "data_classification": ["internal"]},
        "provenance": {"bundles": {"a": "junk", "b": {"revision": "r2"}, "c": {},
                                   "d": {"revision": "r1"}}},
    }]  # fmt: skip
    decision = await decide(opa, {})
    assert decision.allow
    assert (decision.reasons, decision.obligations, decision.allowed_replicas) == ((), {}, ())
    assert decision.data_classification is None
    assert decision.revision == "r1,r2"


@pytest.mark.parametrize(
    "answer",
    [{}, {"result": None}, {"result": {"allow": "yes"}}, {"result": []},
     {"result": {"reasons": ["no allow key"]}}, {"result": {"allow": 1}}],
)  # fmt: skip
async def test_deny_an_undefined_or_malformed_result(opa: Opa, answer: dict[str, Any]) -> None:
    opa.answers = [answer]
    decision = await decide(opa, {})
    assert decision.allow is False
    assert decision.reasons


def _status(code: int) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response({"code": "internal_error"}, status=code)


def _not_json() -> web.StreamResponse:
    return web.Response(body=b"{not json", content_type="application/json")


def _html() -> web.StreamResponse:
    return web.Response(text="<html>proxy error</html>", content_type="text/html")


@pytest.mark.parametrize(
    "failure", [_status(500), _status(503), _status(404), _not_json, _html],
    ids=["500", "503", "404", "body-not-json", "not-json-content-type"],
)  # fmt: skip
async def test_an_opa_that_fails_is_unavailable_not_a_decision(
    opa: Opa, failure: Callable[[], web.StreamResponse]
) -> None:
    opa.answers = [failure]
    with pytest.raises(Unavailable) as raised:
        await decide(opa, {"model": "m"})
    assert raised.value.code == "policy_unavailable"
    assert raised.value.status == 503 and raised.value.retry_after == 1
    assert opa.asked == [DECISION]  # asked once: no retries


async def test_an_opa_that_is_not_there_is_unavailable() -> None:
    for nowhere in (f"http://127.0.0.1:{services.free_port()}", "unix:///nonexistent/opa.sock"):
        with pytest.raises(Unavailable) as raised:
            await decide(Opa(nowhere), {"model": "m"})
        assert raised.value.code == "policy_unavailable"


async def test_a_socket_file_nobody_listens_on_is_unavailable() -> None:
    # What a killed OPA leaves behind: the socket file, with nothing accepting on it.
    with tempfile.TemporaryDirectory(prefix="opa-") as folder:
        stale = Path(folder) / "opa.sock"
        with socket.socket(socket.AF_UNIX) as bound:
            bound.bind(str(stale))
            with pytest.raises(Unavailable) as raised:
                await decide(Opa(f"unix://{stale}"), {"model": "m"})
    assert raised.value.code == "policy_unavailable"


async def test_one_connection_is_kept_alive_across_decisions(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client()
    async with client.opened():
        for _ in range(5):
            assert (await client.decide({"model": "m"})).allow
    assert len(opa.asked) == 5
    assert len({id(c) for c in opa.connections}) == 1  # one connection carried all five


async def test_a_slow_opa_is_unavailable_within_the_timeout(opa: Opa) -> None:
    opa.answers = [ALLOW]
    opa.release.clear()  # OPA never answers
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable) as raised:
        await decide(opa, {"model": "m"})
    assert raised.value.code == "policy_unavailable"
    assert asyncio.get_running_loop().time() - started < TIMEOUT_S + 2
    assert opa.asked == [DECISION]


async def test_visible_models_fail_closed_too(opa: Opa) -> None:
    opa.answers = [{"result": ["m", 3, "n"]}, {"result": "m"}, _status(500)]
    client = opa.client()
    async with client.opened():
        assert await client.visible_models({"subject": "s"}) == ["m", "n"]
        assert opa.bodies[0] == {"input": {"subject": "s"}}
        assert await client.visible_models({}) == []
        with pytest.raises(Unavailable):
            await client.visible_models({})
    assert opa.asked == [MODELS] * 3


async def test_health_is_false_for_a_failing_or_slow_opa(opa: Opa) -> None:
    opa.answers = [{}]
    client = opa.client()
    async with client.opened():
        assert await client.healthy()
        opa.answers = [_status(500)]
        assert not await client.healthy()
        opa.release.clear()
        assert not await client.healthy()


async def test_the_cache_is_off_by_default(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client()
    async with client.opened():
        await client.decide({"a": 1})
        await client.decide({"a": 1})
    assert len(opa.asked) == 2


async def test_the_cache_reuses_a_decision_only_for_the_identical_input(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client(ttl=60)
    async with client.opened():
        await client.decide({"subject": {"roles": ["operator"]}, "model": "m"})
        await client.decide({"model": "m", "subject": {"roles": ["operator"]}})  # reordered
        assert len(opa.asked) == 1
        await client.decide({"subject": {"roles": ["engineer"]}, "model": "m"})
        assert len(opa.asked) == 2


async def test_the_cache_key_leaves_out_the_usage_but_opa_is_sent_it(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client(ttl=60)
    used = [{"day": {"period": "2026-12-07", "requests": n}} for n in (1, 2)]
    async with client.opened():
        await client.decide({"model": "m", "usage": used[0]})
        await client.decide({"model": "m", "usage": used[1]})  # usage moved: same decision
        assert len(opa.asked) == 1
        await client.decide({"model": "n", "usage": used[1]})
    assert len(opa.asked) == 2
    assert opa.bodies[-1] == {"input": {"model": "n", "usage": used[1]}}


async def test_a_cached_decision_expires(opa: Opa) -> None:
    opa.answers = [ALLOW]
    client = opa.client(ttl=0.5)
    async with client.opened():
        await client.decide({"model": "m"})
        await client.decide({"model": "m"})
        assert len(opa.asked) == 1
        await asyncio.sleep(0.6)
        await client.decide({"model": "m"})
    assert len(opa.asked) == 2
    assert opa.bodies[-1] == {"input": {"model": "m"}}


async def test_without_a_cache_identical_requests_in_flight_each_ask(opa: Opa) -> None:
    opa.answers = [ALLOW]
    opa.release.clear()
    client = opa.client()
    async with client.opened():
        waiting = [asyncio.create_task(client.decide({"model": "m"})) for _ in range(3)]
        await _asked(opa, 3)
        opa.release.set()
        assert all(d.allow for d in await asyncio.gather(*waiting))


async def _asked(opa: Opa, count: int) -> None:
    """Wait until OPA holds ``count`` questions (the thing the caller then asserts on)."""
    async with asyncio.timeout(5):
        while len(opa.asked) < count:
            opa.was_asked.clear()
            await opa.was_asked.wait()


async def test_identical_requests_in_flight_share_one_question(opa: Opa) -> None:
    opa.answers = [ALLOW]
    opa.release.clear()
    client = opa.client(ttl=60)
    async with client.opened():
        waiting = [asyncio.create_task(client.decide({"model": "m"})) for _ in range(20)]
        other = asyncio.create_task(client.decide({"model": "n"}))
        await _asked(opa, 2)
        opa.release.set()
        decisions = await asyncio.gather(*waiting, other)
    assert all(d.allow for d in decisions)
    assert len(opa.asked) == 2  # one for "m", one for "n"


async def test_a_failure_reaches_every_waiter_and_is_not_cached(opa: Opa) -> None:
    opa.answers = [_status(500), ALLOW]
    opa.release.clear()
    client = opa.client(ttl=60)
    async with client.opened():
        waiting = [asyncio.create_task(client.decide({"model": "m"})) for _ in range(5)]
        await _asked(opa, 1)
        opa.release.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, Unavailable) for o in outcomes)
        assert (await client.decide({"model": "m"})).allow  # asked again, not cached
    assert len(opa.asked) == 2


async def test_a_caller_that_goes_away_does_not_fail_the_others(opa: Opa) -> None:
    opa.answers = [ALLOW]
    opa.release.clear()
    client = opa.client(ttl=60)
    async with client.opened():
        first = asyncio.create_task(client.decide({"model": "m"}))
        second = asyncio.create_task(client.decide({"model": "m"}))
        await _asked(opa, 1)
        first.cancel()
        await asyncio.sleep(0)
        opa.release.set()
        assert (await second).allow
        assert first.cancelled()
    assert len(opa.asked) == 1
