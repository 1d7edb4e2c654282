"""Run the gateway with some of its steps switched off, for the benchmark only.

The shipped gateway has no switch that turns authentication, policy or audit
off; this script swaps them out in its own process so that the benchmark can
show what each one costs. Never use it for anything but measuring.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sovstack.gateway.app import create_app
from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.config import CONFIG_FILE_ENV, Settings, get_settings
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.server import serve
from sovstack.gateway.state import GatewayState

BENCH_SUBJECT = Subject("bench", "line-monitor", ("operator",), "plant-a", "internal")


class _NoAuth:
    async def verify(self, authorization: str | None) -> Subject:
        return BENCH_SUBJECT


class _NoAudit:
    can_keep_content = False

    def __init__(self, log: Any) -> None:
        self.log = log

    async def decided(self, ctx: RequestContext, reasons: list[str] | None = None) -> int:
        return 0

    async def ended(self, ctx: RequestContext, event: str, **_: Any) -> int:
        return 0


class VariantState(GatewayState):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on = {"auth": True, "policy": True, "audit": True}

    def switch_off(self, *, auth: bool, policy: bool, audit: bool) -> None:
        """Swap the steps that are off for no-ops (the real ones were opened and are closed)."""
        self._on = {"auth": auth, "policy": policy, "audit": audit}
        if not auth:
            self.verifier = _NoAuth()  # type: ignore[assignment]
        if not audit:
            self.auditor = _NoAudit(self.auditor.log)  # type: ignore[assignment]

    async def decide(self, input_: dict[str, Any], ctx: RequestContext) -> Decision:
        if self._on["policy"]:
            return await super().decide(input_, ctx)
        ctx.decision = Decision(True, ("bench: policy off",), {},
                                tuple(r["id"] for r in input_["replicas"]))  # fmt: skip
        return ctx.decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    for step in ("auth", "policy", "audit"):
        parser.add_argument(f"--no-{step}", action="store_true")
    args = parser.parse_args()
    os.environ[CONFIG_FILE_ENV] = args.config
    settings = get_settings()

    @asynccontextmanager
    async def open_state(settings: Settings, metrics: Metrics) -> AsyncIterator[GatewayState]:
        async with VariantState.open(settings, metrics) as state:
            state.switch_off(auth=not args.no_auth, policy=not args.no_policy,
                             audit=not args.no_audit)  # fmt: skip
            yield state

    # Served as the shipped gateway is (gateway/server.py): its per-connection limits are measured.
    serve(settings, create_app(settings, open_state))


if __name__ == "__main__":
    main()
