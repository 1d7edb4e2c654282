"""A refused write is not acknowledged, leaves the files as they were, and the log comes back.

The faults are the kernel's own where a process can cause them (a file size
limit cuts a write short, then refuses the next one with EFBIG); a full disk
(ENOSPC) and an I/O error are injected at the system-call boundary.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, AuditWriteError
from sovstack.audit import appendfile as appendfile_module
from sovstack.audit import sequencer as sequencer_module
from sovstack.audit.segments import list_segments
from sovstack.audit.verify import verify_log
from tests.unit.audit.conftest import ORIGIN, make_record

ROOT = Path(__file__).resolve().parents[3]


def _segment_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for _, path in list_segments(directory))


def _verified(directory: Path, key: Ed25519PrivateKey, entries: int) -> None:
    assert verify_log(directory, key.public_key(), check_records=True).entries == entries
    with AuditLog.open(directory, key, ORIGIN) as reopened:
        assert reopened.size == entries
        assert reopened.recovery.trimmed == (), "a refused write left bytes behind"


SIZE_LIMIT_CHILD = """
import os, resource, signal, sys
from pathlib import Path
from sovstack.audit import AuditLog, AuditWriteError, load_signing_key
from sovstack.audit.segments import list_segments
from tests.unit.audit.conftest import ORIGIN, make_record

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
directory = Path(sys.argv[1])
log = AuditLog.open(directory, load_signing_key(Path(sys.argv[2])), ORIGIN, 3600)
size = lambda: sum(p.stat().st_size for _, p in list_segments(directory))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, hard))  # no file grows past 20 kB
acked = 0
refused = []
for i in range(200):
    before = size()
    try:
        assert log.append_sync(make_record(i)) == acked
        acked += 1
    except AuditWriteError as exc:
        refused.append((str(exc), before, size()))
        if len(refused) == 3:
            break
print("acked", acked)
for message, before, after in refused:
    print("refused", before, after, message)
print("writable", log.writable())
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the space is back
print("writable", log.writable())
for i in range(200, 205):
    assert log.append_sync(make_record(i)) == acked
    acked += 1
print("acked", acked, "writable", log.writable())
log.close()
"""


def test_a_write_cut_short_is_undone_refused_and_later_appends_succeed(
    tmp_path: Path, key_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = tmp_path / "log"
    result = subprocess.run(
        [sys.executable, "-c", SIZE_LIMIT_CHILD, str(directory), str(key_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    acked = int(lines[0].split()[1])
    assert 10 < acked < 200
    refused = [line.split(maxsplit=3) for line in lines[1:4]]
    for _, before, after, message in refused:
        # The kernel wrote what fitted under the limit; the log cut it off again.
        assert before == after, f"a refused record left {int(after) - int(before)} bytes"
        assert "could not make records durable" in message and "File too large" in message
    # A size limit is not a full disk: not writable until a write succeeds.
    assert lines[4:6] == ["writable False", "writable False"]
    assert lines[6] == f"acked {acked + 5} writable True"
    _verified(directory, signing_key, acked + 5)


def _fail_once(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, fault: Callable[..., object]
) -> list[int]:
    """Replace ``module.name`` by ``fault`` for one call; returns the calls it failed."""
    real = getattr(module, name)
    failed: list[int] = []

    def once(*args: object) -> object:
        if not failed:
            failed.append(1)
            return fault(real, *args)
        return real(*args)

    monkeypatch.setattr(module, name, once)
    return failed


def _half_then_enospc(real: Callable[[int, bytes], int], fd: int, data: bytes) -> int:
    real(fd, bytes(data[: len(data) // 2]))
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_refuses_the_batch_leaves_no_torn_entry_and_takes_the_next_one(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    log = AuditLog.open(directory, signing_key, ORIGIN, 3600)
    for i in range(3):
        log.append_sync(make_record(i))
    before = _segment_bytes(directory)
    failed = _fail_once(monkeypatch, appendfile_module.os, "write", _half_then_enospc)
    with pytest.raises(AuditWriteError, match="No space left on device"):
        log.append_sync(make_record(3))
    assert failed and _segment_bytes(directory) == before
    # A full disk is judged by the free space now (there is plenty here).
    assert log.writable()
    assert log.append_sync(make_record(4)) == 3
    log.close()
    _verified(directory, signing_key, 4)


def test_when_cutting_back_fails_too_nothing_is_written_until_it_succeeds(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    log = AuditLog.open(directory, signing_key, ORIGIN, 3600)
    log.append_sync(make_record(0))
    before = _segment_bytes(directory)
    _fail_once(monkeypatch, appendfile_module.os, "write", _half_then_enospc)
    truncations = {"refused": 0}
    real_truncate = os.ftruncate

    def refuse_twice(fd: int, length: int) -> None:
        if truncations["refused"] < 2:
            truncations["refused"] += 1
            raise OSError(errno.EIO, "Input/output error")
        real_truncate(fd, length)

    monkeypatch.setattr(appendfile_module.os, "ftruncate", refuse_twice)
    with pytest.raises(AuditWriteError):
        log.append_sync(make_record(1))
    torn = _segment_bytes(directory)
    assert torn > before  # the half write is still there: the cut failed
    with pytest.raises(AuditWriteError, match="Input/output error"):
        log.append_sync(make_record(2))  # the cut is retried first, and fails again
    assert _segment_bytes(directory) == torn, "written after a torn entry"
    assert log.append_sync(make_record(3)) == 1
    log.close()
    _verified(directory, signing_key, 2)


def test_a_new_segment_whose_folder_sync_failed_is_synced_and_used_next_time(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    log = AuditLog.open(directory, signing_key, ORIGIN, 3600, segment_bytes=2000)
    log.append_sync(make_record(0))
    index = 1
    while len(list_segments(directory)) == 1:
        log.append_sync(make_record(index))
        index += 1
    synced: list[Path] = []
    real_sync = sequencer_module.fsync_directory

    def fail_first(path: Path) -> None:
        if not synced:
            synced.append(path)
            raise OSError(errno.EIO, "Input/output error")
        synced.append(path)
        real_sync(path)

    monkeypatch.setattr(sequencer_module, "fsync_directory", fail_first)
    while not synced:  # the append that starts the third segment is refused
        try:
            log.append_sync(make_record(index))
            index += 1
        except AuditWriteError:
            break
    fresh = list_segments(directory)[-1][1]
    assert len(list_segments(directory)) == 3 and fresh.stat().st_size == 0
    assert log.append_sync(make_record(index + 1)) == index
    assert len(synced) == 2 and list_segments(directory)[-1][1] == fresh
    log.close()
    _verified(directory, signing_key, index + 1)


def test_a_failed_checkpoint_is_cut_off_refuses_records_until_a_retry_publishes(
    tmp_path: Path,
    signing_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = tmp_path / "log"
    log = AuditLog.open(directory, signing_key, ORIGIN, 1.0)
    real_write = appendfile_module.os.write
    failed: list[bytes] = []

    def checkpoint_disk_full(fd: int, data: bytes) -> int:
        if bytes(data).startswith(ORIGIN.encode()) and not failed:  # a checkpoint note
            failed.append(bytes(data))
            return _half_then_enospc(real_write, fd, data)
        return real_write(fd, data)

    monkeypatch.setattr(appendfile_module.os, "write", checkpoint_disk_full)
    log.append_sync(make_record(0))
    deadline = time.monotonic() + 5
    # The write fails inside the publisher; the log refuses once the failure is reported.
    while "publishing a checkpoint failed" not in caplog.text:
        assert time.monotonic() < deadline, "no checkpoint failure was reported"
        time.sleep(0.01)
    assert failed
    with pytest.raises(AuditWriteError, match="cannot publish checkpoints"):
        log.append_sync(make_record(1))
    while log.checkpoint is None or log.checkpoint.size != 1:
        assert time.monotonic() < deadline, "the failed checkpoint was not retried"
        time.sleep(0.05)
    assert log.append_sync(make_record(2)) == 1
    log.close()
    _verified(directory, signing_key, 2)


def test_records_that_open_a_request_are_refused_below_the_reserve_and_ends_are_kept(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = tmp_path / "log"
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with AuditLog.open(directory, signing_key, ORIGIN, 3600, min_free_bytes=free * 2) as log:
        for event in ("accepted", "denied"):
            with pytest.raises(AuditWriteError, match="kept for requests under way"):
                log.append_sync(make_record(0, event=event))
        for i, event in enumerate(("completed", "aborted", "error")):
            assert log.append_sync(make_record(i, event=event)) == i
        assert not log.writable()
