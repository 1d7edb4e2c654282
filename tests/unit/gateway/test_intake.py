"""Whatever bytes or headers a client sends, reading them ends in a 400 or a JSON object."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request

from sovstack.gateway.errors import BadRequest
from sovstack.gateway.intake import declared_classification, read_json


def _request(*parts: bytes, headers: list[tuple[bytes, bytes]] | None = None,
             disconnect: bool = False) -> Request:  # fmt: skip
    """A request whose body arrives in ``parts`` (then, if asked, the client goes away)."""
    queue: list[dict[str, Any]] = [
        {"type": "http.request", "body": p, "more_body": disconnect or i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    if disconnect:
        queue.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": headers or []}  # fmt: skip
    return Request(scope, receive)


async def _refused(request: Request) -> BadRequest:
    with pytest.raises(BadRequest) as raised:
        await read_json(request)
    return raised.value


async def test_a_json_object_is_read_whole_from_its_parts() -> None:
    raw, body = await read_json(_request(b'{"model": "m", ', b'"x": "\\ud83d\\ude00"}'))
    assert body == {"model": "m", "x": "\U0001f600"}  # a paired surrogate escape is a character
    assert raw == b'{"model": "m", "x": "\\ud83d\\ude00"}'


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (b'{"model": "\xff\xfe"}', "not UTF-8"),
        ('{"model": "m"}'.encode("utf-16"), "not UTF-8"),
        (b'{"model": "tiny\\ud800llama"}', "unpaired UTF-16 surrogate"),
        (b'{"messages": [{"content": "\\udc00"}]}', "unpaired UTF-16 surrogate"),
        (b'{"\\ud800": 1}', "unpaired UTF-16 surrogate"),
        (b'{"temperature": NaN}', "not valid JSON"),
        (b'{"temperature": -Infinity}', "not valid JSON"),
        (b'{"max_tokens": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'["a list"]', "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
    ],
    ids=lambda v: str(v)[:30],
)
async def test_a_malformed_body_is_a_400_saying_why(raw: bytes, says: str) -> None:
    error = await _refused(_request(raw))
    assert error.status == 400 and error.code == "invalid_json"
    assert says in error.message


async def test_a_client_gone_before_its_body_is_in_is_refused_not_crashed() -> None:
    error = await _refused(_request(b'{"model": "m", "mess', disconnect=True))
    assert error.code == "client_disconnected"


@pytest.mark.parametrize(
    "value",
    [b"x" * 1100, b"", b"internal\xff", b"inter nal", b"-internal", "intérnal".encode(), b"a\tb"],
    ids=["long", "empty", "latin-1", "space", "dash-first", "accent", "tab"],
)
def test_a_classification_header_must_be_a_short_plain_name(value: bytes) -> None:
    request = _request(b"{}", headers=[(b"x-data-classification", value)])
    with pytest.raises(BadRequest) as raised:
        declared_classification(request)
    assert raised.value.param == "X-Data-Classification"
    assert len(raised.value.message) < 200  # the value is not echoed back


def test_two_classification_headers_are_refused_whatever_they_say() -> None:
    headers = [(b"x-data-classification", b"public"), (b"x-data-classification", b"restricted")]
    with pytest.raises(BadRequest):
        declared_classification(_request(headers=headers))


def test_a_classification_header_as_the_policy_names_them_is_taken() -> None:
    for name in ("public", "internal", "confidential", "restricted", "plant-a.secret_2"):
        headers = [(b"x-data-classification", name.encode())]
        assert declared_classification(_request(headers=headers)) == name
    assert declared_classification(_request()) is None


async def test_surrogate_pairs_and_escaped_backslashes_are_not_taken_for_lone_ones() -> None:
    sent = {"a": "\\ud800 is how one writes it", "b": "\U0001f600"}
    raw = json.dumps(sent).encode()  # ensure_ascii: the emoji goes as a surrogate pair
    assert b"\\ud83d" in raw and b"\\\\ud800" in raw
    assert (await read_json(_request(raw)))[1] == sent
