"""The vLLM replicas behind the gateway: health, load, and which one to use.

Each replica serves one model at one site. A background task probes each
replica's ``/health``; a request goes to the healthy replica, among those the
policy allowed, with the fewest requests outstanding. A replica that refuses a
connection is marked unhealthy at once, and the request may try the next.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp

from sovstack.gateway.config import Replica

__all__ = ["Pool", "ReplicaState"]

_PROBE = aiohttp.ClientTimeout(total=5.0)


@dataclass
class ReplicaState:
    spec: Replica
    healthy: bool = False
    outstanding: int = 0
    failed_probes: int = 0

    @property
    def id(self) -> str:
        return self.spec.id


class Pool:
    def __init__(self, replicas: list[Replica], client: aiohttp.ClientSession, interval_s: float):
        self._replicas = {r.id: ReplicaState(r) for r in replicas}
        self._client = client
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def replicas(self) -> list[ReplicaState]:
        return list(self._replicas.values())

    def of_model(self, model: str) -> list[ReplicaState]:
        return [r for r in self._replicas.values() if r.spec.model == model]

    def models(self) -> list[str]:
        return sorted({r.spec.model for r in self._replicas.values()})

    def any_healthy(self) -> bool:
        return any(r.healthy for r in self._replicas.values())

    def candidates(self, allowed: tuple[str, ...], model: str) -> list[ReplicaState]:
        """Healthy allowed replicas of ``model``, least loaded first."""
        found = [
            r
            for r in self._replicas.values()
            if r.id in allowed and r.spec.model == model and r.healthy
        ]
        return sorted(found, key=lambda r: r.outstanding)

    def acquire(self, replica: ReplicaState) -> None:
        replica.outstanding += 1

    def release(self, replica: ReplicaState) -> None:
        replica.outstanding -= 1

    def mark_down(self, replica: ReplicaState) -> None:
        replica.healthy = False

    async def probe(self, replica: ReplicaState) -> None:
        """One health check. A replica is taken out after two failed checks in a row,
        so that a replica slow to answer under load is not dropped for one late probe."""
        try:
            async with self._client.get(f"{replica.spec.url}/health", timeout=_PROBE) as response:
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        replica.failed_probes = 0 if ok else replica.failed_probes + 1
        replica.healthy = ok or (replica.healthy and replica.failed_probes < 2)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(r) for r in self._replicas.values()))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.probe_all()

    async def start(self) -> None:
        await self.probe_all()
        self._task = asyncio.create_task(self._loop(), name="upstream-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
