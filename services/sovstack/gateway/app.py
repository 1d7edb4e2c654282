"""The gateway's ASGI application: its routes, and nothing else.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``,
``POST /v1/embeddings``, ``GET /v1/models``, ``/healthz``, ``/readyz`` and
``/metrics``. vLLM's own endpoints are never reachable through it; every
other path is an OpenAI-shaped 404. No OpenAPI or docs pages are served.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.authz import Decision
from sovstack.gateway.config import Settings
from sovstack.gateway.errors import GatewayError, NotFound, error_body
from sovstack.gateway.limits import LimitsMiddleware
from sovstack.gateway.metrics import Metrics
from sovstack.gateway.proxy import authenticate, handle_inference, policy_input
from sovstack.gateway.state import GatewayState
from sovstack.gateway.timing import ServerTimingMiddleware

__all__ = ["create_app"]

log = logging.getLogger("sovstack.gateway")
ROUTES = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
     "/healthz", "/readyz", "/metrics"}
)  # fmt: skip
# The routes timed as stage "total" of sovstack_stage_seconds (arrival to the last byte).
INFERENCE_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


class EdgeMiddleware:
    """The outermost layer (pure ASGI): every request's id, its count and its time.

    Each request gets an id, echoed in ``X-Request-ID`` on every response; the
    same id is in the request's audit records, so a caller can show an
    auditor which records belong to its call. Every response is counted by
    route and status and timed to its last byte. One layer, one ``send``
    wrapper: each layer costs a coroutine and a call per message.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started, status = time.monotonic(), 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            took = time.monotonic() - started
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(took)
            if route in INFERENCE_ROUTES:
                self.metrics.stage["total"].observe(took)


def _error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


StateFactory = Callable[[Settings, Metrics], AbstractAsyncContextManager[GatewayState]]


def create_app(
    settings: Settings,
    open_state: StateFactory = GatewayState.open,
    on_ready: Callable[[], None] | None = None,
    metrics_dir: Path | None = None,
) -> FastAPI:
    """The gateway app; ``open_state`` is for benchmarks that swap a component out.

    The state is opened in the lifespan and reached as ``request.app.state.gateway``;
    ``on_ready`` is called once it is open (a worker tells its supervisor so), and
    ``metrics_dir`` is where a worker's metrics are summed with its siblings'.
    """
    metrics = Metrics(metrics_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state(settings, metrics) as state:
            app.state.gateway = state
            if on_ready is not None:
                on_ready()
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        metrics.refused(exc)
        return _error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error_response(NotFound(f"no route {request.url.path}", code="unknown_route"))
        body = error_body(str(exc.detail), "invalid_request_error")
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid request", "invalid_request_error"), 400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal error", "server_error"), status_code=500)

    # The API routes are plain Starlette routes: they take no parameters for
    # FastAPI to solve, and skipping its per-request dependency machinery is
    # about a twentieth of the gateway's cost per request (bench/).
    async def chat(request: Request) -> Response:
        return await handle_inference(request, "chat")

    async def completions(request: Request) -> Response:
        return await handle_inference(request, "completions")

    async def embeddings(request: Request) -> Response:
        return await handle_inference(request, "embeddings")

    async def models(request: Request) -> JSONResponse:
        state: GatewayState = request.app.state.gateway
        ctx = RequestContext(request_id=request.state.request_id, route=request.url.path)
        await authenticate(state, request, ctx)
        visible = set(await state.policy.visible_models(policy_input(state, ctx, "models", None)))
        listed = [m for m in state.pool.models() if m in visible]
        ctx.decision = Decision(
            True, (f"listed {len(listed)} of {len(state.pool.models())} models",)
        )
        await state.auditor.decided(ctx)
        data = [{"id": m, "object": "model", "owned_by": "sovstack", "created": 0} for m in listed]
        response = JSONResponse({"object": "list", "data": data})
        # Like every accepted request, the listing has its one end record.
        await state.auditor.ended(
            ctx, "completed", status=200, response_sha256=state.sha256(bytes(response.body))
        )
        return response

    app.add_route("/v1/chat/completions", chat, methods=["POST"])
    app.add_route("/v1/completions", completions, methods=["POST"])
    app.add_route("/v1/embeddings", embeddings, methods=["POST"])
    app.add_route("/v1/models", models, methods=["GET"])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        checks = await request.app.state.gateway.readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        request.app.state.gateway.gauge()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(LimitsMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_in_flight=settings.max_concurrent_requests,
                       body_timeout_s=settings.body_read_timeout_s)  # fmt: skip
    if settings.server_timing:
        app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(EdgeMiddleware, metrics=metrics)
    return app
