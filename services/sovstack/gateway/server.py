"""How the gateway is served: uvicorn, with the abuse limits, on one or two listeners.

- the HTTP protocol is uvicorn's httptools one bounded per connection
  (gateway/connections.py): header size and count, header and body read
  deadlines; idle keep-alive connections close after ``keep_alive_timeout_s``;
- no WebSocket upgrades, no ``Server`` header, no proxy headers trusted;
- with ``metrics_host``/``metrics_port`` set, one process listens on both
  addresses (one uvicorn server, one event loop, one app state): ``/metrics``
  is answered on the metrics listener only, and nothing else is; the main
  listener answers 404 for ``/metrics``. A request's listener is told by the
  port it arrived on (settings refuse the same port for both).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from sovstack.gateway.auditing import RequestContext
from sovstack.gateway.config import Settings
from sovstack.gateway.connections import ConnectionLimits, Refused, bounded_protocol
from sovstack.gateway.errors import GatewayError, NotFound
from sovstack.gateway.limits import send_error

__all__ = [
    "MetricsListener", "bind", "listeners", "recording", "serve", "serve_sockets", "uvicorn_config",
]  # fmt: skip

METRICS_PATH = "/metrics"
# uvicorn says where it listens only for an address it bound itself: say it in its log.
_log = logging.getLogger("uvicorn.error")


class MetricsListener:
    """``/metrics`` on the listener of ``metrics_port`` only, the rest elsewhere (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self.app = app
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            on_metrics_listener = server is not None and server[1] == self.metrics_port
            if on_metrics_listener != (scope["path"] == METRICS_PATH):
                # The path is not echoed: it is the caller's, unchecked.
                await send_error(send, NotFound("no such route here", code="unknown_route"))
                return
        await self.app(scope, receive, send)


def recording(app: Starlette) -> Refused:
    """Record a refusal made before ``app`` saw the request, as ``app`` records its own.

    A ``denied`` record through the app's auditor (so a flood from one source
    is summarised, gateway/refusals.py); nothing before the app has started.
    """
    pending: set[asyncio.Task[int | None]] = set()

    def refused(source: str | None, request_id: str, error: GatewayError) -> None:
        state = getattr(app.state, "gateway", None)
        if state is None:
            return
        state.metrics.refused(error)
        ctx = RequestContext(request_id=request_id, route=None, source=source)
        task = asyncio.get_running_loop().create_task(
            state.auditor.decided(ctx, reasons=[error.message])
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    return refused


def uvicorn_config(
    settings: Settings, app: ASGIApp, refused: Refused | None = None
) -> uvicorn.Config:
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_s=settings.header_read_timeout_s,
        body_timeout_s=settings.body_read_timeout_s,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=bounded_protocol(limits, refused),
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout_s,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,
        access_log=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (an IPv6 host may be given bracketed)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def listeners(settings: Settings) -> list[socket.socket]:
    """The main listener and, when set, the metrics one; raises OSError if one cannot be bound."""
    sockets = [bind(settings.host, settings.port)]
    if settings.metrics_host is not None and settings.metrics_port is not None:
        try:
            sockets.append(bind(settings.metrics_host, settings.metrics_port))
        except OSError:
            sockets[0].close()
            raise
    return sockets


def serve_sockets(settings: Settings, app: Starlette, sockets: list[socket.socket]) -> bool:
    """Serve ``app`` on bound ``sockets`` until SIGINT/SIGTERM; False if it failed to start.

    Stopping is graceful: no new connection is taken, and the requests in
    flight are answered to their end before the app's state is closed.
    """
    served: ASGIApp = app
    if len(sockets) > 1:
        served = MetricsListener(app, sockets[1].getsockname()[1])
    config = uvicorn_config(settings, served, recording(app))  # configures uvicorn's logging
    scheme = "https" if settings.tls_cert else "http"
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        _log.info("listening on %s://%s:%d", scheme, host, port)
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return server.started


def serve(settings: Settings, app: Starlette) -> bool:
    """Serve ``app`` in this process; raises OSError when an address cannot be bound."""
    sockets = listeners(settings)
    try:
        return serve_sockets(settings, app, sockets)
    finally:
        for sock in sockets:
            sock.close()
