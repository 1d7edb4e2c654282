"""The tamper matrix: every change to a stored log is detected by ``audit verify``."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, VerificationError
from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint, split_notes
from sovstack.audit.entries import GENESIS_PREV, encode_entry
from sovstack.audit.rfc6962 import leaf_hash
from sovstack.audit.segments import list_segments
from sovstack.audit.tree import Frontier
from sovstack.audit.verify import verify_log
from tests.unit.audit.conftest import ORIGIN, make_record

N = 30  # entries; checkpoints at 10, 20 and 30 (and the empty one at 0)


def _segment(directory: Path) -> Path:
    return list_segments(directory)[0][1]


def _lines(directory: Path) -> list[bytes]:
    return _segment(directory).read_bytes().split(b"\n")[:-1]


def _write_lines(directory: Path, lines: list[bytes]) -> None:
    _segment(directory).write_bytes(b"".join(line + b"\n" for line in lines))


def _notes(directory: Path) -> list[str]:
    return split_notes((directory / "checkpoints").read_bytes())[0]


def _write_notes(directory: Path, notes: list[str]) -> None:
    (directory / "checkpoints").write_text("".join(n + "\n" for n in notes))


def change_one_byte(at: int) -> Callable[[Path, Ed25519PrivateKey], int]:
    def tamper(directory: Path, _: Ed25519PrivateKey) -> int:
        lines = _lines(directory)
        target = lines[at]
        pos = target.index(b'"subject":"') + len(b'"subject":"')
        lines[at] = target[:pos] + bytes([target[pos] ^ 0x01]) + target[pos + 1 :]
        _write_lines(directory, lines)
        return at

    return tamper


def delete_record(directory: Path, _: Ed25519PrivateKey) -> int:
    lines = _lines(directory)
    del lines[12]
    _write_lines(directory, lines)
    return 12


def swap_records(directory: Path, _: Ed25519PrivateKey) -> int:
    lines = _lines(directory)
    lines[5], lines[6] = lines[6], lines[5]
    _write_lines(directory, lines)
    return 5


def truncate_tail(directory: Path, _: Ed25519PrivateKey) -> int:
    _write_lines(directory, _lines(directory)[:25])
    return 25


def truncate_mid_entry(directory: Path, _: Ed25519PrivateKey) -> int:
    data = _segment(directory).read_bytes()
    _segment(directory).write_bytes(data[: data.rindex(b'{"index":27') + 40])
    return 27


def replace_checkpoint(directory: Path, _: Ed25519PrivateKey) -> int | None:
    notes = _notes(directory)
    old_root = notes[2].split("\n")[2]
    notes[2] = notes[2].replace(old_root, "A" * 43 + "=")
    _write_notes(directory, notes)
    return None


def sign_with_another_key(directory: Path, _: Ed25519PrivateKey) -> int | None:
    notes = _notes(directory)
    size, root = notes[-1].split("\n")[1:3]
    forged = Checkpoint(ORIGIN, int(size), base64.b64decode(root))
    notes[-1] = sign_checkpoint(forged, Ed25519PrivateKey.generate())
    _write_notes(directory, notes)
    return None


def replay_older_checkpoint(directory: Path, _: Ed25519PrivateKey) -> int | None:
    notes = _notes(directory)
    _write_notes(directory, [*notes, notes[1]])
    return 10


def rewrite_consistently_and_resign(directory: Path, key: Ed25519PrivateKey) -> int:
    # The attacker holds the signing key, rewrites entry 15 and re-chains and
    # re-signs everything after it: the older checkpoints still give it away.
    frontier, prev, rebuilt = Frontier(), GENESIS_PREV, []
    for i, line in enumerate(_lines(directory)):
        body = line[line.index(b'"record":') + len(b'"record":') : -1]
        if i == 15:
            body = body.replace(b'"subject":"alice"', b'"subject":"mallory"')
        entry = encode_entry(i, prev, body)
        rebuilt.append(entry)
        prev = leaf_hash(entry)
        frontier.append(prev)
    _write_lines(directory, rebuilt)
    notes = _notes(directory)
    notes[-1] = sign_checkpoint(Checkpoint(ORIGIN, frontier.size, frontier.root()), key)
    _write_notes(directory, notes)
    return 10


MATRIX: dict[str, Callable[[Path, Ed25519PrivateKey], int | None]] = {
    "one changed byte in the first record": change_one_byte(0),
    "one changed byte in a middle record": change_one_byte(14),
    "one changed byte in the last record": change_one_byte(N - 1),
    "a deleted record": delete_record,
    "two records swapped": swap_records,
    "a truncated tail": truncate_tail,
    "a tail cut inside an entry": truncate_mid_entry,
    "a replaced checkpoint": replace_checkpoint,
    "a checkpoint signed by another key": sign_with_another_key,
    "an older checkpoint replayed": replay_older_checkpoint,
    "history rewritten and re-signed with the log's own key": rewrite_consistently_and_resign,
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    directory = tmp_path_factory.mktemp("pristine") / "log"
    with AuditLog.open(directory, key, ORIGIN, 3600) as log:
        for i in range(N):
            log.append_sync(make_record(i))
            if (i + 1) % 10 == 0:
                log.publish()
    return directory, key


def test_the_untouched_log_verifies(pristine: tuple[Path, Ed25519PrivateKey]) -> None:
    directory, key = pristine
    report = verify_log(directory, key.public_key(), check_records=True)
    assert (report.entries, report.checkpoints, report.uncovered) == (N, 4, 0)


@pytest.mark.parametrize("case", list(MATRIX))
def test_every_tampering_is_detected_with_its_first_bad_index(
    case: str, pristine: tuple[Path, Ed25519PrivateKey], tmp_path: Path
) -> None:
    source, key = pristine
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    expected_index = MATRIX[case](directory, key)
    with pytest.raises(VerificationError) as caught:
        verify_log(directory, key.public_key())
    failure = caught.value
    if expected_index is not None:
        # A change to the last entry a checkpoint covers breaks no link after
        # it, so only the checkpoint interval can be named, ending at it.
        assert failure.first_bad_index == expected_index or (
            failure.first_bad_index is not None
            and failure.first_bad_index < expected_index
            and f"at the latest {expected_index}" in str(failure)
        ), str(failure)
    assert failure.evidence, "a failure carries its evidence"
    for note in (v for k, v in failure.evidence.items() if "checkpoint" in k and "\n" in v):
        assert re.match(rf"^{re.escape(ORIGIN)}\n\d+\n", note)


def test_a_rolled_back_copy_is_caught_with_a_checkpoint_kept_elsewhere(
    pristine: tuple[Path, Ed25519PrivateKey], tmp_path: Path
) -> None:
    source, key = pristine
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    kept = _notes(directory)[-1]
    _write_lines(directory, _lines(directory)[:20])  # truncate entries AND checkpoints
    _write_notes(directory, _notes(directory)[:3])
    assert verify_log(directory, key.public_key()).entries == 20  # consistent on its own
    trusted = (kept, open_checkpoint(kept, key.public_key()))
    with pytest.raises(VerificationError, match="truncated or rolled back") as caught:
        verify_log(directory, key.public_key(), trusted=trusted)
    assert caught.value.evidence["trusted_checkpoint"] == kept


def test_a_tampered_record_names_the_first_bad_index_and_the_consistency_proof(
    pristine: tuple[Path, Ed25519PrivateKey], tmp_path: Path
) -> None:
    source, key = pristine
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    change_one_byte(N - 1)(directory, key)
    with pytest.raises(VerificationError) as caught:
        verify_log(directory, key.public_key())
    evidence = caught.value.evidence
    assert {"checkpoint", "previous_checkpoint", "recomputed_root", "consistency_proof"} <= set(
        evidence
    )
    assert "does not join the two roots" in evidence["consistency_proof_result"]
