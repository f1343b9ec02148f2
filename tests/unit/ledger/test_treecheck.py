"""The streaming tree check: stored nodes compared as they complete; one change, one finding."""

from __future__ import annotations

from waste.ledger import merkle
from waste.ledger.chaincheck import Finding
from waste.ledger.treecheck import TreeCheck, nodes_completed_in


def _stored(entries: list[bytes]) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    leaves, nodes = [merkle.leaf_hash(e) for e in entries], {}
    for i, leaf in enumerate(leaves):
        for level, idx, digest in merkle.nodes_completed_by_append(
            i, leaf, lambda lv, j: nodes[(lv, j)]
        ):
            nodes[(level, idx)] = digest
    return leaves, nodes


def _run(
    entries: list[bytes], leaves: list[bytes], nodes: dict[tuple[int, int], bytes]
) -> tuple[list[Finding], bytes | None]:
    findings: list[Finding] = []
    tree = TreeCheck(len(entries), findings.append)
    for i, entry in enumerate(entries):
        tree.leaf(i, entry, leaves[i], nodes)
    return findings, tree.root()[0]


def test_a_clean_tree_gives_the_reference_root() -> None:
    entries = [b"entry %d" % i for i in range(37)]
    leaves, nodes = _stored(entries)
    findings, root = _run(entries, leaves, nodes)
    assert findings == []
    assert root == merkle.root_of(leaves)


def test_one_changed_entry_is_one_finding() -> None:
    entries = [b"entry %d" % i for i in range(37)]
    leaves, nodes = _stored(entries)
    entries[20] = b"changed"
    findings, root = _run(entries, leaves, nodes)
    assert [f.where for f in findings] == ["leaf 20"]
    assert findings[0].what.startswith("entry bytes changed")
    assert root != merkle.root_of(leaves)


def test_a_changed_node_is_named_and_a_missing_one_too() -> None:
    entries = [b"entry %d" % i for i in range(16)]
    leaves, nodes = _stored(entries)
    nodes[(2, 1)] = bytes(32)
    del nodes[(1, 6)]
    findings, _ = _run(entries, leaves, nodes)
    assert [f.render() for f in findings] == [
        "node (2, 1): differs from the hash recomputed from its children",
        "node (1, 6): missing from log_nodes",
    ]


def test_nodes_completed_in_a_range_are_those_appends_complete() -> None:
    for start, end in [(0, 1), (0, 16), (3, 11), (16, 37), (4096, 8192)]:
        expected = set()
        for i in range(start, end):
            for level, idx, _ in merkle.nodes_completed_by_append(i, b"", lambda _l, _i: b""):
                expected.add((level, idx))
        got = {(lv, i) for lv, a, b in nodes_completed_in(start, end) for i in range(a, b + 1)}
        assert got == expected
