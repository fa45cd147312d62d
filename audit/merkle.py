"""RFC 9162 Merkle tree hashing, proofs and their verification, free of any storage.

Leaves are hashed ``SHA-256(0x00 || leaf)`` and interior nodes ``SHA-256(0x01 || left ||
right)`` (RFC 9162, section 2.1.1), so a leaf can never pass for a node. Proofs are built from
the hashes of *perfect* subtrees, ``node(level, index)`` covering leaves ``[index * 2**level,
(index + 1) * 2**level)``: those never change once the log holds their last leaf, so a store
may keep them (see :mod:`audit.tiles`) and answer a proof for any past tree size.

Building a proof takes two steps: the ``*_ranges`` functions say which subtree hashes it holds
(each a ``[start, end)`` range of leaves), :func:`range_nodes` says which perfect subtrees make
up each range, and :func:`range_hash` folds their hashes. The ``verify_*`` functions are the
RFC's verification algorithms (sections 2.1.3.2 and 2.1.4.2), shared with clients.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree, MTH({}) (RFC 9162, section 2.1.1)."""

Node = tuple[int, int]
"""A perfect subtree: (level, index), covering ``2**level`` leaves from ``index * 2**level``."""
Range = tuple[int, int]
"""Leaves ``[start, end)``."""


class ProofError(ValueError):
    """A proof does not verify, or was asked for sizes that cannot have one."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf (or same-level node) hashes, straight from the definition."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes make up MTH of leaves ``[start, end)``, left to right.

    Valid for the ranges RFC 9162's recursion produces: ``start`` is a multiple of the
    smallest power of two at least ``end - start``.
    """
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hash(nodes: Sequence[bytes]) -> bytes:
    """Fold the hashes :func:`range_nodes` named, right to left, as MTH's recursion does."""
    result = nodes[-1]
    for left in reversed(nodes[:-1]):
        result = node_hash(left, result)
    return result


def frontier(size: int) -> list[Node]:
    """The perfect subtrees making up a tree of ``size`` leaves, largest first."""
    return range_nodes(0, size) if size else []


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtree hashes of PATH(index, D[size]), leaf to root (RFC 9162, 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtree hashes of PROOF(first, D[second]), as the RFC lists them (2.1.4.1)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def build_proof(
    ranges: Iterable[Range], nodes: Callable[[Sequence[Node]], dict[Node, bytes]]
) -> list[bytes]:
    """The hashes of ``ranges``, from one lookup of every perfect subtree they need."""
    parts = [range_nodes(start, end) for start, end in ranges]
    found = nodes(sorted({node for part in parts for node in part}))
    return [range_hash([found[node] for node in part]) for part in parts]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162, 2.1.3.2: raise :class:`ProofError` unless ``leaf`` (a leaf hash) is in."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
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
        raise ProofError("the inclusion proof is too short")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162, 2.1.4.2: raise :class:`ProofError` unless ``second`` extends ``first``."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("the roots of equal sizes differ")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is itself a node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
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
        raise ProofError("the consistency proof is too short")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")


class Frontier:
    """The right edge of a growing tree (one hash per set bit of its size), for a scan.

    Appending costs amortised one node hash; the root is available at any size.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []  # perfect subtree hashes, largest first

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash."""
        self._stack.append(leaf)
        size = self.size
        while size & 1:
            right = self._stack.pop()
            self._stack[-1] = node_hash(self._stack[-1], right)
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        return range_hash(self._stack) if self._stack else EMPTY_ROOT
