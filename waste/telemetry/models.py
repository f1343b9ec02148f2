"""Tables of device telemetry: message keys, fixes, e-lock events, dead letters, presence, legs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from waste.db import Base, UTCDateTime

# An auto-incrementing 64-bit id (SQLite only auto-increments an INTEGER primary key).
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class DeviceMessage(Base):
    """An accepted device message: its ``(device_id, seq)`` key suppresses duplicates."""

    __tablename__ = "device_messages"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(10))
    digest: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the payload bytes
    records: Mapped[int] = mapped_column(Integer)  # fixes (or 1 e-lock event) it carried
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryFix(Base):
    """One position fix, bound to the trip leg of its vehicle holding ``t`` (or to none)."""

    __tablename__ = "telemetry_fixes"
    __table_args__ = (
        Index("ix_telemetry_fixes_vehicle_t", "vehicle", "t"),
        Index("ix_telemetry_fixes_device_id_t", "device_id", "t"),
        Index("ix_telemetry_fixes_manifest_id_leg_index", "manifest_id", "leg_index"),
    )

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    vehicle: Mapped[str] = mapped_column(String(20))
    t: Mapped[datetime] = mapped_column(UTCDateTime())
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float)
    heading: Mapped[float | None] = mapped_column(Float)
    hdop: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifest_id: Mapped[str | None] = mapped_column(String(36))
    leg_index: Mapped[int | None] = mapped_column(Integer)


class TelemetryLockEvent(Base):
    """One e-lock event, bound like a fix."""

    __tablename__ = "telemetry_lock_events"
    __table_args__ = (
        Index("ix_telemetry_lock_events_vehicle_t", "vehicle", "t"),
        Index("ix_telemetry_lock_events_device_id_t", "device_id", "t"),
        Index("ix_telemetry_lock_events_manifest_id_leg_index", "manifest_id", "leg_index"),
    )

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    vehicle: Mapped[str] = mapped_column(String(20))
    t: Mapped[datetime] = mapped_column(UTCDateTime())
    lock_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(12))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifest_id: Mapped[str | None] = mapped_column(String(36))
    leg_index: Mapped[int | None] = mapped_column(Integer)


class DeadLetter(Base):
    """A rejected message kept for inspection; the same bytes on the same topic are one row."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256(topic NUL payload)
    topic: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # at most 1 MiB of it
    size: Mapped[int] = mapped_column(BigInteger)  # the payload's true size in bytes
    deliveries: Mapped[int] = mapped_column(Integer)  # broker redeliveries count too
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DevicePresence(Base):
    """One status or will message of a device: its presence history."""

    __tablename__ = "device_presence"
    __table_args__ = (
        Index("ix_device_presence_device_id_received_at", "device_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    online: Mapped[bool] = mapped_column(Boolean)
    t: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the device's own time, if sent
    source: Mapped[str] = mapped_column(String(10))  # device | will | retained
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TripLeg(Base):
    """A manifest's transport leg, kept in step with its custody by the append path.

    ``revision`` grows whenever the leg's window changes or late telemetry lands in a
    closed leg's window; ``sealed_revision`` is the revision last sealed into the log.
    """

    __tablename__ = "trip_legs"
    __table_args__ = (Index("ix_trip_legs_vehicle_opened_at", "vehicle", "opened_at"),)

    manifest_id: Mapped[str] = mapped_column(ForeignKey("manifests.id"), primary_key=True)
    leg_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    vehicle: Mapped[str] = mapped_column(String(20))
    device_id: Mapped[str] = mapped_column(String(64))
    seal_id: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    destination: Mapped[str] = mapped_column(String(36))
    route: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    corridor_m: Mapped[float] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer)
    sealed_revision: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LegSeal(Base):
    """One sealed version of a leg's telemetry, appended to the transparency log."""

    __tablename__ = "leg_seals"
    __table_args__ = (
        ForeignKeyConstraint(
            ["manifest_id", "leg_index"], ["trip_legs.manifest_id", "trip_legs.leg_index"]
        ),
    )

    manifest_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    leg_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str] = mapped_column(String(64))
    vehicle: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(Integer)
    first_t: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_t: Mapped[datetime | None] = mapped_column(UTCDateTime())
    root: Mapped[str] = mapped_column(String(64))
    leaf_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
