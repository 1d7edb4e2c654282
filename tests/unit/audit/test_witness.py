"""The witness accepts only consistent extensions of the log it saw last."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, VerificationError
from sovstack.audit.checkpoint import Checkpoint, sign_checkpoint, split_notes
from sovstack.audit.segments import list_segments
from sovstack.audit.witness import accepted_checkpoint, witness
from tests.unit.audit.conftest import ORIGIN, make_record


def _append(directory: Path, key: Ed25519PrivateKey, start: int, count: int) -> None:
    with AuditLog.open(directory, key, ORIGIN, 3600) as log:
        for i in range(start, start + count):
            log.append_sync(make_record(i))


def _receive(log_dir: Path, inbox: Path) -> Path:
    """Copy a log directory as an audit node would receive it."""
    if inbox.exists():
        shutil.rmtree(inbox)
    shutil.copytree(log_dir, inbox)
    return inbox


@pytest.fixture
def node(tmp_path: Path, signing_key: Ed25519PrivateKey) -> tuple[Path, Path, Path]:
    log_dir, inbox, state = tmp_path / "gateway-log", tmp_path / "inbox", tmp_path / "witness"
    _append(log_dir, signing_key, 0, 10)
    accepted = witness(_receive(log_dir, inbox), signing_key.public_key(), state)
    assert (accepted.previous, accepted.latest.size) == (None, 10)
    return log_dir, inbox, state


def test_a_growing_log_is_accepted_again_and_again(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    log_dir, inbox, state = node
    for round_ in range(3):
        _append(log_dir, signing_key, 10 + 5 * round_, 5)
        accepted = witness(_receive(log_dir, inbox), signing_key.public_key(), state)
        assert accepted.previous is not None
        assert (accepted.previous.size, accepted.latest.size) == (10 + 5 * round_, 15 + 5 * round_)
    kept = accepted_checkpoint(state, signing_key.public_key(), ORIGIN)
    assert kept is not None and kept[1].size == 25


def test_the_same_copy_again_is_accepted_unchanged(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    _, inbox, state = node
    accepted = witness(inbox, signing_key.public_key(), state)
    assert accepted.previous == accepted.latest


def test_a_truncated_copy_is_refused(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log_dir, _, state = node
    old = _receive(log_dir, tmp_path / "old-copy")
    _append(log_dir, signing_key, 10, 10)
    witness(_receive(log_dir, tmp_path / "inbox"), signing_key.public_key(), state)
    with pytest.raises(VerificationError, match="truncated or rolled back") as caught:
        witness(old, signing_key.public_key(), state)
    assert caught.value.evidence["trusted_checkpoint"].split("\n")[1] == "20"
    assert caught.value.evidence["latest_checkpoint"].split("\n")[1] == "10"


def test_a_rewritten_copy_is_refused_with_the_first_bad_index(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    log_dir, inbox, state = node
    _append(log_dir, signing_key, 10, 5)
    copy = _receive(log_dir, inbox)
    segment = list_segments(copy)[0][1]
    segment.write_bytes(segment.read_bytes().replace(b"req-000003", b"req-000333"))
    with pytest.raises(VerificationError, match="copy refused") as caught:
        witness(copy, signing_key.public_key(), state)
    assert caught.value.first_bad_index == 3
    assert "accepted_checkpoint" in caught.value.evidence


def test_a_forked_log_under_the_same_key_is_refused_with_both_checkpoints_and_the_proof(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    _, inbox, state = node
    fork = tmp_path / "fork"
    # The holder of the key builds another history of the same origin: 15
    # other entries, signed with the same key.
    with AuditLog.open(fork, signing_key, ORIGIN, 3600) as log:
        for i in range(15):
            log.append_sync(make_record(100 + i))
    with pytest.raises(VerificationError) as caught:
        witness(_receive(fork, inbox), signing_key.public_key(), state)
    failure = caught.value
    assert failure.first_bad_index is not None and failure.first_bad_index <= 10
    assert failure.evidence["accepted_checkpoint"].split("\n")[1] == "10"
    assert "copy refused" in str(failure)


def test_a_fork_whose_own_entries_verify_is_refused_by_the_consistency_proof(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    # Same as above, but the forged copy also carries the accepted
    # checkpoint's size so nothing but the proof can tell: the witness
    # re-derives the root at size 10 from the copy and it differs.
    _, inbox, state = node
    fork = tmp_path / "fork"
    with AuditLog.open(fork, signing_key, ORIGIN, 3600) as log:
        for i in range(10):
            log.append_sync(make_record(200 + i))
        log.publish()
        for i in range(10, 12):
            log.append_sync(make_record(200 + i))
    with pytest.raises(VerificationError) as caught:
        witness(_receive(fork, inbox), signing_key.public_key(), state)
    assert caught.value.first_bad_index == 0
    assert {"checkpoint", "recomputed_root"} <= set(caught.value.evidence)


def test_a_copy_signed_by_another_key_is_refused(
    node: tuple[Path, Path, Path], signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    _, inbox, state = node
    notes, _ = split_notes((inbox / "checkpoints").read_bytes())
    size, root = notes[-1].split("\n")[1:3]
    forged = sign_checkpoint(
        Checkpoint(ORIGIN, int(size), base64.b64decode(root)), Ed25519PrivateKey.generate()
    )
    (inbox / "checkpoints").write_text("".join(n + "\n" for n in [*notes[:-1], forged]))
    with pytest.raises(VerificationError, match="not signed by the given key"):
        witness(inbox, signing_key.public_key(), state)
