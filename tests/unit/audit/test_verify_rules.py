"""``verify_log``'s rules, each with a log that breaks exactly one of them.

Logs are real (written by AuditLog); a broken one is made by appending a
checkpoint signed with the log's own key, as a holder of the key (or a
replayed old note) could: the verifier must catch it from the file alone.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, VerificationError
from sovstack.audit import log as log_module
from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint, split_notes
from sovstack.audit.rfc6962 import EMPTY_ROOT
from sovstack.audit.segments import list_segments
from sovstack.audit.verify import verify_log
from tests.unit.audit.conftest import ORIGIN, LogMaker, make_record


def _notes(directory: Path) -> list[str]:
    return split_notes((directory / "checkpoints").read_bytes())[0]


def _latest(directory: Path, key: Ed25519PrivateKey) -> Checkpoint:
    return open_checkpoint(_notes(directory)[-1], key.public_key(), ORIGIN)


def _add_note(directory: Path, note: str) -> None:
    with (directory / "checkpoints").open("a", encoding="utf-8") as out:
        out.write(note + "\n")  # as the publisher writes: each note, then a blank line


def test_a_required_origin_is_enforced(make_log: LogMaker, signing_key: Ed25519PrivateKey) -> None:
    directory = make_log(3)
    assert verify_log(directory, signing_key.public_key(), origin=ORIGIN).entries == 3
    with pytest.raises(VerificationError, match=r"other\.example/log"):
        verify_log(directory, signing_key.public_key(), origin="other.example/log")


def test_a_checkpoint_of_another_origin_in_the_file_fails(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(3)
    latest = _latest(directory, signing_key)
    _add_note(
        directory, sign_checkpoint(Checkpoint("other.example/log", 3, latest.root), signing_key)
    )
    with pytest.raises(VerificationError) as raised:
        verify_log(directory, signing_key.public_key())
    assert raised.value.evidence["checkpoint_number"] == str(len(_notes(directory)) - 1)


def test_the_same_checkpoint_twice_verifies_and_two_roots_for_one_size_are_a_fork(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(3)
    before = _notes(directory)[-1]
    _add_note(directory, before)  # published again with nothing new: allowed
    assert verify_log(directory, signing_key.public_key()).checkpoints == len(_notes(directory))
    forked = sign_checkpoint(Checkpoint(ORIGIN, 3, bytes(32)), signing_key)
    _add_note(directory, forked)
    with pytest.raises(VerificationError, match="the log forked") as raised:
        verify_log(directory, signing_key.public_key())
    assert raised.value.evidence == {"checkpoint_before": before, "checkpoint_after": forked}


def test_an_older_checkpoint_after_a_newer_one_is_a_rollback(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(4, every=2)
    _add_note(directory, _notes(directory)[1])  # replay the size-2 note after size 4
    with pytest.raises(VerificationError, match="older than the one before it"):
        verify_log(directory, signing_key.public_key())


def test_a_fresh_empty_log_verifies_and_a_forged_empty_root_does_not(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = tmp_path / "log"
    AuditLog.open(directory, signing_key, ORIGIN).close()
    report = verify_log(directory, signing_key.public_key())
    assert report.entries == 0 and report.latest is not None and report.latest.size == 0
    (directory / "checkpoints").unlink()  # only a forged one: the root of no entries is fixed
    _add_note(directory, sign_checkpoint(Checkpoint(ORIGIN, 0, b"\x01" * 32), signing_key))
    with pytest.raises(VerificationError) as raised:
        verify_log(directory, signing_key.public_key())
    assert raised.value.evidence["recomputed_root"] == base64.b64encode(EMPTY_ROOT).decode()


def test_a_kept_checkpoint_inside_the_log_verifies_and_a_forged_one_does_not(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(12, every=4)
    public = signing_key.public_key()
    notes = _notes(directory)
    middle = next(n for n in notes if open_checkpoint(n, public, ORIGIN).size == 8)
    assert verify_log(directory, public, trusted=(middle, open_checkpoint(middle, public))).entries
    forged = sign_checkpoint(Checkpoint(ORIGIN, 8, bytes(32)), signing_key)
    with pytest.raises(VerificationError):
        verify_log(directory, public, trusted=(forged, open_checkpoint(forged, public)))


def test_a_kept_checkpoint_larger_than_the_log_names_the_latest_as_evidence(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(12, every=4)
    public = signing_key.public_key()
    ahead = sign_checkpoint(Checkpoint(ORIGIN, 20, bytes(32)), signing_key)
    with pytest.raises(VerificationError, match=r"latest checkpoint \(size 12\)") as raised:
        verify_log(directory, public, trusted=(ahead, open_checkpoint(ahead, public)))
    assert raised.value.first_bad_index == 12
    assert raised.value.evidence["latest_checkpoint"] == _notes(directory)[-1]
    other = sign_checkpoint(Checkpoint("other.example/log", 4, bytes(32)), signing_key)
    with pytest.raises(VerificationError, match=r"'other\.example/log', the log is"):
        verify_log(directory, public, trusted=(other, open_checkpoint(other, public)))


def test_records_are_checked_against_the_schema_only_when_asked(
    tmp_path: Path, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    bad = make_record(0) | {"roles": "operator"}  # a string, not a list
    with monkeypatch.context() as m:
        m.setattr(log_module, "validate_record", lambda record: None)  # a writer that let it in
        with AuditLog.open(directory, signing_key, ORIGIN) as log:
            log.append_sync(bad)
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        log.append_sync(make_record(1))
    public = signing_key.public_key()
    assert verify_log(directory, public).entries == 2  # hashes and signatures hold
    with pytest.raises(VerificationError) as raised:
        verify_log(directory, public, check_records=True)
    assert raised.value.first_bad_index == 0


def test_unfinished_checkpoint_bytes_are_a_warning_with_their_count(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(2)
    assert verify_log(directory, signing_key.public_key()).warnings == []
    torn = f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}"  # no signature yet
    with (directory / "checkpoints").open("a", encoding="utf-8") as out:
        out.write(torn)
    report = verify_log(directory, signing_key.public_key())
    assert report.entries == 2
    assert report.warnings[0].startswith(f"{len(torn)} bytes of an unfinished checkpoint")


def test_a_torn_entry_after_the_latest_checkpoint_is_a_warning_and_a_bad_one_is_not(
    make_log: LogMaker, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(3)  # the latest checkpoint covers all 3 entries
    segment = list_segments(directory)[-1][1]
    intact = segment.read_bytes()
    segment.write_bytes(intact + b'{"index": 3, "prev"')  # a crash mid-append: no newline
    report = verify_log(directory, signing_key.public_key())
    assert report.entries == 3 and "reopening trims it" in report.warnings[-1]
    segment.write_bytes(intact + b'{"index": 3}\n' + b'{"index": 4}\n')  # bad, then more
    with pytest.raises(VerificationError) as raised:
        verify_log(directory, signing_key.public_key())
    assert raised.value.first_bad_index == 3
    assert raised.value.evidence["segment"] == segment.name
