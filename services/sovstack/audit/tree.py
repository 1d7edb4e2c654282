"""Merkle tree roots over leaf hashes: a streaming frontier and subtree roots.

:class:`Frontier` is the compact range ``[0, size)``: the roots of the
perfect subtrees that make up the tree, left to right. Appending a leaf costs
one node hash on average and the root is folded from at most log2(size)
subtree roots, so the writer integrates and the verifier re-derives roots in
one pass over the leaves without keeping them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from sovstack.audit.rfc6962 import EMPTY_ROOT, NODE_PREFIX, node_hash

__all__ = ["Frontier", "largest_power_of_two_below", "subtree_root"]


class Frontier:
    """The perfect-subtree roots covering leaves ``[0, size)``."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (already hashed with the leaf prefix)."""
        stack = self._stack
        stack.append(leaf)
        self._size += 1
        n = self._size
        # Each trailing zero bit of the new size closes one perfect subtree.
        while not n & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """:meth:`append` each leaf hash in turn (the verifier's fast path)."""
        stack, size = self._stack, self._size
        push, pop = stack.append, stack.pop
        for leaf in leaves:
            push(leaf)
            size += 1
            n = size
            while not n & 1:
                right = pop()
                stack[-1] = sha256(NODE_PREFIX + stack[-1] + right).digest()
                n >>= 1
        self._size = size

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        acc = stack[-1]
        for left in reversed(stack[:-1]):
            acc = node_hash(left, acc)
        return acc


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) per RFC 6962 section 2.1, from leaf hashes."""
    if end <= start:
        return EMPTY_ROOT
    frontier = Frontier()
    for i in range(start, end):
        frontier.append(leaves[i])
    return frontier.root()
