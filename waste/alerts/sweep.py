"""The periodic sweep: alerts that the absence of data raises (no fix, no delivery).

``sweep`` replays the legs the append path marked ``replay_due``; raises
``signal_lost`` for open legs whose last fix (or opening, if none) is older than
``signal_lost_s``, or whose device's last presence message is its will (offline)
and it did not come back within ``will_grace_s`` of its last fix before the will (all
judged on the fixes' clock, the one ``now`` is given on: see ``_offline``); and
``overdue_delivery`` for manifests not received by their deliver-by time, or whose
receipt was not confirmed (``disposed``) within five working days. Each alert is
raised once (its key exists afterwards); the track path ends a gap alert when fixes
resume. Every gateway runs it; keys make concurrent sweeps agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from waste.alerts import custody_rules as cr
from waste.alerts.context import LegCache
from waste.alerts.detection import _tracker_row, _unfed_records, detect_leg
from waste.alerts.models import Alert, LegTrackerState
from waste.alerts.rules import gap_key, ongoing_gap
from waste.alerts.store import Concerned, alerts_by_key, upsert
from waste.alerts.thresholds import ThresholdBook
from waste.clock import parse_utc
from waste.ledger.models import CustodyEvent
from waste.manifests.deadlines import CONFIRM_WITHIN_WORKING_DAYS, confirmation_due
from waste.manifests.models import Manifest
from waste.telemetry.models import DevicePresence, TelemetryFix, TripLeg
from waste.uow import UnitOfWork

__all__ = ["sweep"]


def sweep(
    *,
    session_factory: sessionmaker[Session],
    now: datetime,
    book: ThresholdBook,
    cache: LegCache | None = None,
    limit: int = 1000,
) -> list[str]:
    """One sweep (each alert or leg in its own transaction); the ids of the alerts changed."""
    cache = cache or LegCache(book)
    raised = _replays(session_factory, now, cache, limit)
    raised += _signals(session_factory, now, book, cache, limit)
    raised += _overdue(session_factory, now, book, limit)
    return raised


def _replays(
    factory: sessionmaker[Session], now: datetime, cache: LegCache, limit: int
) -> list[str]:
    """Replay the legs the append path closed while fixes past their end had been fed."""
    with UnitOfWork(factory) as uow:
        due = list(
            uow.session.execute(
                select(LegTrackerState.manifest_id, LegTrackerState.leg_index)
                .where(LegTrackerState.replay_due.is_(True))
                .limit(limit)
            )
        )
    changed: list[str] = []
    for manifest_id, leg_index in due:
        with UnitOfWork(factory) as uow:
            found = detect_leg(
                uow=uow,
                cache=cache,
                manifest_id=manifest_id,
                leg_index=leg_index,
                now=now,
                replay=True,
            )
            changed += [a.id for a in found]
            uow.commit()
    return changed


def _offline(session: Session, devices: Sequence[str]) -> dict[str, datetime]:
    """Devices whose latest presence message says offline, with when they went silent.

    That moment is the time of the last fix the device sent before its will reached us
    (the fixes' own clock, the one ``now`` and ``since`` are on), not the will's arrival
    (the wall clock of whichever gateway stored it): the broker sends a will only 1.5
    keepalives after the last packet, so the outage began at the last sign of life, and
    a replay judged on a simulated clock would otherwise compare two clocks and never
    fire. Fix and will are ordered by arrival (both stamped on arrival), so a fix that
    came after the will is not taken for the last one before it. A device with no fix
    before its will is left to the no-fix rule."""
    if not devices:
        return {}
    latest = (
        select(func.max(DevicePresence.id))
        .where(DevicePresence.device_id.in_(sorted(set(devices))))
        .group_by(DevicePresence.device_id)
    )
    rows = session.execute(
        select(DevicePresence.device_id, DevicePresence.online, DevicePresence.received_at).where(
            DevicePresence.id.in_(latest)
        )
    )
    out: dict[str, datetime] = {}
    for device_id, online, will_at in list(rows):
        if online:
            continue
        silent = session.scalar(
            select(func.max(TelemetryFix.t)).where(
                TelemetryFix.device_id == device_id, TelemetryFix.received_at <= will_at
            )
        )
        if silent is not None:
            out[device_id] = silent
    return out


def _signals(
    factory: sessionmaker[Session], now: datetime, book: ThresholdBook, cache: LegCache, limit: int
) -> list[str]:
    with UnitOfWork(factory) as uow:
        rows = list(
            uow.session.execute(
                select(
                    TripLeg.manifest_id,
                    TripLeg.leg_index,
                    TripLeg.device_id,
                    TripLeg.opened_at,
                    Manifest.region_code,
                    LegTrackerState.last_t,
                )
                .join(Manifest, Manifest.id == TripLeg.manifest_id)
                .outerjoin(
                    LegTrackerState,
                    (LegTrackerState.manifest_id == TripLeg.manifest_id)
                    & (LegTrackerState.leg_index == TripLeg.leg_index),
                )
                .where(TripLeg.closed_at.is_(None))
                .order_by(TripLeg.opened_at)
                .limit(limit)
            )
        )
        offline = _offline(uow.session, [r.device_id for r in rows])
    raised: list[str] = []
    for mid, idx, device_id, opened_at, region, last_t in rows:
        th = book.for_region(region)
        since = last_t or opened_at
        off = offline.get(device_id)
        due = (now - since).total_seconds() > th.signal_lost_s or (
            off is not None and off >= since and (now - off).total_seconds() >= th.will_grace_s
        )
        if not due:
            continue
        with UnitOfWork(factory) as uow:
            ids = [a.id for a in _raise_gap(uow, cache, mid, idx, now, off)]
            uow.commit()
        raised += ids
    return raised


def _raise_gap(
    uow: UnitOfWork,
    cache: LegCache,
    manifest_id: str,
    leg_index: int,
    now: datetime,
    offline_at: datetime | None,
) -> list[Alert]:
    session = uow.session
    rt = cache.get(session, manifest_id, leg_index)
    if rt is None or rt.closed_at is not None:
        return []
    row = _tracker_row(session, manifest_id, leg_index, now)  # serialises with the track path
    if _unfed_records(session, row, (), ()):
        # Stored records never fed (a gateway died with them handed to detection): the
        # leg is silent only to its tracker. Replay it; the next sweep judges the gap.
        return detect_leg(
            uow=uow,
            cache=cache,
            manifest_id=manifest_id,
            leg_index=leg_index,
            now=now,
            replay=True,
            runtime=rt,
        )
    memory = row.rules or {}
    last = memory.get("last_fix")
    last_fix = None if not last else (parse_utc(last[0]), float(last[1]), float(last[2]))
    since = last_fix[0] if last_fix else rt.opened_at
    key = gap_key(rt.facts, since)
    key = dict(memory.get("aliases") or {}).get(key, key)
    if key in alerts_by_key(session, [key]):
        return []
    cand = ongoing_gap(
        rt.facts,
        rt.thresholds,
        last_fix=last_fix,
        opened_at=rt.opened_at,
        now=now,
        offline_at=offline_at,
    )
    if cand is None:
        return []
    alert = upsert(uow=uow, candidate=cand, concerned=rt.concerned, now=now, key=key)
    return [] if alert is None else [alert]


def _alerted(what: str) -> Any:
    """SQL: the manifest already has its overdue alert of ``what``."""
    key = literal(cr.overdue_key("", what).split("/")[0]) + Manifest.id + literal(f"/{what}")
    return exists().where(Alert.dedupe_key == key)


def _overdue(
    factory: sessionmaker[Session], now: datetime, book: ThresholdBook, limit: int
) -> list[str]:
    found: list[tuple[Manifest, datetime, str]] = []
    with UnitOfWork(factory) as uow:
        session = uow.session
        late = session.scalars(
            select(Manifest)
            .where(
                Manifest.state.in_(["filed", "in_transit"]),
                Manifest.deliver_by < now,
                ~_alerted("delivery"),
            )
            .order_by(Manifest.deliver_by)
            .limit(limit)
        )
        found += [(m, m.deliver_by, "delivery") for m in late]
        received = session.execute(
            select(Manifest, func.max(CustodyEvent.at))
            .join(CustodyEvent, CustodyEvent.manifest_id == Manifest.id)
            .where(
                Manifest.state == "received",
                CustodyEvent.type == "received",
                ~_alerted("confirmation"),
            )
            .group_by(Manifest.id)
            .having(func.max(CustodyEvent.at) < now - timedelta(days=CONFIRM_WITHIN_WORKING_DAYS))
            .limit(limit)
        )
        found += [(m, confirmation_due(at), "confirmation") for m, at in received]
        keys = alerts_by_key(session, [cr.overdue_key(m.id, what) for m, _, what in found])
        session.expunge_all()
    raised: list[str] = []
    for manifest, due, what in found:
        key = cr.overdue_key(manifest.id, what)
        if key in keys:
            continue
        th = book.for_region(manifest.region_code)
        cand = cr.overdue(manifest_id=manifest.id, due=due, now=now, th=th, what=what)
        if cand is None:
            continue
        concerned = Concerned(
            region_code=manifest.region_code,
            manifest_id=manifest.id,
            vehicle=manifest.vehicle_plate,
            producer_id=manifest.producer_id,
            hauler_id=manifest.hauler_id,
            site_id=manifest.destination_id,
        )
        with UnitOfWork(factory) as uow:
            alert = upsert(uow=uow, candidate=cand, concerned=concerned, now=now)
            alert_id = None if alert is None else alert.id
            uow.commit()
        if alert_id is not None:
            raised.append(alert_id)
    return raised
