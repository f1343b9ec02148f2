"""The tree pass of ``verify_log``: recompute the Merkle tree leaf by leaf (pure: no database).

Leaves are fed in index order. Each leaf hash is recomputed from the stored entry
bytes; a stack of perfect subtrees then yields every perfect node exactly when
its last leaf arrives (the nodes ``nodes_completed_by_append`` stores), each
compared with the stored node. Memory is O(log n). A mismatch is reported where
it starts: a node whose children already differ is not reported again, so one
changed leaf gives one finding, not one per level. The root at every checkpoint
size is folded from the stack when the stream passes that size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from waste.ledger.chaincheck import Finding
from waste.ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash

NodeMap = Mapping[tuple[int, int], bytes]
"""Stored nodes ``(level, index) → hash`` covering at least the leaves being fed."""


@dataclass
class _Subtree:
    level: int
    index: int
    digest: bytes | None  # None: neither recomputable nor stored
    bad: bool  # a problem was reported at or below this subtree


class TreeCheck:
    """Recomputes the tree of a log of ``size`` leaves and compares it with the stored one."""

    def __init__(self, size: int, emit: Callable[[Finding], None]) -> None:
        self.size = size
        self.next_index = 0
        self._emit = emit
        self._stack: list[_Subtree] = []

    def leaf(self, index: int, entry: bytes, stored_leaf: bytes, nodes: NodeMap) -> None:
        """Feed leaf ``index`` (the next one) with its entry bytes and stored leaf hash."""
        self._expect(index)
        digest = leaf_hash(entry)
        node = nodes.get((0, index))
        bad = digest != stored_leaf
        if bad:
            if node == stored_leaf:
                what = (
                    "entry bytes changed: they no longer hash to the leaf hash stored with "
                    f"them and in node (0, {index})"
                )
            elif node == digest:
                what = "its stored leaf hash changed (the entry bytes and the tree agree)"
            else:
                what = "the entry bytes do not hash to the stored leaf hash"
            self._emit(Finding(f"leaf {index}", what))
        self._push(_Subtree(0, index, digest, bad), nodes)

    def missing(self, index: int, nodes: NodeMap) -> None:
        """Feed a leaf that has no row; the tree goes on with its stored node, if any."""
        self._expect(index)
        self._push(_Subtree(0, index, None, True), nodes)

    def root(self) -> tuple[bytes | None, bool]:
        """The root of the leaves fed so far, and whether a problem was found below it."""
        if not self._stack:
            return EMPTY_ROOT, False
        digest = self._stack[-1].digest
        bad = self._stack[-1].bad
        for subtree in reversed(self._stack[:-1]):
            bad = bad or subtree.bad
            if digest is None or subtree.digest is None:
                digest = None
            else:
                digest = node_hash(subtree.digest, digest)
        return digest, bad

    def _expect(self, index: int) -> None:
        if index != self.next_index:
            raise ValueError(f"leaf {index} fed where leaf {self.next_index} was due")
        self.next_index += 1

    def _push(self, subtree: _Subtree, nodes: NodeMap) -> None:
        self._compare(subtree, nodes, children_bad=subtree.bad)
        stack = self._stack
        stack.append(subtree)
        while len(stack) > 1 and stack[-1].level == stack[-2].level:
            right = stack.pop()
            left = stack.pop()
            digest = None
            if left.digest is not None and right.digest is not None:
                digest = node_hash(left.digest, right.digest)
            parent = _Subtree(left.level + 1, left.index // 2, digest, left.bad or right.bad)
            self._compare(parent, nodes, children_bad=parent.bad)
            stack.append(parent)

    def _compare(self, subtree: _Subtree, nodes: NodeMap, *, children_bad: bool) -> None:
        where = f"node ({subtree.level}, {subtree.index})"
        stored = nodes.get((subtree.level, subtree.index))
        if stored is None:
            self._emit(Finding(where, "missing from log_nodes"))
            subtree.bad = True
            return
        if subtree.digest is None:
            subtree.digest = stored  # unverifiable (a leaf is missing): go on with the stored
            return
        if stored != subtree.digest:
            if not children_bad:
                self._emit(Finding(where, "differs from the hash recomputed from its children"))
            subtree.bad = True


def nodes_completed_in(start: int, end: int) -> list[tuple[int, int, int]]:
    """``(level, first, last)`` index ranges of the nodes completed by leaves [start, end)."""
    ranges = []
    level = 0
    while (1 << level) <= end:
        first = -(-(start + 1) >> level) - 1  # ceil((start + 1) / 2^level) - 1
        last = (end >> level) - 1
        if first <= last:
            ranges.append((level, first, last))
        level += 1
    return ranges
