"""Decisions: anything but a clear allow denies; the cache is keyed on the whole input."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from sovstack.gateway.authz import PolicyClient
from sovstack.gateway.endpoints import parse_opa_url
from sovstack.gateway.errors import Unavailable


class FakeOpa(PolicyClient):
    """The policy client with OPA's HTTP answer faked (a transport fake, nothing more)."""

    def __init__(self, answers: list[Any], ttl: float = 0.0) -> None:
        super().__init__(
            parse_opa_url("http://127.0.0.1:1"),
            "sovstack/decision",
            "sovstack/visible_models",
            0.5,
            ttl,
        )
        self.answers = answers
        self.calls = 0

    async def _query(
        self, path: str, input_: dict[str, Any], params: dict[str, bool] | None = None
    ) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise Unavailable("down", code="policy_unavailable") from answer
        return dict(answer)


ALLOW = {
    "result": {"allow": True, "reasons": ["ok"], "obligations": {"max_tokens": 64},
               "allowed_replicas": ["gpu-1"]},
    "provenance": {"bundles": {"sovstack": {"revision": "0.1.0+abc"}}},
}  # fmt: skip


async def test_allow_carries_reasons_obligations_replicas_and_revision() -> None:
    decision = await FakeOpa([ALLOW]).decide({"model": "m"})
    assert decision.allow and decision.allowed_replicas == ("gpu-1",)
    assert decision.max_tokens_cap == 64 and not decision.store_content
    assert decision.revision == "0.1.0+abc"


@pytest.mark.parametrize(
    "answer",
    [{}, {"result": None}, {"result": {"allow": "yes"}}, {"result": []},
     {"result": {"reasons": ["no allow key"]}}],
)  # fmt: skip
async def test_deny_an_undefined_or_malformed_result(answer: dict[str, Any]) -> None:
    decision = await FakeOpa([answer]).decide({})
    assert decision.allow is False
    assert decision.reasons


async def test_deny_with_503_when_opa_fails() -> None:
    with pytest.raises(Unavailable):
        await FakeOpa([aiohttp.ClientConnectionError()]).decide({})


async def test_the_cache_is_off_by_default() -> None:
    opa = FakeOpa([ALLOW])
    await opa.decide({"a": 1})
    await opa.decide({"a": 1})
    assert opa.calls == 2


async def test_the_cache_reuses_a_decision_only_for_the_identical_input() -> None:
    opa = FakeOpa([ALLOW], ttl=60)
    await opa.decide({"subject": {"roles": ["operator"]}, "model": "m"})
    await opa.decide({"model": "m", "subject": {"roles": ["operator"]}})  # same, reordered
    assert opa.calls == 1
    await opa.decide({"subject": {"roles": ["engineer"]}, "model": "m"})
    assert opa.calls == 2


class SlowOpa(FakeOpa):
    """Answers only when released, so that requests can pile up behind one question."""

    def __init__(self, answers: list[Any], ttl: float) -> None:
        super().__init__(answers, ttl)
        self.release = asyncio.Event()

    async def _query(
        self, path: str, input_: dict[str, Any], params: dict[str, bool] | None = None
    ) -> dict[str, Any]:
        await self.release.wait()
        return await super()._query(path, input_, params)


async def test_identical_requests_in_flight_share_one_question() -> None:
    opa = SlowOpa([ALLOW], ttl=60)
    waiting = [asyncio.create_task(opa.decide({"model": "m"})) for _ in range(20)]
    other = asyncio.create_task(opa.decide({"model": "n"}))
    await asyncio.sleep(0)
    opa.release.set()
    decisions = await asyncio.gather(*waiting, other)
    assert all(d.allow for d in decisions)
    assert opa.calls == 2  # one for "m", one for "n"


async def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    opa = SlowOpa([aiohttp.ClientConnectionError(), ALLOW], ttl=60)
    waiting = [asyncio.create_task(opa.decide({"model": "m"})) for _ in range(5)]
    await asyncio.sleep(0)
    opa.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, Unavailable) for o in outcomes)
    assert (await opa.decide({"model": "m"})).allow  # asked again, not the cached failure
    assert opa.calls == 2


async def test_a_caller_that_goes_away_does_not_fail_the_others() -> None:
    opa = SlowOpa([ALLOW], ttl=60)
    first = asyncio.create_task(opa.decide({"model": "m"}))
    second = asyncio.create_task(opa.decide({"model": "m"}))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    opa.release.set()
    assert (await second).allow
    assert first.cancelled()
    assert opa.calls == 1
