"""What ``verify_log`` reads: one read-only snapshot, and the batched queries of its two passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Text,
    and_,
    cast,
    create_engine,
    event,
    func,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from waste.ledger.chaincheck import ChainRow, CheckpointRow
from waste.ledger.keys import KeyRecord
from waste.ledger.models import Checkpoint, CustodyEvent, LogEntry, LogHead, LogNode
from waste.ledger.store import HEAD_ID
from waste.ledger.treecheck import nodes_completed_in
from waste.registry.models import Party, PartyKey

EVENT_BATCH = 2000


def engine_of(source: Engine | sessionmaker[Session]) -> Engine:
    """The engine behind an engine or a bound session factory."""
    if isinstance(source, Engine):
        return source
    bind = source.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the session factory is not bound to an engine")
    return bind


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction over a consistent snapshot that does not block appends."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
        return
    reader = engine
    if engine.url.database not in (None, "", ":memory:"):
        # The app's engine opens every transaction with BEGIN IMMEDIATE, which would
        # hold the write lock for the whole run: read through a deferred one instead.
        reader = _sqlite_reader(engine)
    try:
        with reader.connect() as conn, conn.begin():
            yield conn
    finally:
        if reader is not engine:
            reader.dispose()


def _sqlite_reader(engine: Engine) -> Engine:
    reader = create_engine(
        engine.url, poolclass=NullPool, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA query_only = ON")

    @event.listens_for(reader, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return reader


def head_size(conn: Connection) -> int | None:
    """``log_head.size``, or None if the row is missing."""
    size = conn.scalar(select(LogHead.size).where(LogHead.id == HEAD_ID))
    return None if size is None else int(size)


def last_leaf(conn: Connection) -> int:
    """The highest stored leaf index, -1 if none."""
    return int(conn.scalar(select(func.max(LogEntry.leaf_index))) or -1)


def event_count(conn: Connection) -> int:
    """The number of custody event rows."""
    return int(conn.scalar(select(func.count()).select_from(CustodyEvent)) or 0)


def keys(conn: Connection) -> list[KeyRecord]:
    """Every registered key with its party's kind."""
    rows = conn.execute(
        select(
            PartyKey.key_id,
            PartyKey.party_id,
            Party.kind,
            PartyKey.public_key,
            PartyKey.valid_from,
            PartyKey.valid_until,
        ).join(Party, Party.id == PartyKey.party_id)
    )
    return [KeyRecord(*row) for row in rows]


def entries(conn: Connection, start: int, end: int) -> list[Any]:
    """(leaf_index, kind, entry, leaf_hash, seq of its event row or None) for start ≤ i < end."""
    query = (
        select(
            LogEntry.leaf_index, LogEntry.kind, LogEntry.entry, LogEntry.leaf_hash, CustodyEvent.seq
        )
        .outerjoin(CustodyEvent, CustodyEvent.leaf_index == LogEntry.leaf_index)
        .where(LogEntry.leaf_index >= start, LogEntry.leaf_index < end)
        .order_by(LogEntry.leaf_index)
    )
    return list(conn.execute(query).all())


def entry_bytes(conn: Connection, indices: list[int]) -> dict[int, bytes]:
    """The entry bytes at some leaf indices."""
    query = select(LogEntry.leaf_index, LogEntry.entry).where(LogEntry.leaf_index.in_(indices))
    return {int(index): bytes(entry) for index, entry in conn.execute(query)}


def nodes(conn: Connection, start: int, end: int) -> dict[tuple[int, int], bytes]:
    """The stored nodes that appending leaves [start, end) completed."""
    ranges = nodes_completed_in(start, end)
    if not ranges:
        return {}
    where = or_(*(and_(LogNode.level == lv, LogNode.idx.between(a, b)) for lv, a, b in ranges))
    query = select(LogNode.level, LogNode.idx, LogNode.hash).where(where)
    return {(int(lv), int(i)): bytes(h) for lv, i, h in conn.execute(query).all()}


def checkpoints(conn: Connection, low: int, high: int | None = None) -> list[CheckpointRow]:
    """(size, root_hash, note) of the checkpoints with low ≤ size (≤ high), by size."""
    query = select(Checkpoint.size, Checkpoint.root_hash, Checkpoint.note).where(
        Checkpoint.size >= low
    )
    if high is not None:
        query = query.where(Checkpoint.size <= high)
    rows = conn.execute(query.order_by(Checkpoint.size)).all()
    return [(int(s), bytes(r), str(n)) for s, r, n in rows]


def leaves_beyond(conn: Connection, size: int) -> tuple[int, int | None, int | None]:
    """(count, first, last) of the stored leaves at or past ``size``."""
    count, first, last = conn.execute(
        select(func.count(), func.min(LogEntry.leaf_index), func.max(LogEntry.leaf_index)).where(
            LogEntry.leaf_index >= size
        )
    ).one()
    return int(count), first, last


def nodes_beyond(conn: Connection, size: int) -> tuple[int, tuple[int, int] | None]:
    """(count, first) of the stored nodes that cover a leaf at or past ``size``."""
    beyond = or_(
        LogNode.level < 0,
        LogNode.level > 62,
        LogNode.idx < 0,
        LogNode.idx >= cast(size, LogNode.idx.type).op(">>")(LogNode.level),
    )
    count = int(conn.scalar(select(func.count()).select_from(LogNode).where(beyond)) or 0)
    first = conn.execute(
        select(LogNode.level, LogNode.idx).where(beyond).order_by(LogNode.level, LogNode.idx)
    ).first()
    return count, None if first is None else (int(first[0]), int(first[1]))


def chain_batches(conn: Connection) -> Iterator[list[list[ChainRow]]]:
    """Events in (manifest_id, seq) order with their leaf, as batches of whole manifests."""
    query = (
        select(
            CustodyEvent.manifest_id,
            CustodyEvent.seq,
            CustodyEvent.event_hash,
            CustodyEvent.prev_hash,
            CustodyEvent.type,
            CustodyEvent.actor,
            # raw timestamps: the workers make them aware UTC, off the reading process
            type_coerce(CustodyEvent.at, DateTime(timezone=True)),
            type_coerce(CustodyEvent.accepted_at, DateTime(timezone=True)),
            cast(CustodyEvent.envelope, Text),
            cast(CustodyEvent.signers, Text),
            CustodyEvent.leaf_index,
            LogEntry.leaf_hash,
            LogEntry.kind,
            LogEntry.subject,
        )
        .outerjoin(LogEntry, LogEntry.leaf_index == CustodyEvent.leaf_index)
        .order_by(CustodyEvent.manifest_id, CustodyEvent.seq)
        .limit(EVENT_BATCH)
    )
    carry: list[ChainRow] = []
    after: tuple[str, int] | None = None
    while True:
        page = query
        if after is not None:
            page = query.where(tuple_(CustodyEvent.manifest_id, CustodyEvent.seq) > tuple_(*after))
        rows: list[Any] = [tuple(r) for r in conn.execute(page).all()]
        if not rows:
            break
        after = (rows[-1][0], rows[-1][1])
        manifests = _group(carry + rows)
        carry = manifests.pop() if len(rows) == EVENT_BATCH else []  # may go on in the next page
        if manifests:
            yield manifests
        if len(rows) < EVENT_BATCH:
            return
    if carry:
        yield [carry]


def _group(rows: list[ChainRow]) -> list[list[ChainRow]]:
    groups: list[list[ChainRow]] = []
    for row in rows:
        if groups and groups[-1][0][0] == row[0]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups
