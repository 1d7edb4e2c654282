"""Ed25519 signatures over ``manifest.json``, and the key files that make them.

``manifest.sig`` is one line of text::

    ed25519 <key id> <base64 signature>

The key id (the first 16 hex digits of the SHA-256 of the raw public key) is
only a hint that lets a refusal say which key signed; the signature itself is
always checked against the public key the operator gave, never against a key
the bundle names.

Key files are those of ``sovstack audit keygen``: the private key is PKCS#8
PEM created 0600 (and refused if others may read it), the public key sits
beside it as ``<key>.pub``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sovstack.audit import keys as key_files
from sovstack.audit.errors import KeyFileError
from sovstack.bundle.errors import BundleKeyError

__all__ = [
    "SIGNATURE_SIZE",
    "check_signature",
    "generate_key",
    "key_id",
    "load_private",
    "load_public",
    "sign",
]

SIGNATURE_SIZE = 64
_SCHEME = "ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: Path) -> Path:
    """Write a new signing key to ``path`` (0600) and ``path``.pub; return the public key's path."""
    try:
        return key_files.generate_signing_key(path)
    except KeyFileError as exc:
        raise BundleKeyError(str(exc)) from exc


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        return key_files.load_signing_key(path)
    except KeyFileError as exc:
        raise BundleKeyError(f"{exc} (make one with 'sovstack bundle keygen')") from exc


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        return key_files.load_public_key(path)
    except KeyFileError as exc:
        raise BundleKeyError(str(exc)) from exc


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The content of ``manifest.sig`` for these manifest bytes."""
    signature = base64.b64encode(key.sign(manifest)).decode("ascii")
    return f"{_SCHEME} {key_id(key.public_key())} {signature}\n".encode("ascii")


def check_signature(manifest: bytes, sig_file: bytes, public: Ed25519PublicKey) -> str | None:
    """``None`` if ``sig_file`` is a valid signature of ``manifest`` by ``public``, else why not."""
    try:
        scheme, signer, encoded = sig_file.decode("ascii").strip().split(" ")
    except (UnicodeDecodeError, ValueError):
        return f"malformed or truncated: expected one line '{_SCHEME} <key id> <base64 signature>'"
    if scheme != _SCHEME:
        return f"signature scheme {scheme!r} is not {_SCHEME!r}"
    try:
        signature = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return "malformed or truncated: the signature is not valid base64"
    if len(signature) != SIGNATURE_SIZE:
        return (
            f"truncated or padded: the signature has {len(signature)} bytes, "
            f"an Ed25519 signature has {SIGNATURE_SIZE}"
        )
    try:
        public.verify(signature, manifest)
    except InvalidSignature:
        expected = key_id(public)
        if signer != expected:
            return (
                f"signed by another key (key id {signer}), not by the given public key "
                f"(key id {expected})"
            )
        return "the signature does not match manifest.json: the manifest was changed after signing"
    return None
