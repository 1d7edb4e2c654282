"""kill -9 at any moment: no acknowledged record is lost and the log still verifies.

Each round starts a real writer process with concurrent appenders on a real
file system, kills it with SIGKILL after a different delay, reopens the log
(recovery), checks that every record the writer acknowledged is there at
the index it was given, appends more, and verifies the whole log offline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sovstack.audit import AuditLog, Decision, build_record, generate_signing_key, load_signing_key
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.audit.verify import verify_log
from tests.integration.audit.crash_child import ORIGIN

ROOT = Path(__file__).resolve().parents[3]

# (concurrent writers, seconds before the kill, segment size in bytes)
ROUNDS = [
    (1, 0.05, 1 << 20),
    (8, 0.3, 1 << 20),
    (64, 0.2, 1 << 20),
    (64, 0.6, 20_000),  # segments roll every ~50 entries: kills land near rolls too
    (8, 0.45, 20_000),
    (32, 0.9, 1 << 20),
    (64, 0.35, 50_000),
    (16, 0.12, 20_000),
]


def _run_and_kill(
    directory: Path, key: Path, writers: int, delay: float, tag: str, segment_bytes: int
) -> dict[int, str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.audit.crash_child",
         str(directory), str(key), str(writers), tag, str(segment_bytes)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    ready = child.stdout.readline()
    assert ready.startswith("ready"), child.stderr.read() if child.stderr else ready
    acked: dict[int, str] = {}

    def read_acks() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            _, index, request_id = line.split()
            acked[int(index)] = request_id

    reader = threading.Thread(target=read_acks)
    reader.start()
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    reader.join(10)
    assert child.returncode == -signal.SIGKILL
    return acked


@pytest.mark.timeout(120)
def test_kill_9_during_concurrent_appends_loses_no_acknowledged_record(tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    generate_signing_key(key)
    signing_key = load_signing_key(key)
    directory = tmp_path / "log"
    all_acked: dict[int, str] = {}
    for n, (writers, delay, segment_bytes) in enumerate(ROUNDS):
        acked = _run_and_kill(directory, key, writers, delay, f"round{n}", segment_bytes)
        assert acked, f"round {n}: the writer acknowledged nothing before the kill"
        assert not set(acked) & set(all_acked), "an index was given out twice"
        all_acked.update(acked)
        with AuditLog.open(directory, signing_key, ORIGIN, segment_bytes=segment_bytes) as log:
            assert log.size > max(all_acked)
            for trim in log.recovery.trimmed:  # only ever unacknowledged bytes
                saved = trim.saved_to.read_text(errors="replace")
                assert not [r for r in all_acked.values() if f'"{r}"' in saved]
            index = log.append_sync(
                build_record(request_id=f"after-round{n}", event="error", subject="recovery",
                             client="crash-test", roles=[], site="plant-a",
                             decision=Decision(False, ["restart"], {}, "r1")),
            )  # fmt: skip
            assert index == log.size - 1
        stored = {
            i: decode_entry(data)[2]["request_id"]
            for i, data, _ in Scanner(directory)
        }  # fmt: skip
        missing = {i: r for i, r in all_acked.items() if stored.get(i) != r}
        assert not missing, f"round {n}: acknowledged records lost or moved: {missing}"
        report = verify_log(directory, signing_key.public_key(), check_records=True)
        assert report.entries == len(stored) and report.uncovered == 0
    assert len(all_acked) > 200
