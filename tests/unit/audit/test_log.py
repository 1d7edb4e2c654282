"""The log acknowledges a record only once it is durable, and publishes checkpoints."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, AuditWriteError, LogStateError, RecordError
from sovstack.audit import appendfile as appendfile_module
from sovstack.audit.checkpoint import open_checkpoint, split_notes
from sovstack.audit.segments import list_segments
from sovstack.audit.verify import verify_log
from tests.unit.audit.conftest import ORIGIN, LogMaker, make_record


def _lines_on_disk(directory: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for _, path in list_segments(directory))


def _published(directory: Path, key: Ed25519PrivateKey) -> list[int]:
    notes, _ = split_notes((directory / "checkpoints").read_bytes())
    return [open_checkpoint(n, key.public_key()).size for n in notes]


def test_indexes_are_sequential_and_each_entry_is_on_disk_when_acknowledged(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    with AuditLog.open(tmp_path / "log", signing_key, ORIGIN) as log:
        for i in range(5):
            assert log.append_sync(make_record(i)) == i
            assert _lines_on_disk(tmp_path / "log") == i + 1
        assert log.size == 5


def test_concurrent_appends_share_fsyncs_and_return_only_after_theirs(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = {"lines": 0, "calls": 0}
    real = os.fdatasync
    directory = tmp_path / "log"

    def counting_fdatasync(fd: int) -> None:
        real(fd)
        synced["calls"] += 1
        synced["lines"] = _lines_on_disk(directory)

    monkeypatch.setattr(appendfile_module.os, "fdatasync", counting_fdatasync)
    log = AuditLog.open(directory, signing_key, ORIGIN, 3600)

    async def one(i: int) -> int:
        index = await log.append(make_record(i))
        assert index < synced["lines"], "acknowledged before an fsync covered it"
        return index

    async def main() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(300)))

    indexes = asyncio.run(main())
    log.close()
    assert sorted(indexes) == list(range(300))
    assert synced["calls"] < 300 / 4, f"{synced['calls']} fsyncs for 300 concurrent appends"


def test_a_checkpoint_is_published_within_the_interval(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    with AuditLog.open(tmp_path / "log", signing_key, ORIGIN, 0.2) as log:
        for i in range(3):
            log.append_sync(make_record(i))
        deadline = time.monotonic() + 2
        while _published(tmp_path / "log", signing_key)[-1] != 3:
            assert time.monotonic() < deadline, "no checkpoint of size 3 within 2 s"
            time.sleep(0.05)
        assert log.checkpoint is not None and log.checkpoint.size == 3


def test_close_publishes_a_final_checkpoint_and_reopening_continues(
    tmp_path: Path, signing_key: Ed25519PrivateKey, pub_path: Path
) -> None:
    directory = tmp_path / "log"
    with AuditLog.open(directory, signing_key, ORIGIN, 3600) as log:
        for i in range(4):
            log.append_sync(make_record(i))
    assert _published(directory, signing_key) == [0, 4]
    with AuditLog.open(directory, signing_key, ORIGIN, 3600) as log:
        assert log.recovery.trimmed == ()
        assert log.append_sync(make_record(4)) == 4
    report = verify_log(directory, signing_key.public_key())
    assert (report.entries, report.latest and report.latest.size) == (5, 5)


def test_a_closed_log_refuses_records(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    log = AuditLog.open(tmp_path / "log", signing_key, ORIGIN)
    assert log.writable()
    log.close()
    assert not log.writable()
    with pytest.raises(AuditWriteError, match="closed"):
        log.append_sync(make_record(0))
    with pytest.raises(AuditWriteError, match="closed"):
        asyncio.run(log.append(make_record(0)))


def test_a_record_outside_the_schema_is_refused_and_not_written(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    with AuditLog.open(tmp_path / "log", signing_key, ORIGIN) as log:
        record = make_record(0)
        record["latency_us"] = 1.5
        with pytest.raises(RecordError):
            log.append_sync(record)
        assert log.size == 0


def test_only_one_process_holds_a_log(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    with (
        AuditLog.open(tmp_path / "log", signing_key, ORIGIN),
        pytest.raises(LogStateError, match="another process"),
    ):
        AuditLog.open(tmp_path / "log", signing_key, ORIGIN)


def test_a_log_refuses_another_key_or_origin(
    tmp_path: Path, signing_key: Ed25519PrivateKey, make_log: LogMaker
) -> None:
    directory = make_log(3)
    with pytest.raises(LogStateError, match="not one this key signed"):
        AuditLog.open(directory, Ed25519PrivateKey.generate(), ORIGIN)
    with pytest.raises(LogStateError, match="not one this key signed"):
        AuditLog.open(directory, signing_key, "plant-b.example/gateway-1")
    with pytest.raises(LogStateError, match="origin"):
        AuditLog.open(tmp_path / "new", signing_key, "has space")


def test_a_torn_tail_is_trimmed_saved_and_reported(
    signing_key: Ed25519PrivateKey, make_log: LogMaker, caplog: pytest.LogCaptureFixture
) -> None:
    directory = make_log(3)
    segment = list_segments(directory)[-1][1]
    good = segment.read_bytes()
    with segment.open("ab") as handle:
        handle.write(b'{"index":3,"prev":"ab')  # a crash in the middle of an append
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        (trim,) = log.recovery.trimmed
        assert (trim.file, trim.offset, trim.length) == (segment.name, len(good), 21)
        assert trim.saved_to.read_bytes() == b'{"index":3,"prev":"ab'
        assert segment.read_bytes() == good
        assert log.append_sync(make_record(3)) == 3
    assert "trimmed 21 bytes" in caplog.text
    assert verify_log(directory, signing_key.public_key()).entries == 4


def test_an_unfinished_checkpoint_is_trimmed(
    signing_key: Ed25519PrivateKey, make_log: LogMaker
) -> None:
    directory = make_log(2)
    with (directory / "checkpoints").open("a") as handle:
        handle.write(f"{ORIGIN}\n2\n")
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        assert [t.reason for t in log.recovery.trimmed] == ["unfinished checkpoint note"]


def test_a_changed_entry_under_a_checkpoint_refuses_to_open_and_changes_nothing(
    signing_key: Ed25519PrivateKey, make_log: LogMaker
) -> None:
    directory = make_log(5)
    segment = list_segments(directory)[-1][1]
    data = segment.read_bytes().replace(b"req-000004", b"req-999999")
    segment.write_bytes(data)
    with pytest.raises(LogStateError, match="do not match its own checkpoint"):
        AuditLog.open(directory, signing_key, ORIGIN)
    data = segment.read_bytes().replace(b"req-000001", b"req-999998")
    segment.write_bytes(data)
    with pytest.raises(LogStateError, match="entry 1 was altered"):
        AuditLog.open(directory, signing_key, ORIGIN)
    assert segment.read_bytes() == data
    assert not (directory / "trimmed").exists()


def test_segments_roll_and_the_log_verifies_across_them(
    signing_key: Ed25519PrivateKey, make_log: LogMaker
) -> None:
    directory = make_log(40, every=7, segment_bytes=4000)
    segments = list_segments(directory)
    assert len(segments) > 3
    assert [first for first, _ in segments] == sorted({first for first, _ in segments})
    report = verify_log(directory, signing_key.public_key())
    assert report.entries == 40
    with AuditLog.open(directory, signing_key, ORIGIN, segment_bytes=4000) as log:
        assert log.append_sync(make_record(40)) == 40


def test_a_failed_fsync_fails_that_append_alone_and_the_next_one_retries(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog.open(tmp_path / "log", signing_key, ORIGIN, 3600)
    assert log.append_sync(make_record(0)) == 0

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(appendfile_module.os, "fdatasync", failing)
    with pytest.raises(AuditWriteError, match="could not make records durable"):
        log.append_sync(make_record(1))
    assert not log.writable()  # an I/O error is not judged by free space
    monkeypatch.undo()
    # The refused record's index is given again: it was never logged.
    assert log.append_sync(make_record(2)) == 1
    assert log.writable()
    log.close()
    assert verify_log(tmp_path / "log", signing_key.public_key()).entries == 2
    with AuditLog.open(tmp_path / "log", signing_key, ORIGIN) as reopened:
        assert reopened.size == 2
        assert reopened.recovery.trimmed == ()


DISK_FULL_CHILD = """
import resource, signal, sys
from pathlib import Path
from sovstack.audit import AuditLog, AuditWriteError, load_signing_key
from tests.unit.audit.conftest import ORIGIN, make_record

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
log = AuditLog.open(Path(sys.argv[1]), load_signing_key(Path(sys.argv[2])), ORIGIN, 3600)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))  # the disk is full at 20 kB
acked = 0
try:
    for i in range(1000):
        assert log.append_sync(make_record(i)) == acked
        acked += 1
except AuditWriteError as exc:
    print("refused after", acked, "|", exc)
print("writable", log.writable())
log.close()
"""


def test_a_full_disk_refuses_records_without_losing_acknowledged_ones(
    tmp_path: Path, key_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    root = Path(__file__).resolve().parents[3]
    directory = tmp_path / "log"
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, str(directory), str(key_path)],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    acked = int(first.split()[2])
    assert 10 < acked < 1000
    assert "could not make records durable" in first and "File too large" in first
    assert second == "writable False"
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        assert log.size == acked
    assert verify_log(directory, signing_key.public_key()).entries == acked
