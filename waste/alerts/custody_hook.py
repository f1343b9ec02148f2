"""Detection on custody events, inside the manifest append transaction.

``on_custody_event`` runs after the event is applied and the trip legs are synced
(``waste.telemetry.legs.sync_legs``), in the same unit of work, so an alert is
recorded exactly when its event is. It closes the tracker of a leg the event
closed, as it stands (if fixes now past its end had been fed, the leg is marked
``replay_due`` and the gateway's sweep replays it: no whole-track work here; a leg
opened by the event starts its tracker with its first records in the gateway),
retracts unmanifested-movement alerts the new leg now covers, and judges the event
itself: quantity discrepancy (which also feeds the leg's dumping rule, retroactively),
a seal found at the gate that is not the one applied, a receipt the site's permits do
not cover, and a delivery made late (or on time after all).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from waste.alerts import custody_rules as cr
from waste.alerts.context import LegCache, build_runtime
from waste.alerts.detection import detect_leg
from waste.alerts.models import Alert
from waste.alerts.rules import UNMANIFESTED_MOVEMENT, Candidate
from waste.alerts.store import Concerned, alerts_by_key, retract, upsert
from waste.alerts.thresholds import ThresholdBook, current
from waste.manifests.deadlines import confirmation_due
from waste.manifests.domain import Custody, Leg
from waste.manifests.models import Manifest
from waste.manifests.vocabulary import EventType
from waste.registry.models import Permit
from waste.telemetry.models import TripLeg
from waste.uow import UnitOfWork

__all__ = ["on_custody_event"]


def on_custody_event(
    *, uow: UnitOfWork, custody: Custody, now: datetime, book: ThresholdBook | None = None
) -> list[Alert]:
    """Judge the custody's latest event (not committed here); the alerts it changed."""
    event = custody.history[-1]
    if event.event_type is EventType.FILED:
        return []
    book = book or current()
    session = uow.session
    session.flush()
    manifest = session.get(Manifest, custody.manifest_id)
    if manifest is None:
        return []
    th = book.for_region(manifest.region_code)
    cache = LegCache(book)
    changed: list[Alert] = []

    closed = cr.closed_leg(custody, event.at)
    weighed = cr.quantity(custody, th)
    if weighed is not None and closed is not None:
        changed += _upsert(uow, weighed.candidate, _concerned(manifest, custody, closed), now)
    if closed is not None:  # the opened leg's tracker starts with its first records
        row = session.get(TripLeg, (custody.manifest_id, closed.index))
        rt = None if row is None else build_runtime(session, row, book, custody=custody)
        if rt is not None:
            changed += detect_leg(
                uow=uow,
                cache=cache,
                manifest_id=custody.manifest_id,
                leg_index=closed.index,
                now=now,
                weighing=None if weighed is None else weighed.weighing,
                defer_replay=True,
                runtime=rt,
            )
    for leg in custody.legs:
        if leg.opened_at == event.at and leg is not closed:
            changed += _covered_movements(uow, leg, now)

    tamper = cr.seal_mismatch(custody)
    if tamper is not None and closed is not None:
        changed += _upsert(uow, tamper, _concerned(manifest, custody, closed), now)
    if event.event_type is EventType.RECEIVED and closed is not None:
        changed += _licence(uow, manifest, custody, closed, now)
        changed += _delivered(uow, manifest, custody, closed, th_grace=book, now=now)
    if event.event_type is EventType.DISPOSED and custody.received_at is not None:
        due = confirmation_due(custody.received_at)
        cand = cr.overdue(
            manifest_id=custody.manifest_id,
            due=due,
            now=now,
            th=th,
            what="confirmation",
            done_at=event.at,
        )
        changed += _settle(
            uow, manifest, custody, cand, cr.overdue_key(manifest.id, "confirmation"), now
        )
    return changed


def _concerned(manifest: Manifest, custody: Custody, leg: Leg | None) -> Concerned:
    return Concerned(
        region_code=manifest.region_code,
        manifest_id=manifest.id,
        leg_index=None if leg is None else leg.index,
        device_id=None if leg is None else leg.device_id,
        vehicle=manifest.vehicle_plate if leg is None else leg.vehicle,
        producer_id=custody.producer,
        hauler_id=manifest.hauler_id if leg is None else leg.hauler,
        site_id=custody.destination if leg is None else leg.destination,
    )


def _upsert(uow: UnitOfWork, cand: Candidate, concerned: Concerned, now: datetime) -> list[Alert]:
    alert = upsert(uow=uow, candidate=cand, concerned=concerned, now=now)
    return [] if alert is None else [alert]


def _covered_movements(uow: UnitOfWork, leg: Leg, now: datetime) -> list[Alert]:
    """Unmanifested-movement alerts whose movement the new leg's window now holds."""
    query = select(Alert).where(
        Alert.kind == UNMANIFESTED_MOVEMENT,
        Alert.vehicle == leg.vehicle,
        Alert.at >= leg.opened_at,
    )
    if leg.closed_at is not None:
        query = query.where(Alert.at < leg.closed_at)
    changed = []
    for alert in uow.session.scalars(query.with_for_update()):
        gone = retract(uow=uow, alert=alert, now=now, reason="movement_belongs_to_a_leg")
        if gone is not None:
            changed.append(gone)
    return changed


def _licence(
    uow: UnitOfWork, manifest: Manifest, custody: Custody, leg: Leg, now: datetime
) -> list[Alert]:
    site = custody.received_by or leg.destination
    permits = [
        cr.PermitView(
            p.number,
            tuple(p.waste_codes),
            p.annual_capacity_kg,
            p.valid_from,
            p.valid_until,
            p.revoked,
        )
        for p in uow.session.scalars(select(Permit).where(Permit.site_id == site))
    ]
    year_start = datetime(custody.history[-1].at.year, 1, 1, tzinfo=UTC)
    used = uow.session.scalar(
        select(func.coalesce(func.sum(Manifest.received_kg), 0)).where(
            Manifest.destination_id == site,
            Manifest.id != manifest.id,
            Manifest.received_kg.is_not(None),
            Manifest.filed_at >= year_start,
        )
    )
    cand = cr.unlicensed(custody, site_id=site, permits=permits, used_kg=float(used or 0))
    return [] if cand is None else _upsert(uow, cand, _concerned(manifest, custody, leg), now)


def _delivered(
    uow: UnitOfWork,
    manifest: Manifest,
    custody: Custody,
    leg: Leg,
    *,
    th_grace: ThresholdBook,
    now: datetime,
) -> list[Alert]:
    th = th_grace.for_region(manifest.region_code)
    event = custody.history[-1]
    cand = cr.overdue(
        manifest_id=manifest.id,
        due=custody.filing.deliver_by,
        now=now,
        th=th,
        done_at=event.at,
    )
    return _settle(uow, manifest, custody, cand, cr.overdue_key(manifest.id), now, leg=leg)


def _settle(
    uow: UnitOfWork,
    manifest: Manifest,
    custody: Custody,
    cand: Candidate | None,
    key: str,
    now: datetime,
    *,
    leg: Leg | None = None,
) -> list[Alert]:
    """Record a deadline met late; retract an overdue alert if it was met in time after all."""
    if cand is not None:
        return _upsert(uow, cand, _concerned(manifest, custody, leg), now)
    alert = alerts_by_key(uow.session, [key]).get(key)
    if alert is None:
        return []
    gone = retract(uow=uow, alert=alert, now=now, reason="done_in_time")
    return [] if gone is None else [gone]
