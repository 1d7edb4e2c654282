"""The key pair that signs the policy bundle (``sovstack policy keygen``).

ECDSA P-256, the ``ES256`` algorithm OPA verifies bundles with. The private
key is written readable by its owner only, and never overwritten unless asked:
whoever holds it decides what every OPA on the site enforces. Keep it off the
air-gapped nodes; they get the public key only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sovstack.core import keyfiles
from sovstack.policy.tools import PolicyError

__all__ = ["ALGORITHM", "KeyPair", "generate", "key_pair"]

ALGORITHM = "ES256"
PRIVATE_NAME = "policy-signing.key"
PUBLIC_NAME = "policy-signing.pub"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def key_pair(directory: Path) -> KeyPair:
    """Where the key pair lives in ``directory`` (whether or not it exists yet)."""
    return KeyPair(directory / PRIVATE_NAME, directory / PUBLIC_NAME)


def generate(directory: Path, force: bool = False) -> KeyPair:
    """Make a new key pair in ``directory``; refuse to replace one unless ``force``."""
    pair = key_pair(directory)
    existing = [p for p in (pair.private, pair.public) if p.exists()]
    if existing and not force:
        raise PolicyError(
            f"{existing[0]} already exists: a new key would orphan every bundle it signed "
            "(pass --force to replace it anyway)"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = ec.generate_private_key(ec.SECP256R1())
    keyfiles.write_private(
        pair.private,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        overwrite=force,
        error=PolicyError,
    )
    keyfiles.write_public(
        pair.public,
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        overwrite=force,
        error=PolicyError,
    )
    return pair
