"""Per-connection limits uvicorn does not have: header size and count, read deadlines.

uvicorn's httptools protocol (the parser the gateway runs on) buffers a header
section of any size and waits for it forever: one client trickling a byte a
second holds a connection, and its memory, as long as it likes (slowloris).
:class:`BoundedHttpToolsProtocol` subclasses it, overriding only public
protocol and parser callbacks, and adds:

- the header section (request line and headers) is at most ``max_header_bytes``
  bytes and ``max_header_count`` headers: past either, ``431`` and the
  connection is closed. Bytes are counted as they arrive, so a single endless
  header is cut off too, not only one that ends;
- the header section must be complete ``header_timeout_s`` after the
  connection opened, or after the first bytes of a later request that did not
  come whole (any bytes after an answer count, even blank lines, which would
  otherwise hold a keep-alive connection open): else ``408`` and close;
- a body the application no longer reads (it answered before the body ended,
  e.g. 401) must still end within ``body_timeout_s`` of the answer, or the
  connection is closed. While the application reads the body, its own
  deadline applies (``LimitsMiddleware``: 408 and a ``denied`` record).

A refusal made here carries an ``X-Request-ID`` and, when a request had
begun, is handed to ``refused`` (server.py records it as the application
would: a ``denied`` record, summarised per source in a flood); a connection
that began none leaves no record. An idle keep-alive connection
is closed by uvicorn's ``timeout_keep_alive``. A TLS handshake is bounded by
asyncio's own handshake timeout (60 s).
"""

from __future__ import annotations

import asyncio
import http
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sovstack.gateway.errors import GatewayError, HeadersTooLarge, RequestTimeout

__all__ = ["BoundedHttpToolsProtocol", "ConnectionLimits", "Refused", "bounded_protocol"]

# Told of each refusal of a request: (peer address, request id, the error answered).
Refused = Callable[[str | None, str, GatewayError], None]


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the answer is ``error``."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def bounded_protocol(
    limits: ConnectionLimits, refused: Refused | None = None
) -> type[BoundedHttpToolsProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, holding ``limits``."""
    chosen, told = limits, refused

    class GatewayHttpProtocol(BoundedHttpToolsProtocol):
        limits: ClassVar[ConnectionLimits] = chosen
        refused: ClassVar[Refused | None] = told

    return GatewayHttpProtocol


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits]
    refused: ClassVar[Refused | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = True  # the next bytes belong to a header section
        self._in_body = False
        self._messages = self._completed = 0  # requests begun, requests whole
        self._header_bytes = 0  # exact, from the parser's callbacks
        self._raw_bytes = 0  # as received, including what the parser still buffers
        self._header_count = 0
        self._refused: GatewayError | None = None

    # --- the connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        began, ended = self._messages, self._completed
        super().data_received(data)
        if not self._in_headers or self._refused is not None or self.transport.is_closing():
            return
        within = began == self._messages and ended == self._completed
        if within:
            # The whole chunk lay in one header section (or between requests);
            # a chunk that began or ended a request is not counted.
            self._raw_bytes += len(data)
            if self._raw_bytes > self.limits.max_header_bytes:
                self._answer(self._too_large())
                return
        answered = self.cycle is not None and self.cycle.response_complete
        if self._deadline is None and (self._messages > self._completed or answered):
            # A request begun and not whole, or bytes after the last answer (which
            # cancel uvicorn's keep-alive timer): the next headers are timed from
            # here. A request that came whole, still being answered, needs no timer.
            self._arm(self.limits.header_timeout_s, self._headers_late)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 for any parser error; ours (a callback that refused) is 431.
        if self._refused is None:
            super().send_400_response(msg)
        else:
            self._answer(self._refused)

    # --- the parser's callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._messages += 1
        self._in_headers = True
        self._header_bytes = self._raw_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url) + 16)  # with the method and "HTTP/1.1"

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._count(len(name) + len(value) + 4)  # with ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers, self._in_body = False, True
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed += 1
        self._in_headers, self._in_body = True, False  # what comes next is the next request
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_body and not self.transport.is_closing():
            self._arm(self.limits.body_timeout_s, self._body_late)

    # --- the limits
    def _count(self, size: int) -> None:
        self._header_bytes += size
        limits = self.limits
        if self._header_count <= limits.max_header_count and (
            self._header_bytes <= limits.max_header_bytes
        ):
            return
        if self._header_count > limits.max_header_count:
            self._refused = HeadersTooLarge(
                f"the request has more than {limits.max_header_count} headers",
                code="too_many_headers",
            )
        else:
            self._refused = self._too_large()
        raise _Refused(self._refused)

    def _too_large(self) -> HeadersTooLarge:
        return HeadersTooLarge(
            f"the request line and headers are larger than {self.limits.max_header_bytes} bytes",
            code="headers_too_large",
        )

    def _headers_late(self) -> None:
        self._deadline = None
        self._answer(RequestTimeout(
            f"the request headers did not arrive within {self.limits.header_timeout_s:g} s",
            code="header_timeout",
        ))  # fmt: skip

    def _body_late(self) -> None:
        self._deadline = None
        self.transport.close()

    def _answer(self, error: GatewayError) -> None:
        """Answer ``error`` (unless a response is under way) and close the connection."""
        self._refused = error
        if self.transport.is_closing():
            return
        request_id = uuid.uuid4().hex
        if self.cycle is None or self.cycle.response_complete:
            body = json.dumps(error.body()).encode()
            head = [f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}".encode()]
            head += [name + b": " + value for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json", b"connection: close"]
            head += [b"content-length: " + str(len(body)).encode()]
            head += [b"x-request-id: " + request_id.encode()]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
        refused = type(self).refused  # through the class: a plain function, not a method
        if self._messages > self._completed and refused is not None:  # a request had begun
            refused(self.client[0] if self.client else None, request_id, error)

    def _arm(self, delay: float, then: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, then)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
