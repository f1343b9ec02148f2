"""Alert detection on the track: per-leg engines kept in the database, fed by the gateway.

Per leg, the ``LegEngine`` state lives in ``leg_trackers`` and is row-locked
(``SELECT … FOR UPDATE``) while a batch of the leg's records is fed, so gateway
processes sharing a leg take turns and a restart loses nothing. Records newer than
the leg's last fix are fed as they come (cost per fix: the tracker's O(log n) match).
A fix older than the last one fed (a device's backlog), records landing in a closed
leg, or a leg seen for the first time make the leg *replay*: its engine restarts and
is fed the leg's whole stored track in fix-time order; the replay's alerts are then
reconciled with the leg's stored ones: the same thing (same kind, overlapping in
time) keeps its alert, new things are raised (``at`` in the past, ``raised_at`` now),
and alerts the data no longer supports are retracted. Fixes bound to no leg go to
the vehicle's unmanifested-movement watch (``vehicle_watches``, also row-locked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from waste.alerts.context import LegCache, LegRuntime
from waste.alerts.dumping import Episode
from waste.alerts.engine import LegEngine, LockIn, final
from waste.alerts.models import Alert, LegTrackerState, VehicleWatch
from waste.alerts.movement import VehicleWatcher
from waste.alerts.rules import (
    SIGNAL_LOST,
    SUSPECTED_ILLEGAL_DUMPING,
    TRACK_KINDS,
    Candidate,
)
from waste.alerts.store import Concerned, retract, upsert
from waste.clock import format_utc, parse_utc
from waste.db import Base
from waste.telemetry.domain import StoredFix, StoredLock, TrackUpdate
from waste.telemetry.models import TelemetryFix, TelemetryLockEvent
from waste.telemetry.queries import stored_fix, stored_lock
from waste.tracking import Fix
from waste.uow import UnitOfWork

__all__ = ["detect_leg", "detect_update", "to_fix", "to_lock"]

_SLACK = timedelta(seconds=60)
_AROUND = timedelta(minutes=5)
MAX_EVIDENCE_FIXES = 200


def to_fix(stored: StoredFix) -> Fix:
    """A stored fix as the tracker's ``Fix``."""
    f = stored.fix
    return Fix(f.t, f.lat, f.lon, f.speed_kmh, f.heading, f.hdop)


def to_lock(stored: StoredLock) -> LockIn:
    """A stored e-lock event as the rules' ``LockIn``."""
    lk = stored.lock
    return LockIn(stored.device_id, stored.seq, lk.t, str(lk.event), lk.lock_id, lk.lat, lk.lon)


def _insert(session: Session, model: type[Base]) -> Any:
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _tracker_row(
    session: Session, manifest_id: str, leg_index: int, now: datetime
) -> LegTrackerState:
    """The leg's tracker row, created empty if missing, locked until commit."""
    query = (
        select(LegTrackerState)
        .where(LegTrackerState.manifest_id == manifest_id, LegTrackerState.leg_index == leg_index)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.scalar(query)
    if row is not None:
        return row
    values = {
        "manifest_id": manifest_id,
        "leg_index": leg_index,
        "state": {},
        "rules": {},
        "last_t": None,
        "replay_due": False,
        "fixes": 0,
        "locks": 0,
        "rebuilds": 0,
        "updated_at": now,
    }
    session.execute(_insert(session, LegTrackerState).values(**values).on_conflict_do_nothing())
    row = session.scalar(query)
    assert row is not None  # inserted above, or by another process meanwhile
    return row


def _stored_track(
    session: Session, manifest_id: str, leg_index: int
) -> tuple[list[Fix], list[LockIn]]:
    fixes = session.scalars(
        select(TelemetryFix)
        .where(TelemetryFix.manifest_id == manifest_id, TelemetryFix.leg_index == leg_index)
        .order_by(TelemetryFix.t, TelemetryFix.device_id, TelemetryFix.seq, TelemetryFix.idx)
    )
    locks = session.scalars(
        select(TelemetryLockEvent).where(
            TelemetryLockEvent.manifest_id == manifest_id,
            TelemetryLockEvent.leg_index == leg_index,
        )
    )
    return [to_fix(stored_fix(r)) for r in fixes], [to_lock(stored_lock(r)) for r in locks]


def _unfed_records(
    session: Session,
    row: LegTrackerState,
    fixes: Sequence[Fix],
    locks: Sequence[LockIn],
) -> bool:
    """Whether the leg's stored records, up to this update's latest, differ from those
    fed plus this update's.

    Detection runs after the ingest commit, so a gateway killed in between leaves fixes
    or e-lock events stored and acknowledged but never fed; another process's batch can
    be in flight too (a replay then feeds it first, and its own update must not feed
    its e-lock events twice). Either way the leg replays its stored track, or its
    alerts would depend on when a process died. Records later than this update's are
    not counted: they are those of commits whose updates are still to come (detection
    runs behind ingestion, ``gateway.handoff``), not lost ones.
    """
    times = [f.t for f in fixes] + [lk.t for lk in locks]
    if row.last_t is not None:
        times.append(row.last_t)
    # No records (the append path): everything stored counts, ingestion is not racing it.
    bound = max(times) if fixes or locks else None
    fix_query = select(func.count()).select_from(TelemetryFix)
    fix_query = fix_query.where(
        TelemetryFix.manifest_id == row.manifest_id, TelemetryFix.leg_index == row.leg_index
    )
    lock_query = select(func.count()).select_from(TelemetryLockEvent)
    lock_query = lock_query.where(
        TelemetryLockEvent.manifest_id == row.manifest_id,
        TelemetryLockEvent.leg_index == row.leg_index,
    )
    if bound is not None:
        fix_query = fix_query.where(TelemetryFix.t <= bound)
        lock_query = lock_query.where(TelemetryLockEvent.t <= bound)
    last_t = row.last_t
    if last_t is None or bound is None or bound > last_t:
        if last_t is not None:
            fix_query = fix_query.where(TelemetryFix.t > last_t)
        stored = session.scalar(fix_query)
        if int(stored or 0) > sum(1 for f in fixes if last_t is None or f.t > last_t):
            return True
    stored_locks = session.scalar(lock_query)
    return int(stored_locks or 0) != (row.locks or 0) + len(locks)


def detect_leg(
    *,
    uow: UnitOfWork,
    cache: LegCache,
    manifest_id: str,
    leg_index: int,
    now: datetime,
    fixes: Sequence[Fix] = (),
    locks: Sequence[LockIn] = (),
    weighing: dict[str, Any] | None = None,
    replay: bool = False,
    defer_replay: bool = False,
    runtime: LegRuntime | None = None,
) -> list[Alert]:
    """Feed one leg's new records (or replay it); upsert the alerts; the alerts changed.

    ``defer_replay`` (the append path): a leg that closed before fixes already fed is
    closed as it stands and marked ``replay_due`` for the sweep, not replayed here.
    """
    session = uow.session
    rt = runtime or cache.get(session, manifest_id, leg_index)
    if rt is None:
        return []
    row = _tracker_row(session, manifest_id, leg_index, now)
    fresh = not row.state
    late = replay or fresh or (rt.closed_at is not None and bool(fixes))
    if row.last_t is not None and not late:
        late = any(f.t < row.last_t for f in fixes)
        overran = (  # fixes now past the leg's end were fed before it closed
            rt.closed_at is not None
            and row.last_t >= rt.closed_at
            and not row.rules.get("closed_at")
        )
        if overran and defer_replay:
            row.replay_due = True
        elif overran:
            late = True
    if not late and _unfed_records(session, row, fixes, locks):
        if defer_replay:
            row.replay_due = True
        else:
            late = True
    memory = row.rules or None
    if late:
        engine = LegEngine(rt.facts, rt.thresholds, rt.route, rt.areas, memory=memory)
        engine.restart()
        all_fixes, all_locks = _stored_track(session, manifest_id, leg_index)
        found = engine.feed(all_fixes, all_locks)
        row.fixes, row.locks = len(all_fixes), len(all_locks)
        row.rebuilds += 0 if fresh else 1
        row.replay_due = False
    else:
        engine = LegEngine(
            rt.facts, rt.thresholds, rt.route, rt.areas, tracker_state=row.state, memory=memory
        )
        found = engine.feed(fixes, locks)
        row.fixes += len(fixes)
        row.locks = (row.locks or 0) + len(locks)
    if rt.closed_at is not None and not engine.closed:
        found += engine.close(rt.closed_at)
    if weighing is not None:
        found += engine.add_weighing(weighing)
    changed = _apply(uow, rt, engine, final(found), reconcile=late, now=now)
    state, rules_memory = engine.to_state()
    row.state, row.rules = state, rules_memory
    flag_modified(row, "state")
    flag_modified(row, "rules")
    last = engine.last_fix
    row.last_t = None if last is None else last[0]
    row.updated_at = now
    return changed


def _apply(
    uow: UnitOfWork,
    rt: LegRuntime,
    engine: LegEngine,
    candidates: list[Candidate],
    *,
    reconcile: bool,
    now: datetime,
) -> list[Alert]:
    session = uow.session
    aliases: dict[str, str] = engine.memory.setdefault("aliases", {})
    existing: list[Alert] = []
    if reconcile:
        existing = list(
            session.scalars(
                select(Alert)
                .where(
                    Alert.manifest_id == rt.facts.manifest_id,
                    Alert.leg_index == rt.facts.leg_index,
                    Alert.kind.in_(sorted(TRACK_KINDS)),
                )
                .order_by(Alert.at, Alert.id)
            )
        )
        aliases.clear()
        natural = {c.key for c in candidates}
        taken: set[str] = set()
        for c in candidates:
            if c.kind not in TRACK_KINDS:
                continue
            target = _match(c, existing, natural, taken, now)
            taken.add(target)
            if target != c.key:
                aliases[c.key] = target
    changed: list[Alert] = []
    for found in candidates:
        c = _with_fixes(session, rt, found) if found.kind == SUSPECTED_ILLEGAL_DUMPING else found
        alert = upsert(
            uow=uow, candidate=c, concerned=rt.concerned, now=now, key=aliases.get(c.key, c.key)
        )
        if alert is not None:
            changed.append(alert)
    if reconcile:
        used = {aliases.get(c.key, c.key) for c in candidates}
        last = engine.last_fix
        for alert in existing:
            if alert.dedupe_key in used or _still_ongoing(alert, last):
                continue
            gone = retract(uow=uow, alert=alert, now=now, reason="not_supported_by_replayed_track")
            if gone is not None:
                changed.append(gone)
    return changed


def _end_of(alert: Alert, now: datetime) -> datetime:
    if alert.ended_at is not None:
        return alert.ended_at
    seen = (alert.evidence or {}).get("last_seen_at")
    if (alert.evidence or {}).get("ongoing"):
        return now
    return parse_utc(seen) if isinstance(seen, str) else alert.at


def _match(
    c: Candidate, existing: list[Alert], natural: set[str], taken: set[str], now: datetime
) -> str:
    """The stored alert a replayed candidate is about: its own key, or one overlapping it."""
    if any(a.dedupe_key == c.key for a in existing):
        return c.key
    start, end = c.span
    for a in existing:
        if a.kind != c.kind or a.dedupe_key in taken or a.dedupe_key in natural:
            continue
        if a.at <= end + _SLACK and start <= _end_of(a, now) + _SLACK:
            return a.dedupe_key
    return c.key


def _still_ongoing(alert: Alert, last: tuple[datetime, float, float] | None) -> bool:
    """An ongoing signal gap that began at or after the last fix still stands."""
    evidence = alert.evidence or {}
    if alert.kind != SIGNAL_LOST or not evidence.get("ongoing") or evidence.get("retracted"):
        return False
    return last is None or alert.at >= last[0]


def _with_fixes(session: Session, rt: LegRuntime, c: Candidate) -> Candidate:
    """A dumping candidate with the leg's fixes around its episode as evidence."""
    episode: Episode = c.evidence.get("episode", {})
    start = parse_utc(episode["start"]) - _AROUND
    end = parse_utc(episode.get("end") or episode["last"]) + _AROUND
    rows = list(
        session.execute(
            select(TelemetryFix.t, TelemetryFix.lat, TelemetryFix.lon, TelemetryFix.hdop)
            .where(
                TelemetryFix.manifest_id == rt.facts.manifest_id,
                TelemetryFix.leg_index == rt.facts.leg_index,
                TelemetryFix.t >= start,
                TelemetryFix.t <= end,
            )
            .order_by(TelemetryFix.t, TelemetryFix.seq, TelemetryFix.idx)
        )
    )
    if len(rows) > MAX_EVIDENCE_FIXES:
        step = len(rows) / MAX_EVIDENCE_FIXES
        rows = [rows[int(i * step)] for i in range(MAX_EVIDENCE_FIXES - 1)] + [rows[-1]]
    evidence = dict(c.evidence)
    evidence["fixes"] = [[format_utc(t), lat, lon, hdop] for t, lat, lon, hdop in rows]
    return replace(c, evidence=evidence)


def _unfed_for_watch(
    session: Session, vehicle: str, state: dict[str, Any], fixes: Sequence[Fix]
) -> tuple[list[Fix], list[LockIn]]:
    """The vehicle's stored records its watch has not taken: the e-lock events after the
    last one taken (the latest one, for a new watch) and, when ``fixes`` come, the fixes
    bound to no leg after the last one taken.

    Read from the database rather than taken from the update, so records stored but never
    fed (a process killed between the ingest commit and detection) are fed now.
    """
    query = select(TelemetryLockEvent).where(TelemetryLockEvent.vehicle == vehicle)
    if state.get("lock_t"):
        query = query.where(TelemetryLockEvent.t > parse_utc(state["lock_t"]))
    else:
        query = query.order_by(TelemetryLockEvent.t.desc()).limit(1)
    locks = sorted((to_lock(stored_lock(r)) for r in session.scalars(query)), key=lambda k: k.t)
    if not fixes:
        return [], locks
    since = parse_utc(state["last_t"]) if state.get("last_t") else min(f.t for f in fixes)
    f = TelemetryFix
    rows = session.execute(
        select(f.t, f.lat, f.lon, f.speed_kmh, f.heading, f.hdop)
        .where(f.vehicle == vehicle, f.manifest_id.is_(None), f.t >= since)
        .order_by(f.t, f.device_id, f.seq, f.idx)
    )
    return [Fix(*row) for row in rows], locks


def watch_vehicle(
    *,
    uow: UnitOfWork,
    cache: LegCache,
    vehicle: str,
    device_id: str,
    fixes: Sequence[Fix],
    now: datetime,
) -> list[Alert]:
    """Feed a vehicle's movement watch its e-lock events and its fixes bound to no leg
    (``fixes``: this update's, telling that there are some; the stored ones are fed)."""
    session = uow.session
    hauler, region = cache.hauler(session, vehicle)
    if hauler is None:
        return []
    values: dict[str, Any] = {
        "vehicle": vehicle,
        "device_id": device_id,
        "state": {},
        "last_t": None,
        "updated_at": now,
    }
    session.execute(_insert(session, VehicleWatch).values(**values).on_conflict_do_nothing())
    row = session.scalar(
        select(VehicleWatch)
        .where(VehicleWatch.vehicle == vehicle)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    watcher = VehicleWatcher(vehicle, device_id, cache.book.for_region(region), row.state)
    stored_fixes, stored_locks = _unfed_for_watch(session, vehicle, watcher.state, fixes)
    watcher.locks(stored_locks)
    concerned = Concerned(
        region_code=region, device_id=device_id, vehicle=vehicle, hauler_id=hauler
    )
    changed = []
    for c in watcher.fixes(stored_fixes):
        alert = upsert(uow=uow, candidate=c, concerned=concerned, now=now)
        if alert is not None:
            changed.append(alert)
    row.state = watcher.to_state()
    flag_modified(row, "state")
    row.device_id, row.last_t, row.updated_at = device_id, watcher.last_t, now
    return changed


def detect_update(
    *,
    uow: UnitOfWork,
    cache: LegCache,
    update: TrackUpdate,
    now: datetime,
    leg: bool = True,
    watch: bool = True,
) -> list[Alert]:
    """All detection for one ``TrackUpdate`` (not committed here): its leg's, then its
    vehicle's movement watch (either can be left out, to lock rows in a batch-wide order)."""
    fixes = [to_fix(f) for f in update.fixes]
    locks = [to_lock(lk) for lk in update.locks]
    changed: list[Alert] = []
    if leg and update.manifest_id is not None and update.leg_index is not None:
        changed += detect_leg(
            uow=uow,
            cache=cache,
            manifest_id=update.manifest_id,
            leg_index=update.leg_index,
            fixes=fixes,
            locks=locks,
            now=now,
        )
    if watch and (locks or update.manifest_id is None):
        changed += watch_vehicle(
            uow=uow,
            cache=cache,
            vehicle=update.vehicle,
            device_id=update.device_id,
            fixes=fixes if update.manifest_id is None else [],
            now=now,
        )
    return changed
