"""A witness cosigns what it accepted, in the C2SP tlog-cosignature (cosignature/v1) form."""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, CheckpointError, generate_signing_key, load_signing_key
from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from sovstack.audit.cosignature import cosign, cosignature_key_id, verify_cosignature
from sovstack.audit.witness import cosigned_path
from sovstack.cli import cli
from tests.unit.audit.conftest import ORIGIN, make_record

WITNESS = "witness.plant-a.example/audit-1"
T = 1_767_225_600


@pytest.fixture
def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _note(log_key: Ed25519PrivateKey) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, 42, bytes(range(32))), log_key)


def test_the_cosignature_is_the_spec_bytes(
    signing_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey
) -> None:
    note = _note(signing_key)
    cosigned = cosign(note, witness_key, WITNESS, timestamp=T)
    assert cosigned.startswith(note)
    line = cosigned[len(note) :]
    assert line.startswith(f"\u2014 {WITNESS} ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    raw = witness_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # key id with signature type 0x04; then the big-endian time; then Ed25519 over the message
    assert blob[:4] == hashlib.sha256(WITNESS.encode() + b"\n\x04" + raw).digest()[:4]
    assert blob[:4] == cosignature_key_id(WITNESS, witness_key.public_key())
    assert struct.unpack(">Q", blob[4:12]) == (T,)
    body = note[: note.index("\n\n") + 1]
    message = f"cosignature/v1\ntime {T}\n{body}".encode()
    witness_key.public_key().verify(blob[12:], message)  # raises if not
    assert verify_cosignature(cosigned, witness_key.public_key(), WITNESS) == T
    # The log's own signature still verifies: the cosignature line is passed over.
    assert open_checkpoint(cosigned, signing_key.public_key()).size == 42


def test_a_changed_note_or_time_fails(
    signing_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey
) -> None:
    cosigned = cosign(_note(signing_key), witness_key, WITNESS, timestamp=T)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignature(cosigned.replace("\n42\n", "\n43\n"), witness_key.public_key(), WITNESS)
    head, sig_line = cosigned.rsplit("\u2014 ", 1)
    name, blob_b64 = sig_line.split(" ")
    blob = bytearray(base64.b64decode(blob_b64))
    blob[11] ^= 1
    forged = f"{head}\u2014 {name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignature(forged, witness_key.public_key(), WITNESS)


def test_another_key_or_name_is_not_this_witness(
    signing_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey
) -> None:
    cosigned = cosign(_note(signing_key), witness_key, WITNESS, timestamp=T)
    with pytest.raises(CheckpointError, match="no cosignature"):
        verify_cosignature(cosigned, Ed25519PrivateKey.generate().public_key(), WITNESS)
    with pytest.raises(CheckpointError, match="no cosignature"):
        verify_cosignature(cosigned, witness_key.public_key(), "other.example/w")
    # The log's own signature (type 0x01) never counts as a cosignature by the same key.
    with pytest.raises(CheckpointError, match="no cosignature"):
        verify_cosignature(_note(signing_key), signing_key.public_key(), ORIGIN)


def test_the_witness_command_cosigns_and_the_check_verifies(tmp_path: Path) -> None:
    log_key_path, witness_key_path = tmp_path / "log.key", tmp_path / "witness.key"
    generate_signing_key(log_key_path)
    generate_signing_key(witness_key_path)
    log_dir, state = tmp_path / "log", tmp_path / "state"
    with AuditLog.open(log_dir, load_signing_key(log_key_path), ORIGIN, 3600) as log:
        for i in range(5):
            log.append_sync(make_record(i))
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["audit", "witness", str(log_dir), "--pubkey", f"{log_key_path}.pub",
         "--state", str(state), "--cosign-key", str(witness_key_path),
         "--cosign-name", WITNESS],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    note_file = cosigned_path(state, ORIGIN)
    assert f"cosigned as {WITNESS}" in result.output and note_file.is_file()
    check = [
        "audit", "verify-cosigned", str(note_file), "--pubkey", f"{log_key_path}.pub",
        "--witness-pubkey", f"{witness_key_path}.pub", "--witness-name", WITNESS,
    ]  # fmt: skip
    result = runner.invoke(cli, check)
    assert result.exit_code == 0, result.output
    assert "size 5 cosigned by" in result.output
    note_file.write_text(note_file.read_text().replace("\n5\n", "\n6\n"))
    assert runner.invoke(cli, check).exit_code == 1


def test_cosign_key_without_a_name_is_a_usage_error(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "w.key")
    (tmp_path / "log").mkdir()
    result = CliRunner().invoke(
        cli,
        ["audit", "witness", str(tmp_path / "log"), "--pubkey", str(tmp_path / "w.key.pub"),
         "--state", str(tmp_path / "s"), "--cosign-key", str(tmp_path / "w.key")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "go together" in result.output
