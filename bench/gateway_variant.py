"""Run the gateway with some of its steps switched off, for the benchmark only.

The shipped gateway has no switch that turns authentication, policy or audit
off, nor one that checks every token's signature (it remembers a verified
token until it expires); this script swaps them out in its own process so
that the benchmark can show what each one costs. Never use it for anything
but measuring.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sovstack.gateway.app import create_app
from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.auth import Subject, TokenVerifier
from sovstack.gateway.authz import Decision
from sovstack.gateway.config import CONFIG_FILE_ENV, Settings, get_settings
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.server import serve
from sovstack.gateway.state import GatewayState


class _NoAuth:
    """No token checked: every request is the first caller's subject, verified once.

    So the policy and the audit get the same subject as with authentication on
    (a fixed made-up subject would change what OPA evaluates and what is written).
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier
        self._subject: Subject | None = None

    async def verify(self, authorization: str | None) -> Subject:
        if self._subject is None:
            self._subject = await self._verifier.verify(authorization)
        return self._subject


class _EveryTokenVerified(TokenVerifier):
    """The shipped verifier, made to forget what it verified before each request."""

    async def verify(self, authorization: str | None) -> Subject:
        # The bench's own switch on our own class: the shipped verifier has no setting for it.
        self._verified.clear()
        return await super().verify(authorization)


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

    def switch_off(self, *, auth: bool, policy: bool, audit: bool, every_token: bool) -> None:
        """Swap the steps that are off for no-ops (the real ones were opened and are closed)."""
        self._on = {"auth": auth, "policy": policy, "audit": audit}
        if every_token:
            s = self.settings
            self.verifier = _EveryTokenVerified(
                self.jwks, s.oidc_issuer, s.oidc_audience, s.oidc_algorithms, s.oidc_leeway_s
            )
        if not auth:
            self.verifier = _NoAuth(self.verifier)  # type: ignore[assignment]
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
    parser.add_argument(
        "--verify-every-token", action="store_true",
        help="check each request's token signature (no remembered tokens)",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ[CONFIG_FILE_ENV] = args.config
    settings = get_settings()

    @asynccontextmanager
    async def open_state(settings: Settings, metrics: Metrics) -> AsyncIterator[GatewayState]:
        async with VariantState.open(settings, metrics) as state:
            state.switch_off(
                auth=not args.no_auth, policy=not args.no_policy, audit=not args.no_audit,
                every_token=args.verify_every_token,
            )  # fmt: skip
            yield state

    # Served as the shipped gateway is (gateway/server.py): its per-connection limits are measured.
    serve(settings, create_app(settings, open_state))


if __name__ == "__main__":
    main()
