"""Opening a log directory after any stop, clean or kill -9.

Recovery reads what is on disk and trusts it only as far as the log's own
latest signed checkpoint vouches for it:

* an unfinished checkpoint note at the end of ``checkpoints`` is trimmed;
* the entries are re-read and re-hashed; a torn last entry (what a crash in
  the middle of an append leaves: the final line of the final segment, not
  covered by any checkpoint) is trimmed;
* anything else that does not fit (a bad entry followed by more data, an
  entry a checkpoint covers, fewer entries than the checkpoint's size, a root
  that differs from the checkpoint's) refuses to open with
  :class:`LogStateError`, because continuing would lose or fork records.

Trimmed bytes are never deleted: they are moved to ``trimmed/`` and listed
in the returned :class:`Recovery`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, split_notes
from sovstack.audit.errors import CheckpointError, LogStateError, NotALogError
from sovstack.audit.rfc6962 import EMPTY_ROOT
from sovstack.audit.segments import Scanner, list_segments
from sovstack.audit.tree import Frontier
from sovstack.core.keyfiles import fsync_directory, write_all

__all__ = ["CHECKPOINTS_FILE", "TRIMMED_DIR", "Recovery", "Trimmed", "recover", "require_log"]

CHECKPOINTS_FILE = "checkpoints"
TRIMMED_DIR = "trimmed"


def require_log(directory: Path) -> None:
    """Raise :class:`NotALogError` unless ``directory`` holds a checkpoints file or a segment."""
    if not (directory / CHECKPOINTS_FILE).is_file() and not list_segments(directory):
        raise NotALogError(
            f"{directory} is not an audit log: it has no {CHECKPOINTS_FILE} file and no"
            " entries-*.jsonl segment"
        )


@dataclass(frozen=True)
class Trimmed:
    """Bytes recovery cut from the end of ``file`` (they were never acknowledged)."""

    file: str
    offset: int
    length: int
    saved_to: Path
    reason: str

    def describe(self) -> str:
        return (
            f"trimmed {self.length} bytes from {self.file} at byte {self.offset} ({self.reason});"
            f" saved to {self.saved_to}"
        )


@dataclass(frozen=True)
class Recovery:
    """The state a log directory was found in, ready for appending."""

    size: int
    prev: bytes
    frontier: Frontier
    checkpoint: Checkpoint | None
    trimmed: tuple[Trimmed, ...]
    segment: Path | None
    segment_first: int
    segment_bytes: int


def _quarantine(directory: Path, path: Path, offset: int, reason: str) -> Trimmed:
    data = path.read_bytes()[offset:]
    saved_dir = directory / TRIMMED_DIR
    saved_dir.mkdir(mode=0o750, exist_ok=True)
    saved = saved_dir / f"{path.name}.{offset}.{time.time_ns()}.torn"
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(saved_dir)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Trimmed(path.name, offset, len(data), saved, reason)


def _latest_checkpoint(
    directory: Path, public_key: Ed25519PublicKey, origin: str, trimmed: list[Trimmed]
) -> Checkpoint | None:
    path = directory / CHECKPOINTS_FILE
    if not path.exists():
        return None
    data = path.read_bytes()
    notes, complete = split_notes(data)
    if complete < len(data):
        trimmed.append(_quarantine(directory, path, complete, "unfinished checkpoint note"))
    if not notes:
        return None
    try:
        return open_checkpoint(notes[-1], public_key, origin)
    except CheckpointError as exc:
        raise LogStateError(
            f"the latest checkpoint in {directory} is not one this key signed for {origin!r}:"
            f" {exc} (wrong key or origin, or the checkpoint was altered)"
        ) from exc


def recover(directory: Path, public_key: Ed25519PublicKey, origin: str) -> Recovery:
    """Bring ``directory`` to its last durable state; see the module docstring."""
    trimmed: list[Trimmed] = []
    latest = _latest_checkpoint(directory, public_key, origin, trimmed)
    covered = latest.size if latest else 0
    scanner = Scanner(directory, strict_from=covered)
    frontier = Frontier()
    root_at_checkpoint = EMPTY_ROOT if covered == 0 else None
    for first, _lines, batch in scanner.batches():
        if root_at_checkpoint is None and covered <= first + len(batch):
            frontier.extend(batch[: covered - first])
            root_at_checkpoint = frontier.root()
            frontier.extend(batch[covered - first :])
        else:
            frontier.extend(batch)
    broken = scanner.broken
    segment_bytes = scanner.last_segment_bytes
    if broken is not None:
        if not (broken.torn_tail and broken.index >= covered):
            raise LogStateError(
                f"{broken.reason}. Reopening would drop records that may have been acknowledged;"
                f" nothing was changed. Run 'sovstack audit verify {directory}' for the evidence."
            )
        trimmed.append(_quarantine(directory, broken.segment, broken.offset, broken.reason))
        segment_bytes = broken.offset
    if latest is not None:
        if scanner.size < latest.size:
            raise LogStateError(
                f"{directory} holds {scanner.size} entries but its checkpoint covers {latest.size}:"
                " entries were removed"
            )
        if root_at_checkpoint != latest.root:
            raise LogStateError(
                f"the entries in {directory} do not match its own checkpoint at size {latest.size}:"
                " entries were altered. Run 'sovstack audit verify' for the first bad index."
            )
    last = scanner.segments[-1] if scanner.segments else None
    return Recovery(
        size=scanner.size,
        prev=scanner.prev,
        frontier=frontier,
        checkpoint=latest,
        trimmed=tuple(trimmed),
        segment=last[1] if last else None,
        segment_first=last[0] if last else 0,
        segment_bytes=segment_bytes if last else 0,
    )
