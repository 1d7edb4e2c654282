"""The vLLM replicas behind the gateway: health, load, and which one to use.

Each replica serves one model at one site. A background task probes each
replica's ``/health``; a request goes to the healthy replica, among those the
policy allowed, with the fewest requests outstanding. A replica that refuses a
connection is marked unhealthy at once, and the request may try the next.

A replica started with vLLM's ``--api-key`` has its key in ``api_key_file``;
the pool reads every key once, when it is made (a missing, empty or
group-readable key file refuses start-up with a :class:`KeyFileError`), and
sends it as ``Authorization: Bearer`` with each probe and request.

Each replica has a :class:`~sovstack.gateway.energy.Meter`: ``acquire`` and
``release`` with the request's id tell it when the request is on the replica,
and :meth:`Pool.settle` gives the request's share for its end record.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import aiohttp

from sovstack.core.errors import KeyFileError
from sovstack.core.keyfiles import read_private
from sovstack.gateway.config import Replica
from sovstack.gateway.energy import Meter, Share

__all__ = ["Pool", "ReplicaState", "auth_headers"]

_PROBE = aiohttp.ClientTimeout(total=5.0)


@dataclass
class ReplicaState:
    spec: Replica
    healthy: bool = False
    outstanding: int = 0
    failed_probes: int = 0
    # What every request to this replica carries besides its own headers.
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # Time, GPU-seconds and energy of the requests on it (gateway/energy.py).
    meter: Meter = field(default_factory=Meter, repr=False)

    @property
    def id(self) -> str:
        return self.spec.id


def auth_headers(spec: Replica) -> dict[str, str]:
    """The ``Authorization`` header for ``spec``'s API key, or none without a key file."""
    if spec.api_key_file is None:
        return {}
    key = read_private(spec.api_key_file, f"API key of replica {spec.id}").decode().strip()
    if not key or any(c.isspace() for c in key):
        raise KeyFileError(
            f"API key of replica {spec.id} in {spec.api_key_file} is empty or holds spaces"
        )
    return {"authorization": f"Bearer {key}"}


class Pool:
    def __init__(self, replicas: list[Replica], client: aiohttp.ClientSession, interval_s: float):
        self._replicas = {r.id: ReplicaState(r, headers=auth_headers(r)) for r in replicas}
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

    def acquire(self, replica: ReplicaState, request_id: str | None = None) -> None:
        replica.outstanding += 1
        if request_id is not None:
            replica.meter.begin(request_id)

    def release(self, replica: ReplicaState, request_id: str | None = None) -> None:
        replica.outstanding -= 1
        if request_id is not None:
            replica.meter.end(request_id)

    def settle(self, replica_id: str | None, request_id: str, tokens: int | None) -> Share | None:
        """The request's share of ``replica_id`` (None if it never was on one)."""
        replica = self._replicas.get(replica_id) if replica_id is not None else None
        return replica.meter.settle(request_id, tokens) if replica is not None else None

    def mark_down(self, replica: ReplicaState) -> None:
        replica.healthy = False

    async def probe(self, replica: ReplicaState) -> None:
        """One health check. A replica is taken out after two failed checks in a row,
        so that a replica slow to answer under load is not dropped for one late probe."""
        try:
            async with self._client.get(
                f"{replica.spec.url}/health", timeout=_PROBE, headers=replica.headers
            ) as response:
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
