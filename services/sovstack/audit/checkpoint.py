"""Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note).

A checkpoint's note text is three lines: the log's origin, the tree size in
decimal, and the base64 RFC 6962 root. The log signs it with Ed25519 under
the key name = origin; a signature line is ``— <origin> base64(key id ||
signature)`` where key id = SHA-256(name || 0x0A || 0x01 || public key)[:4].

The log keeps every checkpoint it publishes in the append-only file
``checkpoints``: signed notes, each followed by one empty line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sovstack.audit.errors import CheckpointError
from sovstack.audit.rfc6962 import HASH_SIZE

__all__ = [
    "Checkpoint",
    "check_origin",
    "key_id",
    "open_checkpoint",
    "sign_checkpoint",
    "split_note",
    "split_notes",
]

_ED25519: Final = b"\x01"
_DASH: Final = "\u2014 "
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


def check_origin(origin: str) -> str:
    """``origin`` if it can name a log and its key (non-empty, no spaces, no '+')."""
    if not origin or len(origin) > 255 or re.search(r"[\s+\x00-\x1f\u2014]", origin):
        raise CheckpointError(
            f"origin {origin!r} must be 1-255 characters without spaces, '+' or control characters"
        )
    return origin


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement: the first ``size`` records have this RFC 6962 ``root``."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    def describe(self) -> str:
        return f"size {self.size}, root {self.root.hex()}"


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte C2SP key id of an Ed25519 key under ``name``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The signed note text of ``checkpoint``, signed by ``key`` under its origin."""
    body = checkpoint.body()
    signature = key_id(checkpoint.origin, key.public_key()) + key.sign(body.encode())
    return f"{body}\n{_DASH}{checkpoint.origin} {base64.b64encode(signature).decode()}\n"


def _parse_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise CheckpointError("a checkpoint needs origin, size and root lines")
    origin, size, root_b64 = lines[0], lines[1], lines[2]
    check_origin(origin)
    if not _SIZE.match(size):
        raise CheckpointError(f"checkpoint size {size!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"checkpoint root {root_b64!r} is not base64") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin, int(size), root)


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A signed note's body and its signature lines as (key name, decoded signature)."""
    if any(c < " " and c != "\n" for c in note):
        raise CheckpointError("a signed note may not contain control characters")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise CheckpointError("not a signed note: no signature block", evidence={"note": note})
    signatures = []
    for line in note[split + 2 : -1].split("\n"):
        if not line.startswith(_DASH) or line.count(" ") != 2:
            raise CheckpointError(f"malformed signature line {line!r}", evidence={"note": note})
        name, sig_b64 = line[len(_DASH) :].split(" ")
        try:
            signatures.append((name, base64.b64decode(sig_b64, validate=True)))
        except binascii.Error as exc:
            raise CheckpointError("signature is not base64", evidence={"note": note}) from exc
    return note[: split + 1], signatures


def open_checkpoint(
    note: str, public_key: Ed25519PublicKey, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in signed ``note``, once its signature by ``public_key`` verifies.

    Signatures by other keys (e.g. witness cosignatures) are ignored; at least
    one signature must be this key's under the checkpoint's origin. When
    ``origin`` is given the checkpoint must be for that log.
    """
    body, signatures = split_note(note)
    checkpoint = _parse_body(body)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}", evidence={"note": note}
        )
    wanted = key_id(checkpoint.origin, public_key)
    for name, sig in signatures:
        if name != checkpoint.origin or sig[:4] != wanted:
            continue  # another key's signature, e.g. a witness cosignature
        try:
            public_key.verify(sig[4:], body.encode())
        except InvalidSignature as exc:
            raise CheckpointError(
                f"the signature on checkpoint {checkpoint.describe()} does not verify: "
                "the checkpoint was altered",
                evidence={"note": note},
            ) from exc
        return checkpoint
    raise CheckpointError(
        f"checkpoint {checkpoint.describe()} is not signed by the given key"
        f" for {checkpoint.origin}",
        evidence={"note": note},
    )


def split_notes(data: bytes) -> tuple[list[str], int]:
    """Split the ``checkpoints`` file into notes; also return the length of the complete part.

    Bytes past that length are an unfinished note (a torn append).
    """
    notes: list[str] = []
    pos = 0
    while True:
        body_end = data.find(b"\n\n", pos)
        if body_end < 0:
            break
        sig_end = data.find(b"\n\n", body_end + 2)
        if sig_end < 0:
            break
        try:
            notes.append(data[pos : sig_end + 1].decode("utf-8"))
        except UnicodeDecodeError:
            break
        pos = sig_end + 2
    return notes, pos
