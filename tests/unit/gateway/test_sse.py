"""The stream tap passes events through as they arrive and notes usage for the audit."""

from __future__ import annotations

import hashlib
import json

from sovstack.gateway.sse import StreamTap


def _event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


CHUNKS = [
    _event({"choices": [{"index": 0, "delta": {"content": "Pump "}}], "usage": None}),
    _event({"choices": [{"index": 0, "delta": {"content": "ok"}}], "usage": None}),
    _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}),
    b"data: [DONE]\n\n",
]


def test_complete_events_pass_through_at_once_and_unchanged() -> None:
    tap = StreamTap(drop_usage_only=False, keep_text=False)
    out = [tap.feed(c) for c in CHUNKS]
    assert out == CHUNKS
    assert tap.usage == {"prompt_tokens": 7, "completion_tokens": 2}
    assert tap.sha256() == hashlib.sha256(b"".join(CHUNKS)).hexdigest()


def test_a_partial_event_waits_only_for_its_own_end() -> None:
    tap = StreamTap(drop_usage_only=False, keep_text=False)
    whole = CHUNKS[0]
    assert tap.feed(whole[:10]) == b""
    assert tap.feed(whole[10:] + CHUNKS[1][:5]) == whole
    assert tap.feed(CHUNKS[1][5:]) == CHUNKS[1]


def test_the_usage_event_is_dropped_for_a_client_that_did_not_ask_but_still_counted() -> None:
    tap = StreamTap(drop_usage_only=True, keep_text=False)
    sent = b"".join(tap.feed(c) for c in CHUNKS) + tap.flush()
    assert sent == CHUNKS[0] + CHUNKS[1] + CHUNKS[3]
    assert tap.usage == {"prompt_tokens": 7, "completion_tokens": 2}
    assert tap.sha256() == hashlib.sha256(sent).hexdigest()


def test_text_is_collected_only_when_content_must_be_kept() -> None:
    keep = StreamTap(drop_usage_only=False, keep_text=True)
    skip = StreamTap(drop_usage_only=False, keep_text=False)
    for chunk in CHUNKS:
        keep.feed(chunk)
        skip.feed(chunk)
    assert keep.text == "Pump ok"
    assert skip.text == ""


def test_a_trailing_event_without_blank_line_is_flushed() -> None:
    tap = StreamTap(drop_usage_only=False, keep_text=False)
    assert tap.feed(b"data: [DONE]") == b""
    assert tap.flush() == b"data: [DONE]"
