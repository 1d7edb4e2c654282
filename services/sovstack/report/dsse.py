"""``report.dsse.json``: one DSSE envelope (Ed25519) over an in-toto Statement v1.

The statement's subjects are every other file of the report folder, each
with the SHA-256 of its raw bytes; the predicate holds the verdict, the
catalogue's digest, the audit checkpoints, tool versions and key
fingerprints. The signature is over DSSE's pre-authentication encoding
(PAE) of the payload type and the payload bytes, so re-encoding the JSON,
even by whitespace, breaks it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ENVELOPE_NAME",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "EnvelopeError",
    "fingerprint",
    "open_envelope",
    "pae",
    "sign_statement",
]

ENVELOPE_NAME: Final = "report.dsse.json"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://sovstack.invalid/audit-report/v1"  # a name, never fetched


class EnvelopeError(ValueError):
    """The envelope is malformed, truncated, or its signature does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def fingerprint(public: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw public key: the key id in the envelope."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign_statement(
    subjects: dict[str, str], predicate: dict[str, Any], key: Ed25519PrivateKey
) -> bytes:
    """The envelope's bytes for a statement over ``subjects`` (name -> sha256 hex)."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    payload = json.dumps(statement, indent=2, sort_keys=True, ensure_ascii=False).encode()
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": fingerprint(key.public_key()),
                "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode(),
            }
        ],
    }
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


def open_envelope(data: bytes, public: Ed25519PublicKey) -> dict[str, Any]:
    """The statement in the envelope ``data``, once a signature by ``public`` verifies."""
    try:
        envelope = json.loads(data)
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise EnvelopeError(f"not a whole DSSE envelope (truncated or malformed): {exc}") from exc
    if payload_type != PAYLOAD_TYPE:
        raise EnvelopeError(f"payload type {payload_type!r} is not {PAYLOAD_TYPE!r}")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("the envelope carries no signature")
    expected = fingerprint(public)
    for entry in signatures:
        try:
            signature = base64.b64decode(entry["sig"], validate=True)
            public.verify(signature, pae(payload_type, payload))
        except (KeyError, TypeError, binascii.Error, InvalidSignature):
            continue
        break
    else:
        keyids = sorted({str(e.get("keyid")) for e in signatures if isinstance(e, dict)})
        if expected not in keyids:
            raise EnvelopeError(
                f"signed by another key ({', '.join(keyids)}), not the given one ({expected})"
            )
        raise EnvelopeError("the signature does not verify: the payload was changed after signing")
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise EnvelopeError("the signed payload is not JSON") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(f"the signed payload is not an in-toto {STATEMENT_TYPE}")
    return statement
