"""Tables of the ledger: custody events, the Merkle log, checkpoints and cosignatures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from waste.db import Base, UTCDateTime


class CustodyEvent(Base):
    """One accepted envelope of a manifest's chain, as received."""

    __tablename__ = "custody_events"

    manifest_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    signers: Mapped[dict[str, str]] = mapped_column(JSON)
    leaf_index: Mapped[int] = mapped_column(BigInteger, unique=True)


class LogEntry(Base):
    """A leaf of the transparency log: the canonical bytes of its entry."""

    __tablename__ = "log_entries"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)


class LogNode(Base):
    """A perfect subtree's hash: level L, index i covers leaves [i·2^L, (i+1)·2^L)."""

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    """The single row every append locks: the log's size."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class Checkpoint(Base):
    """A signed checkpoint of the log at one size."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Cosignature(Base):
    """A witness's (e.g. a regulator's) C2SP tlog-cosignature on a checkpoint."""

    __tablename__ = "cosignatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_size: Mapped[int] = mapped_column(ForeignKey("checkpoints.size"), index=True)
    cosigner: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(8))
    signature_line: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Witness(Base):
    """A cosigner whose checkpoint cosignatures the log accepts (e.g. a regulator)."""

    __tablename__ = "witnesses"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text)
    party_id: Mapped[str | None] = mapped_column(ForeignKey("parties.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
