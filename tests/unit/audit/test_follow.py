"""``audit tail``'s follow: no record lost or renumbered when a segment rolls at any moment."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog
from sovstack.audit.export import follow
from sovstack.audit.segments import list_segments
from tests.unit.audit.conftest import ORIGIN, make_record


def _seen(line: str) -> tuple[int, str]:
    doc = json.loads(line)
    return doc["index"], doc["record"]["request_id"]


def test_segments_rolled_between_the_backlog_and_the_follow_lose_nothing(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = tmp_path / "log"
    with AuditLog.open(directory, signing_key, ORIGIN, segment_bytes=3000) as log:
        for i in range(2):
            log.append_sync(make_record(i))
        # A lost record would otherwise be waited for forever: give up after a while.
        deadline = time.monotonic() + 30
        lines = follow(directory, last=1, keep_going=lambda: time.monotonic() < deadline, poll=0.01)
        # The generator is paused right after the backlog's one line: the log
        # rolls over to new segments exactly there, whatever the machine's load.
        assert _seen(next(lines)) == (1, "req-000001")
        for i in range(2, 14):
            log.append_sync(make_record(i))
        assert len(list_segments(directory)) >= 3
        rest = [_seen(line) for line in itertools.islice(lines, 12)]
    assert rest == [(i, f"req-{i:06d}") for i in range(2, 14)]
