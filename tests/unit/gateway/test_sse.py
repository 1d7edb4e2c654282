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
    assert keep.text == b"".join(CHUNKS).decode()
    assert skip.text == ""


# What a chat stream with a tool call and reasoning sends: none of it is "content".
TOOL_STREAM = [
    _event({"choices": [{"index": 0, "delta": {"reasoning_content": "The pump log says"}}]}),
    _event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call-1",
            "type": "function", "function": {"name": "stop_pump", "arguments": ""}}]}}]}),
    _event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
            "function": {"arguments": '{"pump": "P-7"}'}}]}}]}),
    _event({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}}),
    b"data: [DONE]\n\n",
]  # fmt: skip


def test_the_kept_answer_is_everything_the_client_received() -> None:
    tap = StreamTap(drop_usage_only=True, keep_text=True)
    sent = b"".join(tap.feed(c) for c in TOOL_STREAM) + tap.flush()
    assert tap.text == sent.decode()
    assert tap.sha256() == hashlib.sha256(tap.text.encode()).hexdigest()
    for part in ("The pump log says", "stop_pump", '{\\"pump\\": \\"P-7\\"}'):
        assert part in tap.text, part
    assert "usage" not in tap.text  # dropped for this client, so not kept either


def test_a_trailing_event_without_blank_line_is_flushed() -> None:
    tap = StreamTap(drop_usage_only=False, keep_text=False)
    assert tap.feed(b"data: [DONE]") == b""
    assert tap.flush() == b"data: [DONE]"
