"""A device's durable state: its ``seq`` counter and its outbox (store-and-forward).

``SeqCounter`` hands out ``seq`` values that never repeat, across restarts and
crashes. It keeps a high-water mark on disk: every value below the mark may have
been used. Values are reserved in blocks (one fsync per block, not per message);
on start the counter resumes at the mark, so a crash skips the rest of a block
but never reuses a value. A device that has lost its counter file starts at the
current time in milliseconds since the Unix epoch, above any value used before
as long as it sent fewer than one message per millisecond (and its clock is set).

``Outbox`` is a SQLite file with two tables:

    records    fixes and e-lock events recorded and not yet put in a message, in order
    messages   signed messages (seq, topic, payload) not yet acknowledged, in order

A record moves into a message in one transaction; a message is deleted only when
the broker has acknowledged it (PUBACK), so after a crash every message is sent
again with the same ``seq`` and bytes (the server drops the copy it already has),
and every record is sent in a message of its own later.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.payloads import MAX_SAFE_INT

__all__ = ["Outbox", "OutboxMessage", "Record", "RecordKind", "SeqCounter", "SeqCounterError"]


class SeqCounterError(RuntimeError):
    """The counter file is unreadable or corrupt: refusing to guess (a guess may reuse seqs)."""


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse to open directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SeqCounter:
    """Never-repeating ``seq`` values, reserved on disk in blocks (see the module docstring)."""

    def __init__(
        self, path: Path | str, *, block: int = 100, initial: Callable[[], int] | None = None
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self.path = Path(path)
        self.block = block
        self._lock = threading.Lock()
        if self.path.exists():
            self._next = self._read()
        else:
            self._next = initial() if initial is not None else 0
        if not 0 <= self._next <= MAX_SAFE_INT:
            raise SeqCounterError(f"seq {self._next} is outside [0, 2^53 - 1]")
        self._reserved = self._next  # nothing reserved by this process yet

    def _read(self) -> int:
        try:
            text = self.path.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SeqCounterError(f"cannot read the seq counter {self.path}: {exc}") from exc
        if not text.isdigit() or len(text) > 16:
            raise SeqCounterError(f"the seq counter {self.path} holds {text[:40]!r}, not a count")
        return int(text)

    @property
    def peek(self) -> int:
        """The value ``next`` will return."""
        with self._lock:
            return self._next

    def next(self) -> int:
        """A value never returned before, by this or any earlier process on this file."""
        with self._lock:
            if self._next >= self._reserved:
                mark = self._next + self.block
                if mark > MAX_SAFE_INT + 1:
                    raise SeqCounterError("the seq counter is exhausted (2^53)")
                write_durably(self.path, f"{mark}\n".encode("ascii"))
                self._reserved = mark
            value = self._next
            self._next += 1
            return value


class RecordKind(StrEnum):
    """What a stored record is."""

    FIX = "fix"
    LOCK = "lock"


@dataclass(frozen=True, slots=True)
class Record:
    """A fix or e-lock event waiting for a message: its wire JSON object (PROTOCOL §4)."""

    id: int
    kind: RecordKind
    wire: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A signed message waiting for its PUBACK."""

    ord: int
    seq: int
    topic: str
    payload: bytes
    records: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    wire TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    ord INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    records INTEGER NOT NULL,
    formed_at TEXT NOT NULL
);
"""


class Outbox:
    """The SQLite store of records and unacknowledged messages (thread-safe)."""

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss; NORMAL (WAL): survives a process crash only.
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, kind: RecordKind, wire: dict[str, Any], recorded_at: datetime) -> int:
        """Store a record durably; its id."""
        text = json.dumps(wire, separators=(",", ":"), allow_nan=False)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO records (kind, wire, recorded_at) VALUES (?, ?, ?)",
                (kind.value, text, recorded_at.isoformat()),
            )
            return int(cur.lastrowid or 0)

    def pending(self, limit: int) -> list[Record]:
        """The oldest ``limit`` records not yet in a message, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, wire FROM records ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [Record(int(i), RecordKind(k), json.loads(w)) for i, k, w in rows]

    def oldest_record_at(self) -> datetime | None:
        """When the oldest pending record was recorded (by the client's clock)."""
        with self._lock:
            row = self._db.execute("SELECT recorded_at FROM records ORDER BY id LIMIT 1").fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def form(
        self, records: Sequence[Record], seq: int, topic: str, payload: bytes, at: datetime
    ) -> OutboxMessage:
        """Replace ``records`` by the message carrying them, in one transaction."""
        ids = [r.id for r in records]
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO messages (seq, topic, payload, records, formed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (seq, topic, payload, len(ids), at.isoformat()),
            )
            db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
            return OutboxMessage(int(cur.lastrowid or 0), seq, topic, payload, len(ids))

    def discard(self, ids: Sequence[int]) -> None:
        """Delete records that can never be sent."""
        with self._tx() as db:
            db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])

    def unacked(self, *, after: int = 0, limit: int = 1000) -> list[OutboxMessage]:
        """Messages not yet acknowledged with ``ord`` above ``after``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ord, seq, topic, payload, records FROM messages WHERE ord > ?"
                " ORDER BY ord LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxMessage(int(o), int(s), t, bytes(p), int(n)) for o, s, t, p, n in rows]

    def acknowledge(self, ord_: int) -> bool:
        """Delete an acknowledged message; False if it was not there."""
        with self._tx() as db:
            return db.execute("DELETE FROM messages WHERE ord = ?", (ord_,)).rowcount > 0

    def counts(self) -> tuple[int, int]:
        """``(pending records, unacknowledged messages)``."""
        with self._lock:
            (records,) = self._db.execute("SELECT count(*) FROM records").fetchone()
            (messages,) = self._db.execute("SELECT count(*) FROM messages").fetchone()
        return int(records), int(messages)
