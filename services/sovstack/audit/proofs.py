"""RFC 6962 / RFC 9162 inclusion and consistency proofs: build and verify.

Builders work from the full list of leaf hashes (the CLI re-reads the log to
get them). Verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 and check
every length and size first, so a proof with a flipped bit, extra or missing
nodes, the wrong sizes or preceding garbage is refused with a
:class:`ProofError`, never accepted and never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence

from sovstack.audit.errors import ProofError
from sovstack.audit.rfc6962 import EMPTY_ROOT, HASH_SIZE, node_hash
from sovstack.audit.tree import largest_power_of_two_below, subtree_root

__all__ = [
    "consistency_proof",
    "inclusion_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of size {size} ({len(leaves)} leaves known)")
    return _path(leaves, index, 0, size)


def _path(leaves: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*_path(leaves, m, start, start + k), subtree_root(leaves, start + k, end)]
    return [*_path(leaves, m - k, start + k, end), subtree_root(leaves, start, start + k)]


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the one of ``size2``."""
    if not 0 <= size1 <= size2 <= len(leaves):
        raise ValueError(f"cannot prove {size1} -> {size2} with {len(leaves)} leaves")
    if size1 in (0, size2):
        return []
    return _subproof(leaves, size1, 0, size2, True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [subtree_root(leaves, start, end)]
    k = largest_power_of_two_below(n)
    if m <= k:
        left = _subproof(leaves, m, start, start + k, whole)
        return [*left, subtree_root(leaves, start + k, end)]
    right = _subproof(leaves, m - k, start + k, end, False)
    return [*right, subtree_root(leaves, start, start + k)]


def _check_hashes(what: str, *hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}: a hash of {len(h)} bytes, expected {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``."""
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes("inclusion proof", leaf, *proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} nodes: too many for this tree")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} nodes: too few for this tree")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    _check_hashes("root", root)
    got = root_from_inclusion_proof(leaf, index, size, proof)
    if got != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} leads to another root",
            first_bad_index=index,
            evidence={"expected_root": root.hex(), "computed_root": got.hex()},
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    Equal sizes need equal roots and an empty proof (two roots for one size
    are a fork); the empty tree (``size1 == 0``, the empty root) is a prefix
    of every tree.
    """
    _check_hashes("consistency proof", root1, root2, *proof)
    if size1 < 0 or size2 < size1:
        raise ProofError(f"size {size2} is smaller than {size1}: the log went back in time")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}: the log forked")
        return
    if size1 == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        if root1 != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be the empty root")
        return
    if not proof:
        raise ProofError(f"empty consistency proof for {size1} -> {size2}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof {size1} -> {size2} has too many nodes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof {size1} -> {size2} has too few nodes")
    if fr != root1 or sr != root2:
        raise ProofError(
            f"consistency proof {size1} -> {size2} does not join the two roots",
            evidence={
                "root1": root1.hex(),
                "computed_root1": fr.hex(),
                "root2": root2.hex(),
                "computed_root2": sr.hex(),
            },
        )
