"""One inference request, start to end: authenticate, check, authorize, audit, proxy.

The order is the contract (ARCHITECTURE.md, "The request path"): nothing is
sent upstream before the token verified, the body passed its route's checks
(gateway/protocol.py), the policy allowed, and the ``accepted`` record is
durable. Every request leaves a ``denied`` record, or ``accepted`` and exactly
one end record (gateway/forwarding.py says which, for each way a request ends).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.config import Replica
from sovstack.gateway.errors import Forbidden, GatewayError, NotFound, Unavailable
from sovstack.gateway.forwarding import Outgoing, forward
from sovstack.gateway.intake import declared_classification, read_json
from sovstack.gateway.limits import client_source
from sovstack.gateway.protocol import Checked
from sovstack.gateway.state import GatewayState

__all__ = ["authenticate", "capped", "handle_inference", "policy_input"]


def capped(body: dict[str, Any], cap: int | None, default: int | None = None) -> dict[str, Any]:
    """The body to send upstream under the policy's ``max_tokens`` obligation.

    Both ways of asking are capped: vLLM takes ``max_completion_tokens`` over
    ``max_tokens`` for a chat, so capping one alone would let the other
    through. A request that asks for neither gets ``max_tokens`` set to the
    cap, or with no cap to ``default`` (the gateway's own, ``default_max_tokens``).
    """
    out = dict(body)
    asked = [key for key in ("max_tokens", "max_completion_tokens") if out.get(key) is not None]
    if cap is not None:
        for key in asked:
            out[key] = min(out[key], cap)
    if not asked and (cap if cap is not None else default) is not None:
        out["max_tokens"] = cap if cap is not None else default
    return out


def _replica_input(spec: Replica) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": spec.id,
        "model": spec.model,
        "site": spec.site,
        "jurisdiction": spec.jurisdiction,
        "hosting": spec.hosting,
    }
    if spec.nodes:
        described["nodes"] = dict(spec.nodes)
    return described


def policy_input(
    state: GatewayState, ctx: RequestContext, kind: str, checked: Checked | None
) -> dict[str, Any]:
    """What OPA is asked about; ``request`` holds every field that changes cost or scheduling."""
    assert ctx.subject is not None  # noqa: S101 -- authenticated before any policy input
    replicas = state.pool.of_model(ctx.model) if ctx.model else state.pool.replicas
    return {
        "subject": ctx.subject.as_input(),
        "action": {
            "route": ctx.route,
            "method": "POST" if checked is not None else "GET",
            "kind": kind,
        },
        "model": ctx.model,
        "data_classification": ctx.classification,
        "replicas": [_replica_input(r.spec) for r in replicas],
        "request": checked.facts if checked is not None else {"max_tokens": None, "stream": False},
        # The client's usage in the current day and month, for the quotas (gateway/quota.py).
        "usage": state.ledger.usage(ctx.subject.client_id),
    }


async def authenticate(state: GatewayState, request: Request, ctx: RequestContext) -> None:
    """Verify the caller, apply its rate and in-flight limits; failures are recorded as denied."""
    ctx.source = client_source(request.scope)
    try:
        ctx.subject = await state.verifier.verify(request.headers.get("authorization"))
        state.rate_limiter.check(ctx.subject.client_id)
        state.client_slots.take(request.scope, ctx.subject.client_id)
    except GatewayError as exc:
        await state.auditor.decided(ctx, reasons=[exc.message])
        raise


async def _checked(state: GatewayState, request: Request, ctx: RequestContext,
                   kind: str) -> Checked:  # fmt: skip
    """The request's checked body; anything malformed is recorded as denied (400/413)."""
    try:
        # As declared; the policy decides the default when absent (GatewayState.decide).
        ctx.classification = declared_classification(request)
        raw, body = await read_json(request)
        # The digest of the request exactly as received: a caller can recompute it.
        ctx.prompt_sha256 = state.sha256(raw)
        return state.body_rules.check(kind, body)
    except GatewayError as exc:
        await state.auditor.decided(ctx, reasons=[exc.message])
        raise


async def handle_inference(request: Request, kind: str) -> Response:
    state: GatewayState = request.app.state.gateway
    ctx = RequestContext(request_id=request.state.request_id, route=request.url.path)
    with state.metrics.stage["authenticate"].time():
        await authenticate(state, request, ctx)
    checked = await _checked(state, request, ctx, kind)
    ctx.model = checked.model
    if not state.pool.of_model(checked.model):
        await state.auditor.decided(ctx, reasons=["no such model on this gateway"])
        raise NotFound(f"the model {checked.model!r} does not exist", code="model_not_found")

    with state.metrics.stage["authorize"].time():
        decision = await state.decide(policy_input(state, ctx, kind, checked), ctx)
    if not decision.allow:
        await state.auditor.decided(ctx)
        message = "; ".join(decision.reasons) or "the policy does not allow this request"
        raise Forbidden(message, code="policy_denied")
    if decision.store_content and not state.auditor.can_keep_content:
        ctx.decision = None
        await state.auditor.decided(ctx, reasons=["policy requires encrypted content; no site key"])
        raise Unavailable(
            "the policy requires this request's content to be kept encrypted, "
            "but the gateway has no site key",
            code="site_key_missing",
        )
    with state.metrics.stage["audit"].time():
        await state.auditor.decided(ctx)  # durable before anything goes upstream

    body = checked.body
    if kind != "embeddings":
        body = capped(body, decision.max_tokens_cap, state.settings.default_max_tokens)
    if checked.stream:
        # Always ask for usage so the audit can count tokens; the tap drops the
        # usage-only event again for a client that did not ask for it.
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    out = Outgoing(body, checked.stream, checked.wants_usage)
    return await forward(state, ctx, decision.allowed_replicas, out)
