"""Inclusion and consistency proofs: published vectors, adversarial probes, properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sovstack.audit.errors import ProofError
from sovstack.audit.proofs import (
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from sovstack.audit.rfc6962 import EMPTY_ROOT, leaf_hash
from sovstack.audit.tree import subtree_root
from tests.unit.audit.test_rfc6962 import LEAVES, ROOTS

H = bytes.fromhex
HASHES = [leaf_hash(d) for d in LEAVES]
SOME_HASH = H("abacaba000000000000000000000000000000000000000000060061e00123456")

# (leaf index, tree size, audit path) published by transparency-dev/merkle.
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip

# (size1, size2, proof) published by transparency-dev/merkle.
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def _flip(proof: list[bytes], i: int, mask: int) -> list[bytes]:
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ mask]) + changed[i][1:]
    return changed


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_published_inclusion_proofs_are_built_and_verified(
    index: int, size: int, path: list[str]
) -> None:
    proof = [H(p) for p in path]
    assert inclusion_proof(HASHES, index, size) == proof
    verify_inclusion(HASHES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "path"), CONSISTENCY)
def test_published_consistency_proofs_are_built_and_verified(
    size1: int, size2: int, path: list[str]
) -> None:
    proof = [H(p) for p in path]
    assert consistency_proof(HASHES, size1, size2) == proof
    verify_consistency(size1, size2, ROOTS[size1 - 1], ROOTS[size2 - 1], proof)


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes
) -> dict[str, tuple[bytes, int, int, list[bytes], bytes]]:
    leaf = HASHES[index]
    probes = {
        "index - 1": (leaf, index - 1, size, proof, root),
        "index + 1": (leaf, index + 1, size, proof, root),
        "index ^ 2": (leaf, index ^ 2, size, proof, root),
        "size * 2": (leaf, index, size * 2, proof, root),
        "size / 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", index, size, proof, root),
        "other leaf": (leaf_hash(b"other"), index, size, proof, root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
    }
    for i in range(len(proof)):
        probes[f"proof[{i}] bit 3 flipped"] = (leaf, index, size, _flip(proof, i, 8), root)
    if proof:
        probes["removed node"] = (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        probes["inserted node"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    return probes


INCLUSION_CASES = [(1, 8), (6, 8), (2, 3), (2, 5), (0, 1), (4, 5), (7, 8)]


@pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
def test_every_corrupted_inclusion_proof_is_refused(index: int, size: int) -> None:
    root = ROOTS[size - 1]
    proof = inclusion_proof(HASHES, index, size)
    verify_inclusion(HASHES[index], index, size, proof, root)
    accepted = []
    for desc, (leaf, i, n, p, r) in _inclusion_probes(index, size, proof, root).items():
        try:
            verify_inclusion(leaf, i, n, p, r)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_an_empty_inclusion_proof_for_an_impossible_position_is_refused(
    index: int, size: int
) -> None:
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], root)


def test_a_single_leaf_tree_proves_itself_with_no_nodes() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)
    for bad_leaf, bad_root in [(b"", leaf), (leaf, b""), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(bad_leaf, 0, 1, [], bad_root)


def _consistency_probes(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> dict[str, tuple[int, int, bytes, bytes, list[bytes]]]:
    probes = {
        "size1 - 1": (size1 - 1, size2, root1, root2, proof),
        "size1 + 1": (size1 + 1, size2, root1, root2, proof),
        "size1 ^ 2": (size1 ^ 2, size2, root1, root2, proof),
        "size2 * 2": (size1, size2 * 2, root1, root2, proof),
        "size2 / 2": (size1, size2 // 2, root1, root2, proof),
        "wrong root1": (size1, size2, b"WrongRoot", root2, proof),
        "wrong root2": (size1, size2, root1, b"WrongRoot", proof),
        "random root1": (size1, size2, SOME_HASH, root2, proof),
        "swapped roots": (size1, size2, root2, root1, proof),
        "empty proof": (size1, size2, root1, root2, []),
        "trailing garbage": (size1, size2, root1, root2, [*proof, b""]),
        "trailing root1": (size1, size2, root1, root2, [*proof, root1]),
        "trailing root2": (size1, size2, root1, root2, [*proof, root2]),
        "preceding garbage": (size1, size2, root1, root2, [b"", *proof]),
        "preceding root1": (size1, size2, root1, root2, [root1, *proof]),
        "preceding root2": (size1, size2, root1, root2, [root2, *proof]),
        "preceding proof[0]": (size1, size2, root1, root2, [proof[0], *proof]),
        "truncated proof": (size1, size2, root1, root2, proof[:-1]),
    }
    for i in range(len(proof)):
        probes[f"proof[{i}] bit 4 flipped"] = (size1, size2, root1, root2, _flip(proof, i, 16))
    return probes


@pytest.mark.parametrize(
    ("size1", "size2"), [(1, 8), (6, 8), (2, 5), (6, 7), (3, 7), (4, 8), (1, 2), (7, 8)]
)
def test_every_corrupted_consistency_proof_is_refused(size1: int, size2: int) -> None:
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    proof = consistency_proof(HASHES, size1, size2)
    verify_consistency(size1, size2, root1, root2, proof)
    accepted = []
    for desc, (s1, s2, r1, r2, p) in _consistency_probes(size1, size2, root1, root2, proof).items():
        try:
            verify_consistency(s1, s2, r1, r2, p)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 5, EMPTY_ROOT, ROOTS[4], [], True),
        (3, 3, ROOTS[2], ROOTS[2], [], True),
        (3, 3, ROOTS[2], ROOTS[3], [], False),  # same size, two roots: a fork
        (3, 3, ROOTS[2], ROOTS[2], [EMPTY_ROOT], False),  # equal, but a proof given
        (0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT], False),
        (0, 1, SOME_HASH, ROOTS[0], [], False),  # not the empty root
        (1, 0, ROOTS[0], EMPTY_ROOT, [], False),  # back in time
        (5, 2, ROOTS[4], ROOTS[1], [], False),
        (1, 2, ROOTS[0], ROOTS[1], [], False),  # growth needs a proof
    ],
)
def test_edge_sizes_of_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    call: Callable[[], None] = lambda: verify_consistency(size1, size2, root1, root2, proof)  # noqa: E731 (one-line probe)
    if ok:
        call()
    else:
        with pytest.raises(ProofError):
            call()


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_leaf_of_any_tree_has_a_verifying_inclusion_proof(case: tuple[int, int]) -> None:
    size, index = case
    leaves = _leaves(size)
    root = subtree_root(leaves, 0, size)
    proof = inclusion_proof(leaves, index, size)
    verify_inclusion(leaves[index], index, size, proof, root)
    if size > 1:
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)


@given(
    st.integers(1, 300).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(0, 255))
    )
)
def test_any_prefix_is_provably_consistent_and_a_bit_flip_is_caught(
    case: tuple[int, int, int],
) -> None:
    size2, size1, pick = case
    leaves = _leaves(size2)
    root1, root2 = subtree_root(leaves, 0, size1), subtree_root(leaves, 0, size2)
    proof = consistency_proof(leaves, size1, size2)
    verify_consistency(size1, size2, root1, root2, proof)
    if proof:
        i = pick % len(proof)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, _flip(proof, i, 1 << (pick % 8)))


@given(st.integers(2, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
def test_a_fork_is_never_consistent(case: tuple[int, int]) -> None:
    size2, size1 = case
    leaves = _leaves(size2)
    forked = [*leaves[: size1 - 1], leaf_hash(b"rewritten"), *leaves[size1:]]
    proof = consistency_proof(forked, size1, size2)
    with pytest.raises(ProofError):
        verify_consistency(
            size1, size2, subtree_root(leaves, 0, size1), subtree_root(forked, 0, size2), proof
        )
