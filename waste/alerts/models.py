"""Tables of the alert engine: alerts, their handling transitions, and per-leg tracker state."""

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from waste.db import Base, UTCDateTime

_BigId = BigInteger().with_variant(Integer(), "sqlite")

ALERT_STATES = ("open", "acknowledged", "investigating", "resolved", "closed")
SEVERITIES = ("low", "medium", "high", "critical")


class Alert(Base):
    """One alert: one excursion, stop, seal event, gap... raised once, updated while it lasts.

    ``dedupe_key`` names the thing alerted about (e.g. the leg and the excursion's first
    fix), so a replay or a second gateway process updates the same row; ``id`` is derived
    from it. ``at`` is when it happened (fix time), ``raised_at`` when the server knew.
    ``detect_rev`` grows with every change made by detection; ``version`` is the handling
    row version (optimistic concurrency of transitions). ``publish_pending`` is set by
    any change and cleared once the alert went out on MQTT again.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_manifest_id_leg_index", "manifest_id", "leg_index"),
        Index("ix_alerts_region_code_state", "region_code", "state"),
        Index("ix_alerts_kind_at", "kind", "at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(16), default="open")
    manifest_id: Mapped[str | None] = mapped_column(ForeignKey("manifests.id"))
    leg_index: Mapped[int | None] = mapped_column(Integer)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    vehicle: Mapped[str | None] = mapped_column(String(20), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    producer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    hauler_id: Mapped[str | None] = mapped_column(String(36), index=True)
    site_id: Mapped[str | None] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    detect_rev: Mapped[int] = mapped_column(Integer, default=1)
    # Set by every change (detection or handling, see waste.alerts.store.mark_changed);
    # the gateway's alert publisher sends the alert on MQTT and clears it.
    publish_pending: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Handling (closed loop), written by waste.alerts.lifecycle.
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)
    department: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    resolution: Mapped[str | None] = mapped_column(String(24))
    finding: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class AlertTransition(Base):
    """One handling step of an alert (state change, assignment), appended to the log."""

    __tablename__ = "alert_transitions"
    __table_args__ = (UniqueConstraint("alert_id", "seq"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LegTrackerState(Base):
    """The route tracker of one trip leg, serialised, so matching survives restarts.

    Row-locked (``SELECT ... FOR UPDATE``) while a batch of the leg's fixes is fed, so
    gateway processes sharing a leg take turns. ``last_t`` is the last fix fed in
    fix-time order; an older fix arriving later makes the leg replay its stored track.
    ``replay_due``: the leg closed before fixes already fed (the append path closed it
    as it stood); the gateway's sweep replays it. ``fixes`` and ``locks`` count the
    records fed, so records stored but never fed (a process killed between the ingest
    commit and detection) are noticed and replayed.
    """

    __tablename__ = "leg_trackers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["manifest_id", "leg_index"], ["trip_legs.manifest_id", "trip_legs.leg_index"]
        ),
    )

    manifest_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    leg_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)  # rule-side memory (open alerts...)
    last_t: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    replay_due: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    fixes: Mapped[int] = mapped_column(Integer)
    locks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rebuilds: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class VehicleWatch(Base):
    """A vehicle's unmanifested-movement watch (``waste.alerts.movement``), row-locked while fed."""

    __tablename__ = "vehicle_watches"

    vehicle: Mapped[str] = mapped_column(String(20), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_t: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
