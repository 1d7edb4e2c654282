"""Every vLLM route but /health and /metrics requires the replica's API key.

vLLM's own ``--api-key`` checks only the paths under /v1, /v2, /inference and
/cohere: its SageMaker route ``POST /invocations`` answers a chat with no key,
and /tokenize, /detokenize and the rest answer too. A local user who reaches a
replica's port could use the model without the gateway's authentication,
policy and audit. This pure ASGI middleware, loaded with vLLM's
``--middleware sovstack_vllm_guard.RequireApiKey``, closes that: with
``VLLM_API_KEY`` set, a request to any path but /health and /metrics (read by
the health probes and Prometheus; neither reaches the model) gets 401 unless it
carries ``Authorization: Bearer <key>``. Without a key (the developer loop on
loopback) it passes everything, as vLLM does.

On the first node of a replica that spans nodes it also starts the watch on
the others (sovstack_vllm_span.py, beside it): the API server is the one
process of that node that sovstack code runs in.

It runs inside vLLM's Python and imports nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import sovstack_vllm_span

__all__ = ["OPEN_PATHS", "RequireApiKey"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health", "/metrics"})
_REFUSAL = json.dumps(
    {"error": {"message": "this replica requires its API key", "type": "authentication_error",
               "param": None, "code": "invalid_api_key"}}
).encode()  # fmt: skip


class RequireApiKey:
    def __init__(self, app: App, api_key: str | None = None) -> None:
        self.app = app
        sovstack_vllm_span.start_from_environment()
        key = api_key if api_key is not None else os.environ.get("VLLM_API_KEY", "")
        # Compared as digests, in constant time, so neither length nor content leaks.
        self._digest = hashlib.sha256(key.encode()).digest() if key else None

    def _carries_key(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                scheme, _, token = value.partition(b" ")
                given = hashlib.sha256(token.strip()).digest()
                return scheme.lower() == b"bearer" and hmac.compare_digest(given, self._digest)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._digest is None
            or scope["type"] not in ("http", "websocket")
            or scope["path"] in OPEN_PATHS
            or self._carries_key(scope)
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(_REFUSAL)).encode()),
                   (b"www-authenticate", b"Bearer")]  # fmt: skip
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": _REFUSAL})
