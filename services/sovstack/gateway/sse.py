"""Watch a server-sent-events stream on its way to the client.

:class:`StreamTap` passes each complete event on as soon as it has arrived
(only a partial event waits for its end), hashes exactly the bytes the client
receives, picks up the ``usage`` event for the audit record, and, when the
client did not ask for usage, drops that usage-only event (the gateway always
asks the replica for it). Event bodies are parsed only when they carry usage.

When content must be kept, :attr:`StreamTap.text` is every byte the client
received, events as sent: text, tool-call arguments, reasoning, logprobs and
all, with nothing reassembled (so nothing a new kind of delta carries is lost).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["StreamTap"]

_USAGE_MARKERS = (b'"usage":{', b'"usage": {')


class StreamTap:
    def __init__(self, *, drop_usage_only: bool, keep_text: bool) -> None:
        self._drop_usage_only = drop_usage_only
        self.keep_text = keep_text
        self._pending = b""
        self._hash = hashlib.sha256()
        self._kept: list[bytes] = []
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Take raw bytes from the replica; return the bytes to send to the client now."""
        data = self._pending + chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: cut + 2], data[cut + 2 :]
        return self._emit(complete)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._emit(rest) if rest else b""

    def _emit(self, events: bytes) -> bytes:
        if self._needs_parsing(events):
            kept = [e for e in events.split(b"\n\n") if e and self._inspect(e)]
            events = b"".join(e + b"\n\n" for e in kept)
        self._hash.update(events)
        if self.keep_text:
            self._kept.append(events)
        return events

    @staticmethod
    def _needs_parsing(events: bytes) -> bool:
        return any(m in events for m in _USAGE_MARKERS)

    def _inspect(self, event: bytes) -> bool:
        """Note what the event says; return False to drop it."""
        payload = _data(event)
        if payload is None:
            return True
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = payload.get("choices")
        usage_only = isinstance(usage, dict) and not choices
        return not (usage_only and self._drop_usage_only)

    @property
    def text(self) -> str:
        """What the client received, as text (kept only with ``keep_text``)."""
        return b"".join(self._kept).decode("utf-8", "replace")

    def sha256(self) -> str:
        return self._hash.hexdigest()


def _data(event: bytes) -> dict[str, Any] | None:
    lines = [ln[5:].strip() for ln in event.split(b"\n") if ln.startswith(b"data:")]
    if not lines or lines == [b"[DONE]"]:
        return None
    try:
        payload = json.loads(b"\n".join(lines))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
