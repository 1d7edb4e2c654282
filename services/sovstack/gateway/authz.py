"""Ask OPA for a decision on every request; anything but a clear allow is a deny.

The policy's contract (policies/, ``data.sovstack.decision``) takes the
subject, the action, the model, the data classification, the candidate
replicas and the request's own limits, and returns ``allow``, ``reasons``,
``obligations``, ``allowed_replicas`` and ``data_classification`` (the one it
judged by: the one sent, or the client's default; the audit record shows this
one). An undefined result or a malformed one is a deny (403); OPA unreachable,
failing or slower than the timeout is :class:`Unavailable` (503). Either way
nothing reaches a model.

OPA is asked over one kept-alive session, on its Unix socket where
``opa_url`` names one (gateway/endpoints.py), on TCP otherwise.

A decision cache is off by default (``decision_cache_ttl_s: 0``), so no
decision outlives a policy change: every request asks OPA. A site may opt
in; the cache is then keyed on the whole input but the client's usage
(``usage``, which moves with every request), so two requests share a
decision only if everything else the policy saw is equal; a quota may then
be overshot by what arrives within one cache lifetime.
Identical requests that arrive while their decision is being asked for wait
for that one answer instead of each asking OPA (an expired entry under load
would otherwise send every request in flight to OPA at once). A failure is
never cached: each waiter gets it, and the next request asks again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sovstack.gateway.endpoints import OpaEndpoint
from sovstack.gateway.errors import Unavailable

__all__ = ["Decision", "PolicyClient"]

# Connections kept to OPA per session: beyond this, requests queue for one.
_CONNECTIONS = 100


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    obligations: dict[str, Any] = field(default_factory=dict)
    allowed_replicas: tuple[str, ...] = ()
    revision: str | None = None
    # The classification the policy judged the request by; None when it had none.
    data_classification: str | None = None

    @property
    def store_content(self) -> bool:
        return bool(self.obligations.get("store_content"))

    @property
    def max_tokens_cap(self) -> int | None:
        cap = self.obligations.get("max_tokens")
        return cap if isinstance(cap, int) and not isinstance(cap, bool) else None

    def as_record(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": self.obligations,
            "policy_revision": self.revision,
        }


def _parse(result: Any) -> Decision:
    if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
        return Decision(False, ("the policy returned no decision for this request",))
    reasons = result.get("reasons")
    obligations = result.get("obligations")
    replicas = result.get("allowed_replicas")
    classification = result.get("data_classification")
    return Decision(
        allow=result["allow"],
        reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
        obligations=obligations if isinstance(obligations, dict) else {},
        allowed_replicas=tuple(str(r) for r in replicas) if isinstance(replicas, list) else (),
        data_classification=classification if isinstance(classification, str) else None,
    )


def _revision(provenance: Any) -> str | None:
    """The revision of the bundle(s) behind a decision, from OPA's provenance block."""
    bundles = provenance.get("bundles") if isinstance(provenance, dict) else None
    if not isinstance(bundles, dict):
        return None
    revisions = sorted(
        str(b["revision"]) for b in bundles.values() if isinstance(b, dict) and b.get("revision")
    )
    return ",".join(revisions) or None


class PolicyClient:
    """OPA's REST API over one kept-alive aiohttp session, with deny-by-default semantics.

    The session dials OPA's Unix socket when the endpoint names one, TCP
    otherwise; either way its connections are kept alive between decisions.
    Use it inside :meth:`opened`, which holds the session.
    """

    def __init__(
        self, endpoint: OpaEndpoint, decision_path: str, models_path: str,
        timeout_s: float, cache_ttl_s: float = 0.0,
    ) -> None:  # fmt: skip
        self._endpoint = endpoint
        # provenance: OPA names the bundle revision that made each decision.
        self._decision_url = f"{endpoint.base_url}/v1/data/{decision_path}?provenance=true"
        self._models_url = f"{endpoint.base_url}/v1/data/{models_path}"
        self._timeout = timeout_s
        self._ttl = cache_ttl_s
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, tuple[float, Decision]] = {}
        self._asking: dict[str, asyncio.Task[Decision]] = {}

    def _connector(self) -> aiohttp.BaseConnector:
        if self._endpoint.socket is not None:
            return aiohttp.UnixConnector(path=self._endpoint.socket, limit=_CONNECTIONS)
        # Not TLS: plain HTTP, which the endpoint allows on loopback only.
        tls = ssl.create_default_context() if self._endpoint.tls else False
        return aiohttp.TCPConnector(ssl=tls, limit=_CONNECTIONS)

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[PolicyClient]:
        """Open the session for the ``with`` block; it is closed however the block ends."""
        # No retries: a slow or failing OPA must fail the request fast, closed.
        session = aiohttp.ClientSession(
            connector=self._connector(), trust_env=False,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )  # fmt: skip
        async with session:
            self._session = session
            try:
                yield self
            finally:
                self._session = None

    async def _query(self, url: str, input_: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("PolicyClient used outside opened()")
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(url, json={"input": input_}) as response:
                    response.raise_for_status()
                    answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(
                "the policy service is unavailable; the request was not processed",
                code="policy_unavailable",
                retry_after=1,
            ) from exc
        return answer if isinstance(answer, dict) else {}

    async def decide(self, input_: dict[str, Any]) -> Decision:
        if self._ttl <= 0:
            return await self._decide(input_)
        key = json.dumps(
            {k: v for k, v in input_.items() if k != "usage"},
            sort_keys=True, separators=(",", ":"),
        )  # fmt: skip
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        asking = self._asking.get(key)
        if asking is None:
            # A task of its own: a caller that goes away does not fail the others.
            asking = asyncio.create_task(self._decide(input_))
            self._asking[key] = asking
            asking.add_done_callback(functools.partial(self._answered, key))
        return await asyncio.shield(asking)

    def _answered(self, key: str, asking: asyncio.Task[Decision]) -> None:
        del self._asking[key]
        if asking.cancelled() or asking.exception() is not None:
            return  # never cached; the waiters got the error
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self._ttl, asking.result())

    async def _decide(self, input_: dict[str, Any]) -> Decision:
        answer = await self._query(self._decision_url, input_)
        decision = _parse(answer.get("result"))
        return dataclasses.replace(decision, revision=_revision(answer.get("provenance")))

    async def visible_models(self, input_: dict[str, Any]) -> list[str]:
        result = (await self._query(self._models_url, input_)).get("result")
        if not isinstance(result, list):
            return []
        return [m for m in result if isinstance(m, str)]

    async def healthy(self) -> bool:
        if self._session is None:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(self._endpoint.health_url) as response:
                    return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
