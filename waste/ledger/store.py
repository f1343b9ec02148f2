"""The transparency log in the database: appends under one lock, O(log n) proofs.

Only perfect subtrees are stored (``log_nodes``); a node never changes once
written, so proofs and roots for any size read O(log n) rows. Appends lock the
single ``log_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so concurrent API workers
neither fork the tree nor lose a leaf: leaf ``n`` is written by whoever holds
the lock when the size is ``n``, and the lock is released only by commit.

Every append use case takes this lock last, after its own row locks and checks,
and holds it only for the writes that need the leaf index, so the section all
writers share is a few statements and the commit. On PostgreSQL an append's
leaf, nodes, new size and the caller's rows that need the leaf index go to the
server in one statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Insert, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from waste.errors import Conflict, Invalid, NotFound
from waste.ledger import merkle
from waste.ledger.canonical import canonical_bytes
from waste.ledger.models import LogEntry, LogHead, LogNode

HEAD_ID = 1
_PLACEHOLDER = bytes(32)
_T = TypeVar("_T")


class LogStore:
    """Reads and appends the Merkle log through one session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._locked: tuple[SessionTransaction | None, int] | None = None

    def size(self) -> int:
        """The number of leaves committed (as this transaction sees it)."""
        return int(self._session.scalar(select(LogHead.size).where(LogHead.id == HEAD_ID)) or 0)

    def lock(self) -> int:
        """Take the append lock; return the size under it."""
        query = select(LogHead.size).where(LogHead.id == HEAD_ID).with_for_update()
        size = self._session.scalar(query)
        if size is None:
            raise RuntimeError("log_head row is missing: the schema was not migrated")
        # The row stays locked, and this size current, until this transaction ends.
        self._locked = (self._session.get_transaction(), int(size))
        return int(size)

    def append(
        self,
        *,
        kind: str,
        subject: str | None,
        entry: dict[str, Any],
        rows: Callable[[int], Sequence[Insert]] = lambda _index: (),
    ) -> tuple[int, bytes]:
        """Append one entry under the lock (taken here unless held); return (index, leaf).

        ``rows(index)`` are inserts that need the leaf index (the entry's own
        record); on PostgreSQL they go to the server in the same statement as the
        leaf, its nodes and the new size, so the lock is held for one round trip
        of writes and the commit.
        """
        data = canonical_bytes(entry)
        transaction, index = self._locked or (None, 0)
        if transaction is None or transaction is not self._session.get_transaction():
            index = self.lock()
        leaf = merkle.leaf_hash(data)
        completed = self._with_nodes(lambda get: merkle.nodes_completed_by_append(index, leaf, get))
        writes: list[Insert] = [
            insert(LogEntry).values(
                leaf_index=index, kind=kind, subject=subject, entry=data, leaf_hash=leaf
            ),
            insert(LogNode).values([{"level": lv, "idx": i, "hash": h} for lv, i, h in completed]),
            *rows(index),
        ]
        grow = update(LogHead).where(LogHead.id == HEAD_ID).values(size=index + 1)
        try:
            if self._session.get_bind().dialect.name == "postgresql":
                for n, write in enumerate(writes):
                    grow = grow.add_cte(write.cte(f"write_{n}"))
                self._session.execute(grow)
            else:
                for statement in (*writes, grow):
                    self._session.execute(statement)
        except IntegrityError as exc:
            raise Conflict(f"conflicts with an existing record: {_short(exc)}") from exc
        for level, idx, digest in completed:
            self._nodes[(level, idx)] = digest
        self._locked = (self._session.get_transaction(), index + 1)
        return index, leaf

    def node(self, level: int, idx: int) -> bytes:
        """The hash of a stored perfect subtree."""
        key = (level, idx)
        cached = self._nodes.get(key)
        if cached is not None:
            return cached
        digest = self._session.scalar(
            select(LogNode.hash).where(LogNode.level == level, LogNode.idx == idx)
        )
        if digest is None:
            raise RuntimeError(f"log node ({level}, {idx}) is missing")
        self._nodes[key] = bytes(digest)
        return bytes(digest)

    def root(self, size: int) -> bytes:
        """The root hash of the tree of the first ``size`` leaves."""
        self._check_size(size)
        return self._with_nodes(lambda get: merkle.root_hash(size, get))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``."""
        self._check_size(size)
        if not 0 <= index < size:
            raise Invalid(f"index must be in [0, {size})", field="index")
        return self._with_nodes(lambda get: merkle.inclusion_proof(index, size, get))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The RFC 9162 consistency proof from size ``old`` to size ``new``."""
        self._check_size(new)
        if not 0 <= old <= new:
            raise Invalid(f"old must be in [0, {new}]", field="old")
        return self._with_nodes(lambda get: merkle.consistency_proof(old, new, get))

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Leaf ``index``'s hash (node (0, index)) and its inclusion proof, in one node query."""
        self._check_size(size)
        if not 0 <= index < size:
            raise Invalid(f"index must be in [0, {size})", field="index")
        return self._with_nodes(
            lambda get: (get(0, index), merkle.inclusion_proof(index, size, get))
        )

    def _with_nodes(self, compute: Callable[[merkle.GetNode], _T]) -> _T:
        """Run ``compute`` once to learn which nodes it reads, fetch them in one query, run it."""
        wanted: list[tuple[int, int]] = []

        def record(level: int, idx: int) -> bytes:
            if (level, idx) not in self._nodes:
                wanted.append((level, idx))
            return _PLACEHOLDER

        compute(record)
        if wanted:
            query = select(LogNode.level, LogNode.idx, LogNode.hash).where(
                tuple_(LogNode.level, LogNode.idx).in_(wanted)
            )
            for level, idx, digest in self._session.execute(query):
                self._nodes[(int(level), int(idx))] = bytes(digest)
        return compute(self.node)

    def entry(self, index: int) -> LogEntry:
        """One leaf's entry."""
        row = self._session.get(LogEntry, index)
        if row is None:
            raise NotFound(f"no log entry {index}")
        return row

    def entries(self, start: int, end: int) -> list[LogEntry]:
        """Entries at leaf indices start ≤ i < end."""
        query = (
            select(LogEntry)
            .where(LogEntry.leaf_index >= start, LogEntry.leaf_index < end)
            .order_by(LogEntry.leaf_index)
        )
        return list(self._session.scalars(query))

    def index_of_leaf(self, leaf: bytes) -> int:
        """The leaf index of a leaf hash."""
        index = self._session.scalar(select(LogEntry.leaf_index).where(LogEntry.leaf_hash == leaf))
        if index is None:
            raise NotFound("no leaf with that hash")
        return int(index)

    def iter_entries(self, batch: int = 5000) -> Iterator[LogEntry]:
        """Every entry in leaf order, fetched in batches."""
        start = 0
        while True:
            rows = self.entries(start, start + batch)
            if not rows:
                return
            yield from rows
            start = rows[-1].leaf_index + 1

    def _check_size(self, size: int) -> None:
        current = self.size()
        if not 0 <= size <= current:
            raise Invalid(f"size must be in [0, {current}]", field="size")


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0][:200]
