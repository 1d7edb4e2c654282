"""The policy's max_tokens obligation caps every way a request can ask for tokens."""

from __future__ import annotations

from typing import Any

import pytest

from sovstack.gateway.proxy import capped

CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        ({}, {"max_tokens": 256}),
        ({"max_tokens": 100}, {"max_tokens": 100}),
        ({"max_tokens": 4000}, {"max_tokens": 256}),
        # vLLM prefers max_completion_tokens for a chat: it must not slip past the cap.
        ({"max_completion_tokens": 4000}, {"max_completion_tokens": 256}),
        ({"max_tokens": 10, "max_completion_tokens": 4000},
         {"max_tokens": 10, "max_completion_tokens": 256}),
        ({"max_tokens": None, "max_completion_tokens": 50},
         {"max_tokens": None, "max_completion_tokens": 50}),
    ],
)  # fmt: skip
def test_the_cap_applies_to_whatever_the_request_asks(
    asked: dict[str, Any], sent: dict[str, Any]
) -> None:
    assert capped(CHAT | asked, 256) == CHAT | sent


def test_no_cap_leaves_the_body_as_sent_and_never_mutates_it() -> None:
    body = CHAT | {"max_completion_tokens": 4000}
    assert capped(body, None) == body
    capped(body, 8)
    assert body["max_completion_tokens"] == 4000


@pytest.mark.parametrize(
    ("asked", "cap", "sent"),
    [
        ({}, None, {"max_tokens": 512}),  # neither client nor policy: the gateway's own cap
        ({"max_tokens": 2000}, None, {"max_tokens": 2000}),  # the client's, checked on entry
        ({"max_completion_tokens": 9}, None, {"max_completion_tokens": 9}),
        ({}, 64, {"max_tokens": 64}),  # the policy's cap wins over the default
        ({}, 1024, {"max_tokens": 1024}),
    ],
)
def test_without_any_cap_the_gateway_default_applies(
    asked: dict[str, Any], cap: int | None, sent: dict[str, Any]
) -> None:
    assert capped(CHAT | asked, cap, default=512) == CHAT | sent
