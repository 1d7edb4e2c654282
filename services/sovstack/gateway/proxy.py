"""One inference request, start to end: authenticate, authorize, audit, proxy.

The order is the contract (ARCHITECTURE.md, "The request path"): nothing is
sent upstream before the token verified, the policy allowed, and the
``accepted`` record is durable. Streams are passed through event by event as
they arrive; the gateway only reads them to count tokens and hash the bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.config import Replica
from sovstack.gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    Unavailable,
    UpstreamFailed,
    error_body,
)
from sovstack.gateway.limits import client_source
from sovstack.gateway.sse import StreamTap
from sovstack.gateway.state import GatewayState
from sovstack.gateway.upstreams import ReplicaState

__all__ = ["capped", "handle_inference"]

CLASSIFICATION_HEADER = "x-data-classification"


@dataclass(frozen=True)
class Inference:
    kind: str
    route: str


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    return body


def _check_limits(state: GatewayState, body: dict[str, Any]) -> None:
    settings = state.settings
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required", param="model", code="missing_model")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadRequest(f"'{key}' must be an integer", param=key)
        if isinstance(value, int) and value > settings.max_tokens_limit:
            raise BadRequest(
                f"'{key}' is {value}; this gateway allows at most {settings.max_tokens_limit}",
                param=key, code="max_tokens_exceeded",
            )  # fmt: skip
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n > settings.max_n):
        raise BadRequest(f"'n' may be at most {settings.max_n}", param="n", code="n_exceeded")


def capped(body: dict[str, Any], cap: int | None) -> dict[str, Any]:
    """The body to send upstream under the policy's ``max_tokens`` obligation.

    Both ways of asking are capped: vLLM takes ``max_completion_tokens`` over
    ``max_tokens`` for a chat, so capping one alone would let the other
    through. A request that asks for neither gets ``max_tokens`` set to the cap.
    """
    out = dict(body)
    if cap is None:
        return out
    asked = [key for key in ("max_tokens", "max_completion_tokens") if out.get(key) is not None]
    for key in asked:
        out[key] = min(out[key], cap)
    if not asked:
        out["max_tokens"] = cap
    return out


def _replica_input(spec: Replica) -> dict[str, Any]:
    return {
        "id": spec.id,
        "model": spec.model,
        "site": spec.site,
        "jurisdiction": spec.jurisdiction,
        "hosting": spec.hosting,
    }


def policy_input(
    state: GatewayState, ctx: RequestContext, kind: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    assert ctx.subject is not None  # noqa: S101 -- authenticated before any policy input
    replicas = state.pool.of_model(ctx.model) if ctx.model else state.pool.replicas
    return {
        "subject": ctx.subject.as_input(),
        "action": {
            "route": ctx.route,
            "method": "POST" if body is not None else "GET",
            "kind": kind,
        },
        "model": ctx.model,
        "data_classification": ctx.classification,
        "replicas": [_replica_input(r.spec) for r in replicas],
        "request": {
            "max_tokens": (body or {}).get("max_tokens"),
            "stream": bool((body or {}).get("stream")),
        },
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


async def handle_inference(request: Request, kind: str) -> Response:
    state: GatewayState = request.app.state.gateway
    ctx = RequestContext(request_id=request.state.request_id, route=request.url.path)
    await authenticate(state, request, ctx)
    # As declared; the policy decides the default when absent (GatewayState.decide).
    ctx.classification = request.headers.get(CLASSIFICATION_HEADER) or None
    try:
        body = await _json_body(request)
        # The digest of the request exactly as received: a caller can recompute it.
        ctx.prompt_sha256 = state.sha256(await request.body())
        _check_limits(state, body)
    except GatewayError as exc:
        await state.auditor.decided(ctx, reasons=[exc.message])
        raise
    ctx.model = body["model"]
    if not state.pool.of_model(body["model"]):
        await state.auditor.decided(ctx, reasons=["no such model on this gateway"])
        raise NotFound(f"the model {body['model']!r} does not exist", code="model_not_found")

    decision = await state.decide(policy_input(state, ctx, kind, body), ctx)
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
    await state.auditor.decided(ctx)  # durable before anything goes upstream

    upstream_body = capped(body, decision.max_tokens_cap)
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if body.get("stream"):
        # Always ask for usage so the audit can count tokens; the tap drops the
        # usage-only event again for a client that did not ask for it.
        upstream_body["stream_options"] = {**(body.get("stream_options") or {}),
                                           "include_usage": True}  # fmt: skip
    return await forward(state, ctx, decision.allowed_replicas, upstream_body, wants_usage)


async def _open(
    state: GatewayState, ctx: RequestContext, allowed: tuple[str, ...], body: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, ReplicaState]:
    """Send to the least-loaded allowed replica; a connect failure tries the next one."""
    assert ctx.model is not None  # noqa: S101 -- set before forwarding
    tried = 0
    for replica in state.pool.candidates(allowed, ctx.model):
        tried += 1
        state.pool.acquire(replica)
        try:
            # Returns once the status and headers are in; the body is read below.
            response = await state.upstream.post(
                f"{replica.spec.url}{ctx.route}", json=body,
                headers={"x-request-id": ctx.request_id, **replica.headers},
            )  # fmt: skip
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            state.pool.release(replica)
            state.pool.mark_down(replica)
            continue
        except BaseException:
            state.pool.release(replica)
            raise
        ctx.replica = replica.id
        ctx.weights_digest = replica.spec.weights_digest
        return response, replica
    reason = "no allowed replica is healthy" if tried == 0 else "every allowed replica refused"
    await state.auditor.ended(ctx, "error", status=503, error=reason)
    raise Unavailable(f"{reason}; the request was not processed", code="no_replica", retry_after=2)


async def forward(
    state: GatewayState, ctx: RequestContext, allowed: tuple[str, ...], body: dict[str, Any],
    wants_usage: bool,
) -> Response:  # fmt: skip
    response, replica = await _open(state, ctx, allowed, body)
    keep_text = ctx.decision is not None and ctx.decision.store_content
    prompt = (
        json.dumps(body.get("messages") or body.get("prompt") or body.get("input"))
        if keep_text
        else ""
    )
    if not body.get("stream") or not response.content_type.startswith("text/event-stream"):
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            await state.auditor.ended(ctx, "error", status=502, error="upstream read failed")
            raise UpstreamFailed("the model replica failed to answer", code="upstream") from exc
        finally:
            response.release()
            state.pool.release(replica)
        return await _finish_plain(state, ctx, response, data, keep_text, prompt)
    tap = StreamTap(drop_usage_only=not wants_usage, keep_text=keep_text)
    return StreamingResponse(
        _relay(state, ctx, response, replica, tap, prompt),
        status_code=response.status,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _finish_plain(
    state: GatewayState, ctx: RequestContext, response: aiohttp.ClientResponse, data: bytes,
    keep_text: bool, prompt: str,
) -> Response:  # fmt: skip
    status = response.status
    usage, completion = None, None
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        usage = parsed.get("usage")
        if keep_text:
            completion = json.dumps(parsed.get("choices"))
    if status >= 500 or parsed is None:
        # Upstream internals stay inside: the caller gets a plain 502.
        await state.auditor.ended(ctx, "error", status=502, error=f"upstream status {status}")
        raise UpstreamFailed("the model replica failed to answer", code="upstream")
    event = "completed" if status < 400 else "error"
    if status >= 400:
        # The replica refused the request itself (an unsupported parameter, a model
        # that does not embed): say so in OpenAI's shape, with no upstream body.
        data = json.dumps(_upstream_refusal(status, parsed)).encode()
    # The answer is already decided and accepted was durable before anything went
    # upstream; the end record is written right after the response is sent, so
    # its fsync does not delay the caller (as for a stream, whose end comes last).
    record_end = BackgroundTask(
        state.auditor.ended, ctx, event, status=status, usage=usage,
        response_sha256=state.sha256(data), prompt=prompt if keep_text else None,
        completion=completion, error=None if status < 400 else f"upstream status {status}",
    )  # fmt: skip
    state.count_tokens(ctx, usage)
    return Response(content=data, status_code=status, media_type="application/json",
                    background=record_end)  # fmt: skip


def _upstream_refusal(status: int, parsed: Any) -> dict[str, Any]:
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = f"the model replica refused the request (status {status})"
    return error_body(message[:500], "invalid_request_error", code="upstream_refused")


async def _relay(
    state: GatewayState, ctx: RequestContext, response: aiohttp.ClientResponse,
    replica: ReplicaState,
    tap: StreamTap, prompt: str,
) -> AsyncIterator[bytes]:  # fmt: skip
    event, error = "aborted", None
    try:
        async for chunk in response.content.iter_any():
            out = tap.feed(chunk)
            if out:
                yield out
        rest = tap.flush()
        if rest:
            yield rest
        event = "completed"
    except (aiohttp.ClientError, TimeoutError) as exc:
        event, error = "error", f"upstream stream failed: {type(exc).__name__}"
    finally:
        with anyio.CancelScope(shield=True):
            # Closing (not releasing) drops the connection: a gone client, or a
            # failed stream, cancels the request at the replica too.
            if event == "completed":
                response.release()
            else:
                response.close()
            state.pool.release(replica)
            await state.auditor.ended(
                ctx, event, status=response.status, usage=tap.usage,
                response_sha256=tap.sha256(), error=error,
                prompt=prompt if tap.keep_text else None,
                completion=tap.text if tap.keep_text else None,
            )  # fmt: skip
            state.count_tokens(ctx, tap.usage)
