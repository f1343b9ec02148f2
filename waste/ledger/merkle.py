"""The RFC 6962 / RFC 9162 Merkle tree of the transparency log.

Hashes: ``leaf = SHA-256(0x00 || entry)``, ``node = SHA-256(0x01 || left || right)``,
the empty tree's root is ``SHA-256("")`` (RFC 9162 §2.1.1).

Storage model: only *perfect* subtrees are stored, as nodes ``(level, index)``
covering leaves ``[index·2^level, (index+1)·2^level)``; level 0 holds the leaf
hashes. A stored node never changes, and any subtree the RFC 6962 recursion
visits is either perfect (one read) or has a perfect left part and a smaller
right part, so roots and proofs read O(log n) nodes through ``get_node``.

The verifiers follow RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency),
with the cases the RFC leaves to the caller made explicit: index ≥ size fails;
a consistency proof between equal sizes, or from the empty tree, must be empty
(and the empty tree's root must be ``SHA-256("")``); every hash is 32 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root hash of the empty tree."""

GetNode = Callable[[int, int], bytes]
"""``get_node(level, index)``: the stored hash of a perfect subtree."""


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of a list of leaf hashes, computed directly (the reference)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        # Pairing left to right and carrying an odd last node up unchanged yields
        # exactly RFC 6962's split at the largest power of two below n.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def nodes_completed_by_append(
    index: int, leaf: bytes, get_node: GetNode
) -> list[tuple[int, int, bytes]]:
    """The perfect nodes ``(level, index, hash)`` to store when leaf ``index`` is appended."""
    if index < 0:
        raise ValueError("leaf index must be ≥ 0")
    out = [(0, index, leaf)]
    level, position, digest = 0, index, leaf
    while position & 1:
        digest = node_hash(get_node(level, position - 1), digest)
        level += 1
        position >>= 1
        out.append((level, position, digest))
    return out


def subtree_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH of leaves ``[start, end)``; O(log n) reads for the ranges RFC 6962 visits."""
    n = end - start
    if n <= 0 or start < 0:
        raise ValueError(f"empty or negative leaf range [{start}, {end})")
    if n & (n - 1) == 0 and start % n == 0:
        return get_node(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(
        subtree_hash(start, start + k, get_node), subtree_hash(start + k, end, get_node)
    )


def root_hash(size: int, get_node: GetNode) -> bytes:
    """The root hash of the tree of the first ``size`` leaves."""
    if size < 0:
        raise ValueError("tree size must be ≥ 0")
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, get_node)


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]): sibling hashes, leaf level first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    # Walk down from the root collecting siblings, then reverse to leaf-first order.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree_hash(start + k, end, get_node))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, get_node))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old: int, new: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[0:new]); empty when ``old`` is 0 or equals ``new``."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    start, end, m = 0, new, old
    complete = True  # SUBPROOF's b: whether [start, start+m) is the old tree's own root
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_hash(start + k, end, get_node))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, get_node))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree_hash(start, end, get_node))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether ``proof`` shows leaf ``index`` is in the tree ``(size, root)``."""
    if not 0 <= index < size or not _all_hashes([leaf, root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows tree ``old`` is a prefix of tree ``new``."""
    if not 0 <= old_size <= new_size or not _all_hashes([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _all_hashes(values: Sequence[bytes]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)
