"""Witness cosignatures on checkpoints (c2sp.org/tlog-cosignature, cosignature/v1, Ed25519).

A witness that accepted a checkpoint (its signature and its consistency with
what the witness accepted before both checked: :func:`sovstack.audit.witness.witness`)
states so by adding a signature line of its own to the note::

    — <witness name> base64(key id || uint64 big-endian time || Ed25519 signature)

over the message ``"cosignature/v1\\ntime <time>\\n" + <the note body>``, where
key id = SHA-256(name || 0x0A || 0x04 || public key)[:4]: signature type 0x04,
so a cosignature can never pass for the log's own signature (type 0x01).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sovstack.audit.checkpoint import check_origin, split_note
from sovstack.audit.errors import CheckpointError

__all__ = ["cosign", "cosignature_key_id", "verify_cosignature"]

_COSIGNATURE_V1: Final = b"\x04"
_DASH: Final = "\u2014 "
_MAX_TIME: Final = 2**63 - 1


def cosignature_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of a cosigner's Ed25519 key under ``name``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _COSIGNATURE_V1 + raw).digest()[:4]


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(note: str, key: Ed25519PrivateKey, name: str, timestamp: int | None = None) -> str:
    """``note`` with this witness's cosignature line added.

    The caller MUST have verified the note's checkpoint (signature and
    consistency) first: a cosignature says the witness did.
    """
    check_origin(name)
    when = int(time.time()) if timestamp is None else timestamp
    if not 0 <= when <= _MAX_TIME:
        raise CheckpointError(f"cosignature time {when} is out of range")
    body, _ = split_note(note)
    signature = key.sign(_message(body, when))
    blob = cosignature_key_id(name, key.public_key()) + struct.pack(">Q", when) + signature
    return f"{note}{_DASH}{name} {base64.b64encode(blob).decode()}\n"


def verify_cosignature(note: str, public_key: Ed25519PublicKey, name: str) -> int:
    """The time of ``name``'s cosignature on ``note``, once it verifies with ``public_key``.

    Other signature lines (the log's own, other witnesses') are passed over;
    :class:`CheckpointError` if no line is this cosigner's or its signature is bad.
    """
    body, signatures = split_note(note)
    wanted = cosignature_key_id(name, public_key)
    for signer, blob in signatures:
        if signer != name or blob[:4] != wanted:
            continue
        if len(blob) != 4 + 8 + 64:
            raise CheckpointError(
                f"cosignature by {name} is {len(blob)} bytes, not 76", evidence={"note": note}
            )
        (when,) = struct.unpack(">Q", blob[4:12])
        try:
            public_key.verify(blob[12:], _message(body, when))
        except InvalidSignature as exc:
            raise CheckpointError(
                f"the cosignature by {name} does not verify: note or time altered",
                evidence={"note": note},
            ) from exc
        if when > _MAX_TIME:
            raise CheckpointError(f"cosignature time {when} is out of range")
        return int(when)
    raise CheckpointError(f"the note carries no cosignature by {name}", evidence={"note": note})
