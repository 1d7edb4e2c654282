"""Everything long-lived the gateway holds, made in its lifespan and closed with it.

One HTTP client per upstream kind, each with explicit timeouts and limits,
no proxy from the environment, and the site CA: an ``aiohttp.ClientSession``
for the vLLM replicas (httpx's connection pool scans every pooled connection on
each request, which capped the gateway near 110 requests/s at 64 in flight on
two cores; see bench/), an ``httpx.AsyncClient`` for Keycloak's JWKS; one OPA
client; one audit log; the background tasks that probe the replicas and
refresh the realm's keys and read the replicas' energy counters, stopped
when the state closes. Nothing here is a
module-level global.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiohttp
import anyio
import httpx

from sovstack.audit import AuditLog, load_signing_key, load_site_key
from sovstack.gateway.auditing import Auditor, RequestContext
from sovstack.gateway.auth import TokenVerifier
from sovstack.gateway.authz import Decision, PolicyClient
from sovstack.gateway.budgets import SharedClientSlots, SharedRateLimiter, WorkerBudgets
from sovstack.gateway.config import Settings
from sovstack.gateway.errors import GatewayError
from sovstack.gateway.jwks import JwksCache
from sovstack.gateway.limits import ClientSlots, RateLimiter
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.protocol import BodyRules
from sovstack.gateway.quota import Ledger
from sovstack.gateway.refusals import Refusals
from sovstack.gateway.sampler import EnergySampler
from sovstack.gateway.siblings import SiblingLogs
from sovstack.gateway.upstreams import Pool

__all__ = ["GatewayState"]

_log = logging.getLogger(__name__)


def _verify(settings: Settings) -> ssl.SSLContext | bool:
    if settings.ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_file))


def _upstream_session(s: Settings, verify: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=None, connect=s.upstream_connect_timeout_s, sock_read=s.upstream_read_timeout_s
        ),
        connector=aiohttp.TCPConnector(
            limit=s.max_concurrent_requests * 2,
            ssl=verify if isinstance(verify, ssl.SSLContext) else True,
        ),
        trust_env=False,
    )


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class GatewayState:
    """What the gateway holds while it runs; made whole by :meth:`open`, never piecemeal."""

    def __init__(
        self, settings: Settings, metrics: Metrics, *, upstream: aiohttp.ClientSession,
        idp: httpx.AsyncClient, jwks: JwksCache, policy: PolicyClient, pool: Pool,
        auditor: Auditor, ledger: Ledger | None = None, budgets: WorkerBudgets | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.metrics = metrics
        rate, burst = settings.rate_limit_per_client, settings.rate_limit_burst
        in_flight = settings.max_in_flight_per_client
        # With workers, each client's budgets are the whole gateway's (gateway/budgets.py).
        self.rate_limiter = (
            RateLimiter(rate, burst) if budgets is None else SharedRateLimiter(budgets, rate, burst)
        )
        self.client_slots = (
            ClientSlots(in_flight) if budgets is None else SharedClientSlots(budgets, in_flight)
        )
        self.body_rules = BodyRules(
            max_tokens=settings.max_tokens_limit, max_n=settings.max_n,
            extensions=settings.vllm_extensions, drop_unknown=settings.unknown_fields == "drop",
        )  # fmt: skip
        self.upstream = upstream
        self.idp = idp
        self.jwks = jwks
        self.verifier = TokenVerifier(
            jwks, settings.oidc_issuer, settings.oidc_audience,
            settings.oidc_algorithms, settings.oidc_leeway_s,
        )  # fmt: skip
        self.policy = policy
        self.pool = pool
        self.auditor = auditor
        # Each client's usage for the quotas: fed with each durable record (an
        # observer of the auditor), read for every policy input.
        self.ledger = ledger if ledger is not None else Ledger()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, metrics: Metrics, siblings: Sequence[Path] = (),
        budgets: WorkerBudgets | None = None,
    ) -> AsyncIterator[Self]:  # fmt: skip
        """Open every client, the policy session and the audit log; close all of them after.

        Each thing is registered for closing as soon as it is opened, so when a
        later step fails (an unwritable audit folder, a bad key) everything
        opened before it is closed before the error propagates. With workers:
        ``siblings``, the other workers' log folders, followed for the quotas
        (gateway/siblings.py), and ``budgets``, the client budgets they share.
        """
        s = settings
        verify = _verify(s)
        async with AsyncExitStack() as opened:
            upstream = _upstream_session(s, verify)
            opened.push_async_callback(upstream.close)
            idp = httpx.AsyncClient(
                timeout=httpx.Timeout(5.0), limits=httpx.Limits(max_connections=4),
                trust_env=False, verify=verify,
            )  # fmt: skip
            opened.push_async_callback(idp.aclose)
            policy = await opened.enter_async_context(
                PolicyClient(
                    s.opa, s.opa_decision_path, s.opa_models_path,
                    s.opa_timeout_s, s.decision_cache_ttl_s,
                ).opened()
            )  # fmt: skip
            site_key = load_site_key(s.audit_site_key_file) if s.audit_site_key_file else None
            log = AuditLog.open(s.audit_dir, load_signing_key(s.audit_signing_key), s.audit_origin)
            opened.push_async_callback(log.aclose)
            refusals = Refusals(log, s.refusal_records_per_interval, s.refusal_interval_s)
            opened.push_async_callback(refusals.aclose)  # runs before log.aclose
            pool = Pool(list(s.upstreams), upstream, s.health_interval_s)
            jwks = JwksCache(
                idp, s.jwks_url, refetch_floor_s=s.jwks_refetch_floor_s,
                refresh_interval_s=s.jwks_refresh_interval_s,
            )  # fmt: skip
            ledger = Ledger()
            auditor = Auditor(
                log, site_key, refusals, observers=(ledger.count, metrics.observe),
                settle=pool.settle,
            )  # fmt: skip
            state = cls(
                s, metrics, upstream=upstream, idp=idp, jwks=jwks, policy=policy, pool=pool,
                auditor=auditor, ledger=ledger, budgets=budgets,
            )  # fmt: skip
            abandoned = await state.auditor.close_abandoned()  # before any request is taken
            if abandoned:
                _log.warning(
                    "closed %d request(s) a previous gateway left in flight: %s",
                    len(abandoned), ", ".join(abandoned[:10]),
                )  # fmt: skip
            # Quotas: usage so far, from the log (closed above), before any request is taken.
            await anyio.to_thread.run_sync(state.ledger.rebuild, log.directory)
            others = SiblingLogs(siblings, ledger.count)
            await others.catch_up()
            opened.push_async_callback(others.stop)
            others.start()
            await jwks.refresh()  # a Keycloak that is down now is retried on demand
            opened.push_async_callback(jwks.stop)
            jwks.start()
            opened.push_async_callback(pool.stop)
            await pool.start()
            sampler = EnergySampler(pool.replicas, upstream, s.energy_sample_interval_s)
            opened.push_async_callback(sampler.stop)
            sampler.start()
            if metrics.multiprocess_dir is not None:
                # A worker's gauges are summed with its siblings' at /metrics, whichever
                # worker answers it: each keeps its own up to date.
                gauges = asyncio.get_running_loop().create_task(
                    state._gauge_every(s.health_interval_s)
                )
                opened.push_async_callback(_cancelled, gauges)
            yield state

    def gauge(self) -> None:
        """Set the gauges from what this process holds now (the audit log, the replicas)."""
        self.metrics.audit_writable.set(self.auditor.log.writable())
        for replica in self.pool.replicas:
            spec = replica.spec
            self.metrics.upstream_healthy.labels(spec.id, spec.model, spec.site).set(
                replica.healthy
            )
            self.metrics.upstream_outstanding.labels(spec.id).set(replica.outstanding)

    async def _gauge_every(self, interval_s: float) -> None:
        while True:
            self.gauge()
            await asyncio.sleep(interval_s)

    async def decide(self, input_: dict[str, Any], ctx: RequestContext) -> Decision:
        try:
            decision = await self.policy.decide(input_)
        except GatewayError:
            self.metrics.decisions.labels("unavailable").inc()
            await self.auditor.decided(ctx, reasons=["the policy service was unavailable"])
            raise
        ctx.decision = decision
        if decision.data_classification is not None:
            # The record shows the classification the policy judged by (the
            # header's, or the client's default when there was none).
            ctx.classification = decision.data_classification
        self.metrics.decisions.labels("allow" if decision.allow else "deny").inc()
        return decision

    def count_tokens(self, ctx: RequestContext, usage: dict[str, Any] | None) -> None:
        for kind in ("prompt_tokens", "completion_tokens"):
            value = (usage or {}).get(kind)
            if isinstance(value, int):
                self.metrics.tokens.labels(ctx.model or "", kind.split("_")[0]).inc(value)

    @staticmethod
    def sha256(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    async def readiness(self) -> dict[str, bool]:
        return {
            # An on-demand fetch, spaced by the floor: a /readyz flood costs
            # Keycloak one fetch per floor interval at most.
            "jwks": self.jwks.has_keys or await self.jwks.refetch(),
            "policy": await self.policy.healthy(),
            "audit": self.auditor.log.writable(),
            "upstream": self.pool.any_healthy(),
        }
