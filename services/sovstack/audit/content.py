"""Prompt and completion content, encrypted with the site key (AES-256-GCM).

Content is stored only when a policy obligation asks for it. Each value is
encrypted under a fresh random 96-bit nonce; the stored dict names the key
by its id (never the key itself), and the key id is bound to the ciphertext
as associated data, so relabelling a ciphertext with another key id fails.

A site key file is JSON ``{"v": 1, "key_id": ..., "key": base64}``, 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sovstack.audit.errors import ContentError, KeyFileError
from sovstack.core import keyfiles

__all__ = [
    "CONTENT_ALG",
    "decrypt_content",
    "encrypt_content",
    "generate_site_key",
    "load_site_key",
]

CONTENT_ALG: Final = "AES-256-GCM"
_AAD_PREFIX: Final = b"sovstack-audit-content/v1\n"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _aad(key_id: str) -> bytes:
    return _AAD_PREFIX + key_id.encode()


def _check_key(key: bytes, key_id: str) -> None:
    if len(key) != 32:
        raise ContentError(f"an AES-256 key is 32 bytes, not {len(key)}")
    if not _KEY_ID.match(key_id):
        raise ContentError(f"key id {key_id!r} must be 1-64 of A-Z a-z 0-9 . _ -")


def encrypt_content(key: bytes, key_id: str, plaintext: str) -> dict[str, str]:
    """Encrypt ``plaintext`` (UTF-8) for storage in a record's ``content``.

    Returns ``{"alg", "key_id", "nonce", "ciphertext"}`` (base64 values). The
    key never appears in the result.
    """
    _check_key(key, key_id)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(key_id))
    return {
        "alg": CONTENT_ALG,
        "key_id": key_id,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }


def decrypt_content(keys: Mapping[str, bytes], sealed: Mapping[str, Any]) -> str:
    """Decrypt a value made by :func:`encrypt_content` with the key its ``key_id`` names.

    ``keys`` maps key ids to keys. Raises :class:`ContentError` when the key
    is not given, the value is malformed, or the ciphertext was altered.
    """
    if sealed.get("alg") != CONTENT_ALG:
        raise ContentError(f"unknown content algorithm {sealed.get('alg')!r}")
    key_id = sealed.get("key_id")
    if not isinstance(key_id, str) or key_id not in keys:
        raise ContentError(f"no site key with id {key_id!r} was given")
    try:
        nonce = base64.b64decode(str(sealed["nonce"]), validate=True)
        data = base64.b64decode(str(sealed["ciphertext"]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise ContentError("encrypted content is malformed") from exc
    try:
        plain = AESGCM(keys[key_id]).decrypt(nonce, data, _aad(key_id))
    except (InvalidTag, ValueError) as exc:
        raise ContentError(f"content under key {key_id!r} does not decrypt: altered") from exc
    return plain.decode("utf-8")


def generate_site_key(path: Path, key_id: str | None = None) -> str:
    """Write a new random 256-bit site key to ``path`` (0600); return its key id."""
    key = os.urandom(32)
    if key_id is None:
        key_id = "site-" + hashlib.sha256(b"key id\n" + key).hexdigest()[:12]
    _check_key(key, key_id)
    doc = {"v": 1, "key_id": key_id, "key": base64.b64encode(key).decode()}
    keyfiles.write_private(path, (json.dumps(doc) + "\n").encode(), error=KeyFileError)
    return key_id


def load_site_key(path: Path) -> tuple[str, bytes]:
    """The ``(key_id, key)`` in a site key file; :class:`KeyFileError` if unsafe or malformed."""
    data = keyfiles.read_private(path, "site key", error=KeyFileError)
    try:
        doc = json.loads(data)
        key_id, key = doc["key_id"], base64.b64decode(doc["key"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KeyFileError(f"{path} is not a site key file") from exc
    if not isinstance(key_id, str) or len(key) != 32 or not _KEY_ID.match(key_id):
        raise KeyFileError(f"{path} does not hold a 256-bit key with a valid key id")
    return key_id, key
