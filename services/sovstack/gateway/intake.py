"""Reading what a client sent, before anything is decided on it.

Every way a body or a header can be malformed ends here as a
:class:`GatewayError` (400 or 413), so the caller records a ``denied`` and
answers in OpenAI's shape; nothing here may raise anything else. A body must
be UTF-8 JSON holding one object: not nested past the parser's recursion
limit, no ``NaN``/``Infinity``, and no unpaired UTF-16 surrogate escape
(``"\\ud800"``), which no audit record, log line or model input could hold.
A client that goes away before its body is in is refused like a bad one.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from starlette.requests import ClientDisconnect, Request

from sovstack.gateway.errors import BadRequest

__all__ = ["CLASSIFICATION_HEADER", "declared_classification", "read_json"]

CLASSIFICATION_HEADER: Final = "x-data-classification"
# A classification is a short name from the policy's data (public, internal, ...).
_CLASSIFICATION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def declared_classification(request: Request) -> str | None:
    """The ``X-Data-Classification`` header if given; 400 unless it is one short plain name."""
    values = request.headers.getlist(CLASSIFICATION_HEADER)
    if not values:
        return None
    value = values[0]
    # Two declarations are refused, not resolved: either one could be the wrong one.
    if len(values) > 1 or not _CLASSIFICATION.fullmatch(value):
        raise BadRequest(
            "the X-Data-Classification header must be given once, as a name of 1 to 64 "
            "letters, digits, '.', '_' or '-'",
            param="X-Data-Classification", code="invalid_header",
        )  # fmt: skip
    return value


def _too_deep() -> BadRequest:
    return BadRequest("the request body is nested too deeply", code="invalid_json")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and the JSON object it holds; :class:`GatewayError` for anything else."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise BadRequest(
            "the client went away before its request was read", code="client_disconnected"
        ) from None
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8", code="invalid_json") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(body):
        raise BadRequest(
            "the request body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)",
            code="invalid_json",
        )
    return raw, body


def _lone_surrogate(body: dict[str, Any]) -> bool:
    # Paired escapes decode to one character; a lone one stays a surrogate, which
    # UTF-8 cannot encode. Only bodies that hold such an escape pay for this.
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        raise _too_deep() from None
    return False
