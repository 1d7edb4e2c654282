"""Send an accepted request to a replica and its answer back, with exactly one end record.

How each way it can go ends (the replica is "marked down" until a health probe passes)::

    connect refused or timed out    nothing reached it: marked down, the next allowed
                                    replica is tried; none left: 503, ``error``
    read timeout before headers     504 ``upstream_timeout``, ``error``, marked down (vLLM
                                    sends a non-streaming answer's headers only when done)
    disconnect or broken answer     502 ``upstream``, ``error``, marked down
    a plain answer                  status >= 500 or not JSON: 502, ``error``; 4xx: the
                                    replica's message in OpenAI's shape, ``error``;
                                    else ``completed`` with its usage
    a stream                        ``completed``; ``aborted`` when the client left
                                    (even before the first byte); ``error`` (and marked
                                    down) when the replica failed mid-stream
    anything else (a bug, shutdown) ``error`` with status 500, or ``aborted`` if cancelled

When the policy asks to keep content, the kept prompt is the whole body the
model received (the bytes sent) and the kept completion every byte the client
got (for a stream, every event as sent), so ``completion_sha256`` is the
SHA-256 of the kept completion.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.errors import (
    GatewayError,
    GatewayTimeout,
    Unavailable,
    UpstreamFailed,
    error_body,
)
from sovstack.gateway.sse import StreamTap
from sovstack.gateway.state import GatewayState
from sovstack.gateway.upstreams import ReplicaState

__all__ = ["Outgoing", "forward", "open_upstream"]


@dataclass(frozen=True)
class Outgoing:
    """What goes to the model: the body, its JSON exactly as sent, and how to answer."""

    body: dict[str, Any]
    stream: bool
    wants_usage: bool

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body).encode()


async def _failed(
    state: GatewayState, ctx: RequestContext, replica: ReplicaState, exc: BaseException,
) -> GatewayError:  # fmt: skip
    """Record the end of a request the replica took but did not answer; the error to raise."""
    state.pool.mark_down(replica)
    if isinstance(exc, TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        error: GatewayError = GatewayTimeout(
            "the model replica did not answer in time; the request was stopped",
            code="upstream_timeout",
        )
        what = "upstream read timed out"
    else:
        error = UpstreamFailed("the model replica failed to answer", code="upstream")
        what = f"upstream failed: {type(exc).__name__}"
    await state.auditor.ended(ctx, "error", status=error.status, error=what)
    return error


async def open_upstream(
    state: GatewayState, ctx: RequestContext, allowed: tuple[str, ...], payload: bytes
) -> tuple[aiohttp.ClientResponse, ReplicaState]:
    """Send to the least-loaded allowed replica; a connect failure tries the next one."""
    assert ctx.model is not None  # noqa: S101 -- set before forwarding
    tried = 0
    headers = {"content-type": "application/json", "x-request-id": ctx.request_id}
    for replica in state.pool.candidates(allowed, ctx.model):
        tried += 1
        state.pool.acquire(replica, ctx.request_id)
        try:
            # Returns once the status and headers are in; the body is read after.
            with state.metrics.stage["upstream_first_byte"].time():
                response = await state.upstream.post(
                    f"{replica.spec.url}{ctx.route}", data=payload,
                    headers=headers | replica.headers,
                )  # fmt: skip
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            state.pool.release(replica, ctx.request_id)
            state.pool.mark_down(replica)
            continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            state.pool.release(replica, ctx.request_id)
            ctx.replica, ctx.weights_digest = replica.id, replica.spec.weights_digest
            raise await _failed(state, ctx, replica, exc) from exc
        except BaseException:
            state.pool.release(replica, ctx.request_id)
            raise
        ctx.replica, ctx.weights_digest = replica.id, replica.spec.weights_digest
        return response, replica
    reason = "no allowed replica is healthy" if tried == 0 else "every allowed replica refused"
    await state.auditor.ended(ctx, "error", status=503, error=reason)
    raise Unavailable(f"{reason}; the request was not processed", code="no_replica", retry_after=2)


async def forward(
    state: GatewayState, ctx: RequestContext, allowed: tuple[str, ...], out: Outgoing
) -> Response:
    """The answer to an accepted request; however it fails, the request gets its end record."""
    try:
        return await _forward(state, ctx, allowed, out)
    except BaseException as exc:
        if not ctx.ended:  # a failure not foreseen above still closes the request
            with anyio.CancelScope(shield=True):
                gone = isinstance(exc, anyio.get_cancelled_exc_class())
                await state.auditor.ended(
                    ctx, "aborted" if gone else "error", status=None if gone else 500,
                    error=f"gateway failed: {type(exc).__name__}",
                )  # fmt: skip
        raise


async def _forward(
    state: GatewayState, ctx: RequestContext, allowed: tuple[str, ...], out: Outgoing
) -> Response:
    payload = out.payload
    response, replica = await open_upstream(state, ctx, allowed, payload)
    keep = ctx.decision is not None and ctx.decision.store_content
    prompt = payload.decode() if keep else None
    if not out.stream or not response.content_type.startswith("text/event-stream"):
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise await _failed(state, ctx, replica, exc) from exc
        finally:
            response.release()
            state.pool.release(replica, ctx.request_id)
        return await _finish_plain(state, ctx, response.status, data, prompt)
    tap = StreamTap(drop_usage_only=not out.wants_usage, keep_text=keep)
    return _RelayResponse(_Relay(state, ctx, response, replica, tap, prompt))


async def _finish_plain(
    state: GatewayState, ctx: RequestContext, status: int, data: bytes, prompt: str | None
) -> Response:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        parsed = None
    if status >= 500 or not isinstance(parsed, dict):
        # Upstream internals stay inside: the caller gets a plain 502.
        await state.auditor.ended(ctx, "error", status=502, error=f"upstream status {status}")
        raise UpstreamFailed("the model replica failed to answer", code="upstream")
    usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else None
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
        response_sha256=state.sha256(data), prompt=prompt,
        completion=data.decode("utf-8", "replace") if prompt is not None else None,
        error=None if status < 400 else f"upstream status {status}",
    )  # fmt: skip
    state.count_tokens(ctx, usage)
    return Response(content=data, status_code=status, media_type="application/json",
                    background=record_end)  # fmt: skip


def _upstream_refusal(status: int, parsed: dict[str, Any]) -> dict[str, Any]:
    error = parsed.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = f"the model replica refused the request (status {status})"
    return error_body(message[:500], "invalid_request_error", code="upstream_refused")


class _Relay:
    """One stream from a replica to a client; :meth:`close` ends it once, whatever happens."""

    def __init__(
        self, state: GatewayState, ctx: RequestContext, response: aiohttp.ClientResponse,
        replica: ReplicaState, tap: StreamTap, prompt: str | None,
    ) -> None:  # fmt: skip
        self.state, self.ctx, self.response, self.replica = state, ctx, response, replica
        self.tap, self.prompt = tap, prompt
        self._closed = False

    async def events(self) -> AsyncIterator[bytes]:
        event, error = "aborted", None
        try:
            async for chunk in self.response.content.iter_any():
                out = self.tap.feed(chunk)
                if out:
                    yield out
            rest = self.tap.flush()
            if rest:
                yield rest
            event = "completed"
        except (aiohttp.ClientError, TimeoutError) as exc:
            event, error = "error", f"upstream stream failed: {type(exc).__name__}"
            self.state.pool.mark_down(self.replica)
        finally:
            await self.close(event, error)

    async def close(self, event: str, error: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            # Closing (not releasing) drops the connection: a gone client, or a
            # failed stream, cancels the request at the replica too.
            if event == "completed":
                self.response.release()
            else:
                self.response.close()
            self.state.pool.release(self.replica, self.ctx.request_id)
            tap = self.tap
            await self.state.auditor.ended(
                self.ctx, event, status=self.response.status, usage=tap.usage,
                response_sha256=tap.sha256(), error=error, prompt=self.prompt,
                completion=tap.text if tap.keep_text else None,
            )  # fmt: skip
            self.state.count_tokens(self.ctx, tap.usage)


class _RelayResponse(StreamingResponse):
    """A stream response that ends its relay even when it never started to iterate it
    (a client gone before the first byte cancels the response before the generator runs)."""

    def __init__(self, relay: _Relay) -> None:
        super().__init__(
            relay.events(),
            status_code=relay.response.status,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._relay.close("aborted", None)
