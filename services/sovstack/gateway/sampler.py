"""Read each replica's energy counter in the background; never on the request path.

A replica configured with an ``energy_url`` (the energy agent beside it,
``sovstack energy-agent``, sovstack/energyagent/) is read every
``energy_sample_interval_s``, all replicas at once, and each reading goes to
the replica's meter (gateway/energy.py). A replica without one is never read:
its requests' energy is null, "the replica's node has no energy counter". An
agent that does not answer in time, or answers without a counter, leaves the
requests then in flight unmeasured, with the reason in their end records.

The agent answers ``GET <energy_url>`` with ``{"energy_mj": <int>}`` (the
node's GPUs' total-energy counters summed, in millijoules) or
``{"energy_mj": null, "reason": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from sovstack.gateway.upstreams import ReplicaState

__all__ = ["EnergySampler", "reading"]

_REASON_LIMIT = 200


def reading(answer: Any) -> tuple[int | None, str | None]:
    """``(millijoules, None)`` from an agent's answer, or ``(None, why not)``."""
    if not isinstance(answer, dict):
        return None, "the energy agent answered something else than a reading"
    value = answer.get("energy_mj")
    if type(value) is int and value >= 0:
        return value, None
    reason = answer.get("reason")
    if value is None and isinstance(reason, str) and reason:
        return None, f"energy agent: {reason[:_REASON_LIMIT]}"
    return None, "the energy agent answered something else than a reading"


class EnergySampler:
    """One background task reading every replica that has an energy agent."""

    def __init__(
        self, replicas: list[ReplicaState], client: aiohttp.ClientSession, interval_s: float
    ) -> None:
        self._replicas = [r for r in replicas if r.spec.energy_url]
        self._client = client
        self._interval = interval_s
        self._timeout = aiohttp.ClientTimeout(total=max(interval_s, 0.2))
        self._task: asyncio.Task[None] | None = None

    async def read(self, replica: ReplicaState) -> None:
        url = replica.spec.energy_url
        assert url is not None  # noqa: S101 -- only replicas with an agent are kept
        try:
            async with self._client.get(url, timeout=self._timeout) as response:
                if response.status != 200:
                    replica.meter.sample(None, f"the energy agent answered {response.status}")
                    return
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            replica.meter.sample(None, "the energy agent did not answer")
            return
        replica.meter.sample(*reading(answer))

    async def read_all(self) -> None:
        await asyncio.gather(*(self.read(r) for r in self._replicas))

    async def _loop(self) -> None:
        while True:
            await self.read_all()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._replicas:
            self._task = asyncio.create_task(self._loop(), name="energy-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
