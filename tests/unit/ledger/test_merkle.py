"""The RFC 6962 / 9162 Merkle log: roots, proofs, verifiers, and O(log n) storage reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waste.ledger import merkle
from waste.ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root_hash,
    root_of,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# --- an independent reference: RFC 6962 §2.1 definitions, recursively, on raw data ----


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(data: list[bytes]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + naive_mth(data[:k]) + naive_mth(data[k:])).digest()


def naive_path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*naive_path(m, data[:k]), naive_mth(data[k:])]
    return [*naive_path(m - k, data[k:]), naive_mth(data[:k])]


def naive_subproof(m: int, data: list[bytes], complete: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if complete else [naive_mth(data)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, data[:k], complete), naive_mth(data[k:])]
    return [*naive_subproof(m - k, data[k:], False), naive_mth(data[:k])]


def naive_shape(m: int, n: int) -> list[bool]:
    """For each hash of PATH(m, D[n]): whether the sibling lies to the right."""
    if n == 1:
        return []
    k = _k(n)
    return [*naive_shape(m, k), True] if m < k else [*naive_shape(m - k, n - k), False]


class Store:
    """Perfect nodes as the server stores them, built only through ``nodes_completed_by_append``."""

    def __init__(self, data: list[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.calls = 0
        for i, d in enumerate(data):
            for level, idx, digest in nodes_completed_by_append(i, leaf_hash(d), self.get):
                assert (level, idx) not in self.nodes, "a stored node must never change"
                self.nodes[(level, idx)] = digest

    def get(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.nodes[(level, index)]


def data_of(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


# --- published vectors (transparency-dev/merkle testonly, RFC 6962 hashing) -----------

VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
VECTOR_INCLUSION = [
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
# (old size, new size, proof)
VECTOR_CONSISTENCY = [
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
VECTOR_STORE = Store(VECTOR_LEAVES)


@pytest.mark.parametrize("size", range(9))
def test_vector_roots(size: int) -> None:
    expected = bytes.fromhex(VECTOR_ROOTS[size])
    assert root_hash(size, VECTOR_STORE.get) == expected
    assert root_of([leaf_hash(d) for d in VECTOR_LEAVES[:size]]) == expected


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION)
def test_vector_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    assert inclusion_proof(index, size, VECTOR_STORE.get) == hashes
    root = bytes.fromhex(VECTOR_ROOTS[size])
    assert verify_inclusion(leaf_hash(VECTOR_LEAVES[index]), index, size, hashes, root)


@pytest.mark.parametrize(("old", "new", "proof"), VECTOR_CONSISTENCY)
def test_vector_consistency_proofs(old: int, new: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(old, new, VECTOR_STORE.get) == hashes
    roots = bytes.fromhex(VECTOR_ROOTS[old]), bytes.fromhex(VECTOR_ROOTS[new])
    assert verify_consistency(old, new, *roots, hashes)


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION)
def test_vector_inclusion_probes_fail(index: int, size: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    root, leaf = bytes.fromhex(VECTOR_ROOTS[size]), leaf_hash(VECTOR_LEAVES[index])
    probes = [(index - 1, size), (index + 1, size), (index ^ 2, size), (index, size * 2),
              (index, size // 2)]  # fmt: skip
    for probe_index, probe_size in probes:
        assert not verify_inclusion(leaf, probe_index, probe_size, hashes, root)


@pytest.mark.parametrize(("old", "new", "proof"), VECTOR_CONSISTENCY)
def test_vector_consistency_probes_fail(old: int, new: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    roots = bytes.fromhex(VECTOR_ROOTS[old]), bytes.fromhex(VECTOR_ROOTS[new])
    for probe_old, probe_new in [(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2),
                                 (old, new // 2)]:  # fmt: skip
        assert not verify_consistency(probe_old, probe_new, *roots, hashes)
    assert not verify_consistency(old, new, roots[1], roots[0], hashes)


# --- against the reference, over random trees ---------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(min_value=1, max_value=300))
def test_roots_and_proofs_match_the_reference(data: st.DataObject, size: int) -> None:
    leaves = data_of(size)
    store = Store(leaves)
    root = naive_mth(leaves)
    assert root_hash(size, store.get) == root
    assert root_of([leaf_hash(d) for d in leaves]) == root

    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, store.get)
    assert proof == naive_path(index, leaves)
    assert verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)

    old = data.draw(st.integers(0, size), label="old")
    old_root = naive_mth(leaves[:old])
    assert root_hash(old, store.get) == old_root
    cproof = consistency_proof(old, size, store.get)
    assert cproof == ([] if old in (0, size) else naive_subproof(old, leaves, True))
    assert verify_consistency(old, size, old_root, root, cproof)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(min_value=2, max_value=200))
def test_tampered_inclusion_proofs_fail(data: st.DataObject, size: int) -> None:
    leaves = data_of(size)
    store = Store(leaves)
    root = root_hash(size, store.get)
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf = leaf_hash(leaves[index])
    proof = inclusion_proof(index, size, store.get)
    some = hashlib.sha256(b"some").digest()

    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        assert not verify_inclusion(leaf, index, size, flipped, root)
    assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*proof, some], root)
    assert not verify_inclusion(leaf, index, size, [some, *proof], root)
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)
    assert not verify_inclusion(leaf_hash(b"other"), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, some)
    for wrong_index in {index - 1, index + 1, index ^ 2} - {index}:
        if 0 <= wrong_index < size and leaves[wrong_index] != leaves[index]:
            assert not verify_inclusion(leaf, wrong_index, size, proof, root)
    for wrong_size in (size * 2, size // 2, size + 1):
        # RFC 6962 hashes do not commit to the size (the signed checkpoint does), so a
        # proof verifies for another size exactly when the path has the same shape there.
        same_shape = index < wrong_size and naive_shape(index, wrong_size) == naive_shape(
            index, size
        )
        assert verify_inclusion(leaf, index, wrong_size, proof, root) == same_shape


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(min_value=2, max_value=200))
def test_tampered_consistency_proofs_fail(data: st.DataObject, new: int) -> None:
    leaves = data_of(new)
    store = Store(leaves)
    old = data.draw(st.integers(1, new - 1), label="old")
    old_root, new_root = root_hash(old, store.get), root_hash(new, store.get)
    proof = consistency_proof(old, new, store.get)
    some = hashlib.sha256(b"some").digest()

    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        assert not verify_consistency(old, new, old_root, new_root, flipped)
    assert not verify_consistency(old, new, old_root, new_root, [])
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not verify_consistency(old, new, old_root, new_root, [*proof, some])
    assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    assert not verify_consistency(old, new, old_root, new_root, [proof[0], *proof])
    assert not verify_consistency(old, new, old_root, new_root, [old_root, *proof])
    assert not verify_consistency(old, new, new_root, old_root, proof)
    assert not verify_consistency(old, new, some, new_root, proof)
    assert not verify_consistency(old, new, old_root, some, proof)
    for wrong_old in {old - 1, old + 1, old ^ 2} - {old}:
        if 0 < wrong_old < new:
            assert not verify_consistency(wrong_old, new, old_root, new_root, proof)


# --- the edge cases the RFC leaves to the caller -------------------------------------


def test_inclusion_edge_cases() -> None:
    leaf = leaf_hash(b"only")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)  # extra hash for a 1-leaf tree
    assert not verify_inclusion(leaf, 1, 1, [], leaf)  # index == size
    assert not verify_inclusion(leaf, 0, 0, [], leaf)  # empty tree
    assert not verify_inclusion(leaf, -1, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 2, [], leaf)  # missing hash
    assert not verify_inclusion(leaf[:31], 0, 1, [], leaf[:31])  # not a SHA-256 hash
    assert not verify_inclusion(leaf, 0, 2, [b""], leaf)


def test_final_sn_check_rejects_a_proof_for_a_smaller_tree() -> None:
    # Leaf 0's proof in the 2-leaf tree hashes to that tree's root; claimed for size 4,
    # every hash still matches and only "sn must reach 0" rejects it.
    store = Store(data_of(4))
    proof, root2 = inclusion_proof(0, 2, store.get), root_hash(2, store.get)
    assert verify_inclusion(leaf_hash(b"entry 0"), 0, 2, proof, root2)
    assert not verify_inclusion(leaf_hash(b"entry 0"), 0, 4, proof, root2)


def test_consistency_edge_cases() -> None:
    store = Store(data_of(4))
    r4 = root_hash(4, store.get)
    some = hashlib.sha256(b"x").digest()
    assert verify_consistency(4, 4, r4, r4, [])
    assert not verify_consistency(4, 4, r4, some, [])
    assert not verify_consistency(4, 4, r4, r4, [r4])
    assert verify_consistency(0, 4, EMPTY_ROOT, r4, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 4, some, r4, [])  # the empty tree has one root
    assert not verify_consistency(0, 4, EMPTY_ROOT, r4, [r4])
    assert not verify_consistency(4, 2, r4, r4, [])  # time travel
    assert not verify_consistency(-1, 4, r4, r4, [])
    assert not verify_consistency(2, 4, r4, r4, [])  # empty proof
    assert not verify_consistency(2, 4, r4[:16], r4, [r4])


def test_proof_functions_refuse_impossible_sizes() -> None:
    store = Store(data_of(3))
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(3, 3, store.get)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, store.get)
    with pytest.raises(ValueError, match="tree size"):
        root_hash(-1, store.get)
    with pytest.raises(ValueError, match="empty"):
        subtree_hash(2, 2, store.get)
    assert consistency_proof(0, 3, store.get) == []
    assert consistency_proof(3, 3, store.get) == []
    assert root_hash(0, store.get) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_unaligned_subtree_hash_is_still_the_mth_of_the_range() -> None:
    leaves = data_of(11)
    store = Store(leaves)
    assert subtree_hash(3, 9, store.get) == naive_mth(leaves[3:9])


# --- storage: what an append writes, and O(log n) reads ------------------------------


@given(st.integers(min_value=1, max_value=300))
def test_append_stores_exactly_the_perfect_subtrees(size: int) -> None:
    leaves = data_of(size)
    store = Store(leaves)
    expected = {(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)}
    assert set(store.nodes) == expected
    for (level, idx), digest in store.nodes.items():
        assert digest == naive_mth(leaves[idx << level : (idx + 1) << level])


def test_an_append_reads_one_left_sibling_per_completed_level() -> None:
    store = Store(data_of(7))
    store.calls = 0
    written = nodes_completed_by_append(7, leaf_hash(b"entry 7"), store.get)
    assert [(level, idx) for level, idx, _ in written] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert store.calls == 3


class Counting:
    """A stand-in store of any size: deterministic hashes, counted reads."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self, level: int, index: int) -> bytes:
        self.calls += 1
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    def cost(self, fn: Callable[..., object], *args: int) -> int:
        """How many nodes ``fn(*args, get_node)`` reads."""
        self.calls = 0
        fn(*args, self.get)
        return self.calls


@pytest.mark.parametrize("size", [1, 2, 3, 1000, 2**20, 2**20 + 1, 10**9 + 7, 2**40 - 1])
def test_roots_and_proofs_cost_logarithmic_reads(size: int) -> None:
    counter = Counting()
    bound = 2 * size.bit_length() + 2
    assert counter.cost(root_hash, size) <= size.bit_length()
    for index in {0, size // 3, size // 2, size - 1}:
        assert counter.cost(inclusion_proof, index, size) <= bound
    for old in {1, size // 3, size // 2, size - 1}:
        if 0 < old < size:
            assert counter.cost(consistency_proof, old, size) <= bound


@given(st.integers(1, 2**48), st.data())
def test_logarithmic_reads_for_any_size(size: int, data: st.DataObject) -> None:
    counter = Counting()
    index = data.draw(st.integers(0, size - 1))
    bound = 2 * size.bit_length() + 2
    assert counter.cost(inclusion_proof, index, size) <= bound
    assert counter.cost(consistency_proof, index, size) <= bound


def test_hash_definitions() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert a == hashlib.sha256(b"\x00a").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.HASH_SIZE == len(a) == 32
