"""The energy sampler reads each replica's agent in the background and feeds its meter.

The agent is a loopback server answering readings the test sets (a transport); the
sampler, the pool and the meters are the real ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sovstack.gateway.config import Replica
from sovstack.gateway.energy import NO_COUNTER
from sovstack.gateway.sampler import EnergySampler, reading
from sovstack.gateway.upstreams import Pool


@pytest.fixture
async def agent() -> AsyncIterator[tuple[str, list[Any]]]:
    """An energy agent whose next answers are the list's items (a status int: that status)."""
    answers: list[Any] = []

    async def energy(request: web.Request) -> web.Response:
        answer = answers.pop(0)
        if isinstance(answer, int):
            return web.Response(status=answer)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/energy", energy)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/energy", answers
    await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"energy_mj": 1234}, (1234, None)),
        ({"energy_mj": None, "reason": "NVML: no GPU"}, (None, "energy agent: NVML: no GPU")),
        ({"energy_mj": -1}, (None, "the energy agent answered something else than a reading")),
        ({"energy_mj": 1.5}, (None, "the energy agent answered something else than a reading")),
        ([1], (None, "the energy agent answered something else than a reading")),
    ],
)
def test_an_answer_is_a_reading_or_a_reason(answer: Any, expected: tuple[Any, Any]) -> None:
    assert reading(answer) == expected


async def test_readings_go_to_the_meter_of_the_replica_whose_agent_gave_them(
    agent: tuple[str, list[Any]],
) -> None:
    url, answers = agent
    replicas = [
        Replica(id="gpu-1", model="m", url="http://127.0.0.1:9", site="a", energy_url=url),
        Replica(id="cpu-1", model="m", url="http://127.0.0.1:9", site="a"),
    ]
    async with aiohttp.ClientSession() as client:
        pool = Pool(replicas, client, 60)
        sampler = EnergySampler(pool.replicas, client, 0.5)
        answers += [{"energy_mj": 1_000}, {"energy_mj": 4_000}, 503, {"energy_mj": 5_000}]
        await sampler.read_all()
        for replica in pool.replicas:
            pool.acquire(replica, "r1")
        await sampler.read_all()  # 3 J while r1 ran on gpu-1
        for replica in pool.replicas:
            pool.release(replica, "r1")
        gpu, cpu = pool.settle("gpu-1", "r1", 10), pool.settle("cpu-1", "r1", 10)
        assert gpu is not None and gpu.energy_mj is not None and gpu.energy_mj >= 3_000
        assert cpu is not None and (cpu.energy_mj, cpu.energy_unmeasured) == (None, NO_COUNTER)

        pool.acquire(pool.replicas[0], "r2")
        await sampler.read_all()  # the agent fails: 503
        pool.release(pool.replicas[0], "r2")
        failed = pool.settle("gpu-1", "r2", 1)
        assert failed is not None and failed.energy_mj is None
        assert failed.energy_unmeasured == "the energy agent answered 503"

        await sampler.read_all()  # a reading again, but no earlier one to measure from
        await sampler.stop()
    assert answers == []


async def test_the_sampler_never_reads_a_replica_without_an_agent() -> None:
    async with aiohttp.ClientSession() as client:
        pool = Pool([Replica(id="cpu-1", model="m", url="http://127.0.0.1:9", site="a")],
                    client, 60)  # fmt: skip
        sampler = EnergySampler(pool.replicas, client, 0.5)
        sampler.start()
        await sampler.stop()
        pool.acquire(pool.replicas[0], "r")
        share = pool.settle("cpu-1", "r", 1)
    assert share is not None and share.energy_unmeasured == NO_COUNTER
