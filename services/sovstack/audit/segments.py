"""Segment files: where entries live, and the one reader every tool uses.

Entries are appended to ``entries-<first index, 20 digits>.jsonl`` files in
the log directory; a new segment starts when the current one would pass its
size limit. :class:`Scanner` reads them in order, checks each entry's
framing, index and ``prev`` link, computes its leaf hash, and stops at the
first entry that does not fit, recording where and why in ``broken``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Final

from sovstack.audit.entries import GENESIS_PREV, decode_entry, entry_prefix
from sovstack.audit.errors import RecordError
from sovstack.audit.records import canonical_json, validate_record
from sovstack.audit.rfc6962 import LEAF_PREFIX

__all__ = ["Break", "Scanner", "list_segments", "segment_name"]

_NAME = re.compile(r"^entries-(\d{20})\.jsonl$")
SEGMENT_GLOB: Final = "entries-*.jsonl"


def segment_name(first_index: int) -> str:
    return f"entries-{first_index:020d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """``(first index, path)`` of every segment in ``directory``, in order."""
    found = []
    for path in directory.glob(SEGMENT_GLOB):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


@dataclass(frozen=True)
class Break:
    """Where a scan stopped: the entry at ``index`` (at ``offset`` in ``segment``) is bad.

    ``suspect`` is the first index that may have been altered (``index - 1``
    when only the ``prev`` link shows the change). ``torn_tail`` is true when
    the bad bytes are the final line of the final segment with nothing after
    them: what a crash mid-append leaves, and the only thing recovery trims.
    """

    index: int
    suspect: int
    segment: Path
    offset: int
    reason: str
    torn_tail: bool


class Scanner:
    """Iterate ``(index, entry bytes, leaf hash)`` over a log directory's segments.

    Entries from ``strict_from`` on are also parsed and their records checked
    against the schema and canonical form (slower; recovery does it for the
    entries no checkpoint covers yet, ``audit verify --check-records`` for all).
    After iteration, ``size`` is the number of good entries, ``prev`` the
    last one's leaf hash, and ``broken`` the first bad entry or ``None``.
    """

    def __init__(self, directory: Path, *, strict_from: int | None = None) -> None:
        self.directory = directory
        self.strict_from = strict_from
        self.size = 0
        self.prev = GENESIS_PREV
        self.broken: Break | None = None
        self.segments = list_segments(directory)
        self.last_segment_bytes = 0

    def __iter__(self) -> Iterator[tuple[int, bytes, bytes]]:
        for first, lines, leaves in self.batches():
            for offset, (line, leaf) in enumerate(zip(lines, leaves, strict=True)):
                yield first + offset, line, leaf

    def batches(self) -> Iterator[tuple[int, list[bytes], list[bytes]]]:
        """Per segment: ``(first index, entry lines, leaf hashes)`` of its good entries.

        The fast path for whole-log work (verification of a million entries).
        """
        index, prev, strict = 0, GENESIS_PREV, self.strict_from
        for n, (first, path) in enumerate(self.segments):
            last_segment = n == len(self.segments) - 1
            data = path.read_bytes()
            self.last_segment_bytes = len(data)
            if first != index:
                self.broken = Break(
                    index, index, path, 0,
                    f"segment {path.name} starts at index {first}, but {index} entries precede it"
                    " (a segment was removed, added or renamed)",
                    False,
                )  # fmt: skip
                return
            lines = data.split(b"\n")
            unfinished = lines.pop()
            leaves: list[bytes] = []
            offset = 0
            for line in lines:
                prefix = entry_prefix(index, prev)
                if not (line.startswith(prefix) and line[-1:] == b"}") or (
                    strict is not None and index >= strict and not _strict_ok(line, len(prefix))
                ):
                    end = offset + len(line) + 1
                    self.broken = _diagnose(line, index, prev, path, offset)
                    self.broken = _with_tail(self.broken, last_segment and end == len(data))
                    break
                prev = sha256(LEAF_PREFIX + line).digest()
                leaves.append(prev)
                index += 1
                offset += len(line) + 1
            if leaves:
                self.size, self.prev = index, prev
                yield first, lines[: len(leaves)], leaves
            if self.broken is not None:
                return
            if unfinished:
                self.broken = Break(
                    index, index, path, offset,
                    f"entry {index} in {path.name} is incomplete (no newline): an append was cut",
                    last_segment,
                )  # fmt: skip
                return


def _with_tail(broken: Break, torn_tail: bool) -> Break:
    return Break(
        broken.index, broken.suspect, broken.segment, broken.offset, broken.reason, torn_tail
    )


def _strict_ok(line: bytes, prefix_length: int) -> bool:
    try:
        _, _, record = decode_entry(line)
        validate_record(record)
        return canonical_json(record) == line[prefix_length:-1]
    except RecordError:
        return False


def _diagnose(line: bytes, index: int, prev: bytes, path: Path, offset: int) -> Break:
    where = f"{path.name} at byte {offset}"
    try:
        claimed, claimed_prev, record = decode_entry(line)
    except RecordError:
        return Break(index, index, path, offset, f"entry {index} ({where}) is not an entry", False)
    if claimed != index:
        return Break(
            index, index, path, offset,
            f"entry at position {index} ({where}) says it is entry {claimed}:"
            " records were deleted, inserted or reordered",
            False,
        )  # fmt: skip
    if claimed_prev != prev.hex():
        return Break(
            index, max(index - 1, 0), path, offset,
            f"entry {index} ({where}) links to a previous entry with leaf hash {claimed_prev},"
            f" but entry {index - 1} hashes to {prev.hex()}: entry {index - 1} was altered",
            False,
        )  # fmt: skip
    try:
        validate_record(record)
        canonical = canonical_json(record) in line
    except RecordError as exc:
        return Break(index, index, path, offset, f"entry {index} ({where}): {exc}", False)
    if not canonical:
        return Break(
            index, index, path, offset, f"entry {index} ({where}) is not canonical JSON", False
        )
    return Break(index, index, path, offset, f"entry {index} ({where}) is malformed", False)
