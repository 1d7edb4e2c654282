"""``audit export`` and ``audit tail``: records out of the log as JSON lines.

Export does not verify (run ``audit verify`` for that); it reads entries in
order and stops at the first one that does not fit the chain, saying so.
Encrypted content stays sealed unless the matching site key is given.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sovstack.audit.content import decrypt_content
from sovstack.audit.entries import decode_entry
from sovstack.audit.errors import ContentError, RecordError
from sovstack.audit.jsonlines import dump_line
from sovstack.audit.logset import Member, logs_of
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


def _line(index: int, record: Mapping[str, Any], log: str = "") -> str:
    doc: dict[str, Any] = {"index": index, "record": record}
    if log:
        doc["log"] = log
    return dump_line(doc)


def _time(item: tuple[str, str]) -> str:
    return item[0]


def export_lines(
    directory: Path,
    filters: Filters,
    keys: Mapping[str, bytes],
    warn: Callable[[str], None],
) -> Iterator[str]:
    """JSON lines ``{"index", "record"}`` of the matching records, oldest first.

    For a folder of worker logs (:mod:`sovstack.audit.logset`), each line
    also says which log it is from (``"log": "worker-<i>"``), and the logs
    are merged by record time: each log's records stay in index order, and
    the next line is the earliest of the logs' next records (ties: the
    lower worker first). Nothing is held in memory but one record a log.
    Raises :class:`NotALogError` if ``directory`` (or a member) is not an
    audit log at all, or holds both a log and worker logs.
    """
    members = logs_of(directory)
    for member in members:
        require_log(member.directory)
    streams = [_matching(m, filters, keys, warn) for m in members]
    for _, line in heapq.merge(*streams, key=_time) if len(streams) > 1 else streams[0]:
        yield line


def _matching(
    member: Member, filters: Filters, keys: Mapping[str, bytes], warn: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """``(time, line)`` of one log's matching records, in index order."""
    where = f"{member.name}: " if member.name else ""
    scanner = Scanner(member.directory)
    for index, data, _ in scanner:
        _, _, record = decode_entry(data)
        if not filters.match(record):
            continue
        if keys:
            for name in decrypt_record(record, keys):
                warn(f"{where}record {index}: {name} stays encrypted (no given site key opens it)")
        yield str(record.get("time", "")), _line(index, record, member.name)
    if scanner.broken is not None:
        warn(f"{where}stopped at entry {scanner.broken.index}: {scanner.broken.reason}")


def follow(
    directory: Path, last: int, keep_going: Callable[[], bool], poll: float = 0.2
) -> Iterator[str]:
    """The last ``last`` records, then each new one as it becomes durable.

    Reads only complete lines, so an append in progress is never shown
    half-written. Stops when ``keep_going()`` turns false. Where to go on from
    is fixed from the segments the backlog was read from, before the first
    line is yielded: segments that roll over while the caller prints the
    backlog are read after it, so no record is skipped or renumbered. For a
    folder of worker logs: the last ``last`` records of them all, merged by
    time as :func:`export_lines` does, then the new records of each log in
    turn, each line saying which log. Raises :class:`NotALogError` if
    ``directory`` (or a member) is not an audit log at all.
    """
    tails = [_Tail(member, last) for member in logs_of(directory)]
    backlog = heapq.merge(*(t.backlog for t in tails), key=_time)
    for _, line in deque(backlog, maxlen=max(last, 0)):
        yield line
    while keep_going():
        lines = [line for tail in tails for line in tail.read_new()]
        yield from lines
        if not lines:
            time.sleep(poll)


class _Tail:
    """One log being followed: its last records, and where its next durable entry will be."""

    def __init__(self, member: Member, last: int) -> None:
        require_log(member.directory)
        self.member = member
        kept: deque[tuple[int, bytes]] = deque(maxlen=max(last, 0))
        scanner = Scanner(member.directory)
        for index, data, _ in scanner:
            kept.append((index, data))
        self.backlog = [self._item(index, data) for index, data in kept]
        self.position = scanner.size
        current = scanner.segments[-1] if scanner.segments else None
        self.current = current
        self.offset = _offset_after(current[1], self.position - current[0]) if current else 0

    def _item(self, index: int, data: bytes) -> tuple[str, str]:
        record = decode_entry(data)[2]
        return str(record.get("time", "")), _line(index, record, self.member.name)

    def read_new(self) -> list[str]:
        """The lines of the entries that became durable since the last call (maybe none)."""
        while True:
            segments = list_segments(self.member.directory)
            if self.current is None:
                if not segments:
                    return []
                self.current, self.offset = segments[0], 0
            with self.current[1].open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            if complete:
                self.offset += len(complete)
                lines = [
                    self._item(self.position + n, line)[1]
                    for n, line in enumerate(complete.split(b"\n")[:-1])
                ]
                self.position += len(lines)
                return lines
            newer = [s for s in segments if s[0] > self.current[0]]
            if not newer:
                return []
            self.current, self.offset = newer[0], 0


def _offset_after(path: Path, entries: int) -> int:
    data = path.read_bytes()
    offset = 0
    for _ in range(entries):
        offset = data.index(b"\n", offset) + 1
    return offset
