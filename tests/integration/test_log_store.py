"""LogStore in the database: proofs and roots equal the pure computation, in few queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from waste.ledger import merkle
from waste.ledger.store import LogStore


@contextmanager
def _counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_proofs_and_roots_match_the_reference_in_few_queries(engine: Engine) -> None:
    leaves = []
    with Session(engine) as session:
        store = LogStore(session)
        with _counting(engine) as statements:
            store.lock()
            for i in range(37):
                leaves.append(store.append(kind="test", subject=None, entry={"n": i})[1])
        assert sum("FOR UPDATE" in s for s in statements) <= 1  # the lock is taken once
        session.commit()

    for size in (1, 2, 5, 16, 37):
        root = merkle.root_of(leaves[:size])
        with Session(engine) as session:
            store = LogStore(session)
            assert store.root(size) == root
            for index in {0, size // 2, size - 1}:
                proof = store.inclusion_proof(index, size)
                assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            old = max(1, size // 3)
            proof = store.consistency_proof(old, size)
            assert merkle.verify_consistency(old, size, merkle.root_of(leaves[:old]), root, proof)
            expected = (leaves[size // 2], store.inclusion_proof(size // 2, size))
        with Session(engine) as session, _counting(engine) as statements:
            assert LogStore(session).inclusion(size // 2, size) == expected
        queries = [s for s in statements if s.startswith("SELECT")]
        assert len(queries) == 2, queries  # the head's size, then every node at once


def test_appending_again_after_commit_takes_the_lock_again(engine: Engine) -> None:
    with Session(engine) as session:
        store = LogStore(session)
        assert store.append(kind="test", subject=None, entry={"n": 0})[0] == 0
        session.commit()
        with _counting(engine) as statements:
            assert store.append(kind="test", subject=None, entry={"n": 1})[0] == 1
        assert any("log_head" in s and "SELECT" in s for s in statements)
        session.commit()
        assert store.size() == 2
