"""Every error the gateway returns, each with exactly one HTTP status.

All of them render as OpenAI's error body, ``{"error": {"message", "type",
"param", "code"}}``, and none carries a stack trace or an upstream's internals.

GatewayError
├── BadRequest            400  invalid_request_error   malformed JSON, caps exceeded
├── Unauthenticated       401  authentication_error    no, malformed or unverifiable token
├── Forbidden             403  permission_error        the policy said no
├── NotFound              404  not_found_error         no such route or model
├── RequestTimeout        408  invalid_request_error   the body did not arrive in time
├── PayloadTooLarge       413  invalid_request_error   body over the limit
├── HeadersTooLarge       431  invalid_request_error   headers over the size or count limit
├── RateLimited           429  rate_limit_error        per-client rate exceeded (Retry-After)
├── UpstreamFailed        502  upstream_error          the replica failed after it was chosen
│                                                      (closed the connection, broken answer)
├── Unavailable           503  service_unavailable     policy, audit or upstream unusable, or
│                                                      too many requests in flight (Retry-After)
└── GatewayTimeout        504  timeout_error           the replica took the request but did not
                                                       answer within upstream_read_timeout_s
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "GatewayTimeout",
    "HeadersTooLarge",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "Unauthenticated",
    "Unavailable",
    "UpstreamFailed",
    "error_body",
]


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"

    def __init__(
        self, message: str, *, code: str | None = None, param: str | None = None,
        retry_after: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="sovstack"'
        return headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthenticated(GatewayError):
    status = 401
    type = "authentication_error"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"

    def headers(self) -> dict[str, str]:
        # The rest of the body may still come: the connection cannot carry another request.
        return {**super().headers(), "Connection": "close"}


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"


class UpstreamFailed(GatewayError):
    status = 502
    type = "upstream_error"


class Unavailable(GatewayError):
    status = 503
    type = "service_unavailable"


class GatewayTimeout(GatewayError):
    status = 504
    type = "timeout_error"
