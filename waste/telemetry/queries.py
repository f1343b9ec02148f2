"""Reading stored telemetry back: a device's track in fix-time order, rows as domain values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from gateway.payloads import Fix, LockEvent, LockEventKind
from waste.telemetry.domain import StoredFix, StoredLock
from waste.telemetry.models import TelemetryFix, TelemetryLockEvent
from waste.uow import UnitOfWork

__all__ = ["stored_fix", "stored_lock", "track"]


def track(
    *,
    uow: UnitOfWork,
    device_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 10_000,
) -> list[StoredFix]:
    """A device's stored fixes with ``start ≤ t < end``, in fix-time order (late ones included)."""
    query = select(TelemetryFix).where(TelemetryFix.device_id == device_id)
    if start is not None:
        query = query.where(TelemetryFix.t >= start)
    if end is not None:
        query = query.where(TelemetryFix.t < end)
    query = query.order_by(TelemetryFix.t, TelemetryFix.seq, TelemetryFix.idx).limit(limit)
    return [stored_fix(row) for row in uow.session.scalars(query)]


def stored_fix(row: TelemetryFix) -> StoredFix:
    """A fix row as a ``StoredFix``."""
    fix = Fix(row.t, row.lat, row.lon, row.speed_kmh, row.heading, row.hdop)
    return StoredFix(
        row.device_id,
        row.seq,
        row.idx,
        row.vehicle,
        fix,
        row.received_at,
        row.manifest_id,
        row.leg_index,
    )


def stored_lock(row: TelemetryLockEvent) -> StoredLock:
    """An e-lock event row as a ``StoredLock``."""
    lock = LockEvent(row.t, row.lock_id, LockEventKind(row.event), row.lat, row.lon)
    return StoredLock(
        row.device_id, row.seq, row.vehicle, lock, row.received_at, row.manifest_id, row.leg_index
    )
