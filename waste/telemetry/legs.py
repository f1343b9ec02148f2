"""Trip legs in the database: kept in step with custody, and the binding of stored records.

``sync_legs`` runs inside the manifest append transaction. It upserts the manifest's
legs and re-binds the stored fixes and e-lock events whose time falls where a leg's
window changed, so a backlog, or a handover signed offline and posted later, binds
exactly as if everything had arrived in order.

Concurrency (PostgreSQL): a flush of the ingest holds a *shared* transaction-level
advisory lock per vehicle it stores records of, from reading the legs to commit;
``sync_legs`` takes the *exclusive* lock of every vehicle whose legs it changes before
writing. So a flush never binds with windows that a concurrent append is changing:
whichever commits second sees the other's rows. Locks are taken in sorted order.
SQLite serialises writers (``BEGIN IMMEDIATE``), so it needs none of this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.orm import Session

from waste.clock import utcnow
from waste.manifests.custody import Custody
from waste.telemetry.domain import LegWindow, Span, leg_changes, legs_of, rebind_spans
from waste.telemetry.models import TelemetryFix, TelemetryLockEvent, TripLeg
from waste.uow import UnitOfWork

__all__ = ["bump_revisions", "legs_for", "lock_vehicles", "sync_legs", "window_of"]


def window_of(row: TripLeg) -> LegWindow:
    """A stored leg as a ``LegWindow``."""
    return LegWindow(
        manifest_id=row.manifest_id,
        leg_index=row.leg_index,
        vehicle=row.vehicle,
        device_id=row.device_id,
        seal_id=row.seal_id,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        destination=row.destination,
        route=row.route,
        corridor_m=row.corridor_m,
    )


def _lock_key(vehicle: str) -> int:
    digest = hashlib.sha256(b"waste-custody:vehicle:" + vehicle.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_vehicles(session: Session, vehicles: Iterable[str], *, exclusive: bool) -> None:
    """Take the vehicles' advisory locks until commit (PostgreSQL; a no-op on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(v) for v in vehicles})
    if not keys:
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    # fn is one of two constants; the keys are bound parameters.
    sql = f"SELECT {fn}(k) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) s"  # noqa: S608
    query = text(sql)
    session.execute(query, {"keys": keys})


def legs_for(session: Session, spans: dict[str, Span]) -> dict[str, list[LegWindow]]:
    """The stored legs of each vehicle overlapping its span ``[start, end)``."""
    if not spans:
        return {}
    clauses = []
    for vehicle, (start, end) in spans.items():
        clause = and_(
            TripLeg.vehicle == vehicle,
            or_(TripLeg.closed_at.is_(None), TripLeg.closed_at > start),
        )
        if end is not None:
            clause = and_(clause, TripLeg.opened_at < end)
        clauses.append(clause)
    found: dict[str, list[LegWindow]] = {v: [] for v in spans}
    for row in session.scalars(select(TripLeg).where(or_(*clauses))):
        found[row.vehicle].append(window_of(row))
    return found


def sync_legs(*, uow: UnitOfWork, custody: Custody, now: datetime | None = None) -> None:
    """Upsert the manifest's legs from ``custody`` and re-bind records in changed windows."""
    session = uow.session
    wanted = legs_of(custody)
    if not wanted:
        return
    rows = {
        row.leg_index: row
        for row in session.scalars(
            select(TripLeg).where(TripLeg.manifest_id == custody.manifest_id)
        )
    }
    changes = leg_changes({i: window_of(r) for i, r in rows.items()}, wanted)
    if not changes:
        return
    vehicles = {new.vehicle for _, new in changes} | {old.vehicle for old, _ in changes if old}
    lock_vehicles(session, vehicles, exclusive=True)
    moment = now or utcnow()
    for _, new in changes:
        row = rows.get(new.leg_index)
        if row is None:
            row = TripLeg(manifest_id=new.manifest_id, leg_index=new.leg_index)
            row.revision, row.sealed_revision = 0, 0
            session.add(row)
        row.vehicle, row.device_id, row.seal_id = new.vehicle, new.device_id, new.seal_id
        row.opened_at, row.closed_at = new.opened_at, new.closed_at
        row.destination, row.route, row.corridor_m = new.destination, new.route, new.corridor_m
        row.revision += 1
        row.changed_at = moment
    session.flush()
    for vehicle, spans in rebind_spans(changes).items():
        for span in spans:
            _rebind(session, vehicle, span)


def _rebind(session: Session, vehicle: str, span: Span) -> None:
    """Recompute the binding of the vehicle's records in ``span`` from the stored legs."""
    legs = sorted(legs_for(session, {vehicle: span})[vehicle], key=lambda leg: leg.rank)
    for table in (TelemetryFix, TelemetryLockEvent):
        _set(session, table, vehicle, span, None)
        for leg in legs:  # ascending rank: the greatest rank is written last and wins
            start = max(span[0], leg.opened_at)
            ends = [e for e in (span[1], leg.closed_at) if e is not None]
            _set(session, table, vehicle, (start, min(ends) if ends else None), leg)


def _set(
    session: Session,
    table: type[TelemetryFix] | type[TelemetryLockEvent],
    vehicle: str,
    span: Span,
    leg: LegWindow | None,
) -> None:
    start, end = span
    query = update(table).where(table.vehicle == vehicle, table.t >= start)
    if end is not None:
        query = query.where(table.t < end)
    if leg is None:
        query = query.where(table.manifest_id.is_not(None))
    session.execute(
        query.values(
            manifest_id=None if leg is None else leg.manifest_id,
            leg_index=None if leg is None else leg.leg_index,
        ).execution_options(synchronize_session=False)
    )


def bump_revisions(
    session: Session, legs: Sequence[tuple[str, int]], *, now: datetime | None = None
) -> None:
    """Mark closed legs that received late records as changed (one row at a time, sorted)."""
    moment = now or utcnow()
    for manifest_id, leg_index in sorted(set(legs)):
        session.execute(
            update(TripLeg)
            .where(TripLeg.manifest_id == manifest_id, TripLeg.leg_index == leg_index)
            .values(revision=TripLeg.revision + 1, changed_at=moment)
            .execution_options(synchronize_session=False)
        )
