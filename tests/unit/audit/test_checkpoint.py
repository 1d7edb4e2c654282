"""Checkpoints are C2SP signed notes that only the log's key can produce."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import CheckpointError, KeyFileError, load_public_key, load_signing_key
from sovstack.audit.checkpoint import (
    Checkpoint,
    key_id,
    open_checkpoint,
    sign_checkpoint,
    split_notes,
)
from sovstack.audit.keys import generate_signing_key
from sovstack.audit.rfc6962 import EMPTY_ROOT

ROOT = hashlib.sha256(b"root").digest()


def test_the_note_text_is_origin_size_root_then_a_signature_line() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("example.com/log", 42, ROOT), key)
    body, sigs = note.split("\n\n")
    assert body == f"example.com/log\n42\n{base64.b64encode(ROOT).decode()}"
    dash, name, sig = sigs.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", "example.com/log")
    raw = base64.b64decode(sig)
    assert len(raw) == 4 + 64
    pub = key.public_key()
    raw_pub = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # key id = SHA-256(name || 0x0A || 0x01 || public key)[:4]  (c2sp.org/signed-note)
    assert raw[:4] == hashlib.sha256(b"example.com/log\n\x01" + raw_pub).digest()[:4]
    assert raw[:4] == key_id("example.com/log", pub)
    pub.verify(raw[4:], (body + "\n").encode())
    assert open_checkpoint(note, pub) == Checkpoint("example.com/log", 42, ROOT)


def test_a_note_by_another_key_or_for_another_origin_is_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), other)
    with pytest.raises(CheckpointError, match="not signed by the given key"):
        open_checkpoint(note, key.public_key())
    mine = sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), key)
    with pytest.raises(CheckpointError, match=r"not 'example\.com/other'"):
        open_checkpoint(mine, key.public_key(), "example.com/other")


def test_an_altered_checkpoint_fails_its_signature() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), key)
    with pytest.raises(CheckpointError, match="does not verify") as caught:
        open_checkpoint(note.replace("\n5\n", "\n6\n"), key.public_key())
    assert "\n6\n" in caught.value.evidence["note"]


def test_cosignatures_by_other_keys_are_ignored() -> None:
    key, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), key)
    cosigned = note + sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), witness).split(
        "\n\n"
    )[1].replace("example.com/log", "witness.example")
    assert open_checkpoint(cosigned, key.public_key()).size == 5


@pytest.mark.parametrize(
    "note",
    [
        "",
        "example.com/log\n5\n",
        "example.com/log\nfive\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 x AAAA\n",
        "example.com/log\n05\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 x AAAA\n",
        "example.com/log\n5\nnot-base64\n\n\u2014 x AAAA\n",
        "example.com/log\n5\n" + base64.b64encode(b"short").decode() + "\n\n\u2014 x AAAA\n",
        "example com\n5\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 x AAAA\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(CheckpointError):
        open_checkpoint(note, Ed25519PrivateKey.generate().public_key())


def test_the_checkpoints_file_splits_into_notes_and_a_torn_tail() -> None:
    key = Ed25519PrivateKey.generate()
    notes = [sign_checkpoint(Checkpoint("o", n, EMPTY_ROOT), key) for n in (0, 1)]
    data = "".join(n + "\n" for n in notes).encode()
    assert split_notes(data) == (notes, len(data))
    torn = data + notes[0].encode()[:20]
    assert split_notes(torn) == (notes, len(data))


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    pub = generate_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_signing_key(path)
    assert load_public_key(pub) == key.public_key()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_signing_key(path)
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="mode 0640"):
        load_signing_key(path)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_public_key(tmp_path / "missing.pub")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(path)
