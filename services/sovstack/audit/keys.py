"""Ed25519 key files for signing checkpoints.

The private key is PKCS#8 PEM, created 0600 and refused when others may
read it; the public key (``<key>.pub``, SubjectPublicKeyInfo PEM) is all a
verifier or witness needs.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sovstack.audit.errors import KeyFileError
from sovstack.core import keyfiles

__all__ = ["generate_signing_key", "load_public_key", "load_signing_key", "public_key_path"]


def public_key_path(private_path: Path) -> Path:
    """Where :func:`generate_signing_key` puts the public half of ``private_path``."""
    return private_path.with_name(private_path.name + ".pub")


def generate_signing_key(path: Path) -> Path:
    """Write a new Ed25519 key to ``path`` (0600) and its public key beside it; return that."""
    pub_path = public_key_path(path)
    for existing in (path, pub_path):
        if existing.exists() or existing.is_symlink():  # neither half is written then
            raise KeyFileError(f"{existing} already exists: refusing to overwrite a key or secret")
    key = Ed25519PrivateKey.generate()
    keyfiles.write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        error=KeyFileError,
    )
    keyfiles.write_public(
        pub_path,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        error=KeyFileError,
    )
    return pub_path


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; :class:`KeyFileError` if unsafe or not one."""
    data = keyfiles.read_private(path, "signing key", error=KeyFileError)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in ``path`` (PEM, as written by ``sovstack audit keygen``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"public key {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key
