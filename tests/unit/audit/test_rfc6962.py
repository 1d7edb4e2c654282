"""RFC 6962 known answers: the hashes and roots every CT implementation agrees on."""

from __future__ import annotations

import hashlib

import pytest

from sovstack.audit.rfc6962 import EMPTY_ROOT, leaf_hash, node_hash
from sovstack.audit.tree import Frontier, subtree_root

# The eight leaves of the RFC 6962 / Certificate Transparency test tree.
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip

# Roots of the trees of the first 1..8 of those leaves (transparency-dev/merkle).
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip


def test_the_empty_tree_hash_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == EMPTY_ROOT


def test_an_empty_leaf_is_not_the_empty_tree() -> None:
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_leaf_and_node_known_answers() -> None:
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_and_node_use_distinct_prefixes() -> None:
    left, right = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert node_hash(left, right) != leaf_hash(left + right)
    assert node_hash(left, right) != node_hash(right, left)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_frontier_root_matches_the_published_roots(size: int) -> None:
    frontier = Frontier()
    for data in LEAVES[:size]:
        frontier.append(leaf_hash(data))
    assert frontier.size == size
    assert frontier.root() == ROOTS[size - 1]


@pytest.mark.parametrize("size", range(1, 9))
def test_subtree_root_matches_the_published_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in LEAVES]
    assert subtree_root(hashes, 0, size) == ROOTS[size - 1]


def test_extend_builds_the_same_tree_as_appending_one_by_one() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(300)]
    one_by_one, batched = Frontier(), Frontier()
    for n, leaf in enumerate(leaves, 1):
        one_by_one.append(leaf)
        if n in (1, 2, 3, 64, 65, 127, 128, 300):
            batched.extend(leaves[batched.size : n])
            assert (batched.size, batched.root()) == (n, one_by_one.root())
            assert batched.root() == subtree_root(leaves, 0, n)
