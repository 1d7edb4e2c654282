"""``audit export`` and ``audit tail``: records out of the log as JSON lines.

Export does not verify (run ``audit verify`` for that); it reads entries in
order and stops at the first one that does not fit the chain, saying so.
Encrypted content stays sealed unless the matching site key is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sovstack.audit.content import decrypt_content
from sovstack.audit.entries import decode_entry
from sovstack.audit.errors import ContentError, RecordError
from sovstack.audit.jsonlines import dump_line
from sovstack.audit.records import format_time
from sovstack.audit.recovery import require_log
from sovstack.audit.segments import Scanner, list_segments

__all__ = ["Filters", "decrypt_record", "export_lines", "follow", "parse_time"]


def parse_time(text: str) -> str:
    """An ISO 8601 date or time (UTC if no zone) in the record's time form."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"{text!r} is not an ISO 8601 date or time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


@dataclass(frozen=True)
class Filters:
    """Keep a record only if it matches every filter given (``None``: any)."""

    since: str | None = None
    until: str | None = None
    subject: str | None = None
    client: str | None = None
    model: str | None = None

    def match(self, record: Mapping[str, Any]) -> bool:
        when = record.get("time", "")
        return (
            (self.since is None or when >= self.since)
            and (self.until is None or when < self.until)
            and (self.subject is None or record.get("subject") == self.subject)
            and (self.client is None or record.get("client") == self.client)
            and (self.model is None or record.get("model") == self.model)
        )


def decrypt_record(record: dict[str, Any], keys: Mapping[str, bytes]) -> list[str]:
    """Replace sealed content the keys open with ``{"key_id", "text"}``; list what stays sealed."""
    sealed_left: list[str] = []
    content = record.get("content")
    if not isinstance(content, dict):
        return sealed_left
    for name, sealed in list(content.items()):
        try:
            content[name] = {"key_id": sealed["key_id"], "text": decrypt_content(keys, sealed)}
        except ContentError:
            sealed_left.append(name)
    return sealed_left


def _line(index: int, record: Mapping[str, Any]) -> str:
    return dump_line({"index": index, "record": record})


def export_lines(
    directory: Path,
    filters: Filters,
    keys: Mapping[str, bytes],
    warn: Callable[[str], None],
) -> Iterator[str]:
    """JSON lines ``{"index", "record"}`` of the matching records, oldest first.

    Raises :class:`NotALogError` if ``directory`` is not an audit log at all.
    """
    require_log(directory)
    scanner = Scanner(directory)
    for index, data, _ in scanner:
        _, _, record = decode_entry(data)
        if not filters.match(record):
            continue
        if keys:
            for name in decrypt_record(record, keys):
                warn(f"record {index}: {name} stays encrypted (no given site key opens it)")
        yield _line(index, record)
    if scanner.broken is not None:
        warn(f"stopped at entry {scanner.broken.index}: {scanner.broken.reason}")


def follow(
    directory: Path, last: int, keep_going: Callable[[], bool], poll: float = 0.2
) -> Iterator[str]:
    """The last ``last`` records, then each new one as it becomes durable.

    Reads only complete lines, so an append in progress is never shown
    half-written. Stops when ``keep_going()`` turns false. Where to go on from
    is fixed from the segments the backlog was read from, before the first
    line is yielded: segments that roll over while the caller prints the
    backlog are read after it, so no record is skipped or renumbered. Raises
    :class:`NotALogError` if ``directory`` is not an audit log at all.
    """
    require_log(directory)
    backlog: list[tuple[int, bytes]] = []
    scanner = Scanner(directory)
    for index, data, _ in scanner:
        backlog.append((index, data))
        if len(backlog) > max(last, 0):
            backlog.pop(0)
    position = scanner.size
    current = scanner.segments[-1] if scanner.segments else None
    offset = _offset_after(current[1], position - current[0]) if current else 0
    for index, data in backlog:
        yield _line(index, decode_entry(data)[2])
    while keep_going():
        segments = list_segments(directory)
        if current is None and segments:
            current, offset = segments[0], 0
        if current is None:
            time.sleep(poll)
            continue
        with current[1].open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        for line in complete.split(b"\n")[:-1]:
            yield _line(position, decode_entry(line)[2])
            position += 1
        offset += len(complete)
        newer = [s for s in segments if s[0] > current[0]]
        if newer and not complete:
            current, offset = newer[0], 0
            continue
        if not complete:
            time.sleep(poll)


def _offset_after(path: Path, entries: int) -> int:
    data = path.read_bytes()
    offset = 0
    for _ in range(entries):
        offset = data.index(b"\n", offset) + 1
    return offset
