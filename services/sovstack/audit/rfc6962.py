"""RFC 6962 Merkle tree hashing: the only hashing the writer and verifier share.

A leaf is hashed as ``SHA-256(0x00 || data)`` and an interior node as
``SHA-256(0x01 || left || right)``; the distinct prefixes make a leaf hash
impossible to pass off as a node hash (second-preimage resistance). The root
of the empty tree is the SHA-256 of the empty string.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Final

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "LEAF_PREFIX", "NODE_PREFIX", "leaf_hash", "node_hash"]

LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
HASH_SIZE: Final = 32
EMPTY_ROOT: Final = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf's data."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node from its two children's hashes."""
    return sha256(NODE_PREFIX + left + right).digest()
