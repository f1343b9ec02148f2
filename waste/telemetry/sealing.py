"""Sealing a closed leg's telemetry into the transparency log, and checking it again later.

A leg is due when it is closed, the grace period has passed since it closed and
since its last change (late data, a window change), and its current revision is
not sealed yet. Sealing computes the leg's ``LegDigest`` (``waste.telemetry.domain``)
from the stored rows, then, under the log's append lock, checks the leg's revision
did not move meanwhile and appends ``{"kind": "leg_telemetry", …}`` as version
``n + 1``. ``leg_seals``' primary key ``(manifest_id, leg_index, version)`` makes a
second sealing of the same version by another gateway fail instead of doubling it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.payloads import Fix, LockEvent
from waste.errors import NotFound
from waste.ledger.store import LogStore
from waste.telemetry.domain import (
    LEG_TELEMETRY,
    LegDigest,
    LegWindow,
    SortKey,
    digest_track,
    seal_entry,
)
from waste.telemetry.legs import window_of
from waste.telemetry.models import LegSeal, TelemetryFix, TelemetryLockEvent, TripLeg
from waste.telemetry.queries import stored_fix, stored_lock
from waste.uow import UnitOfWork

__all__ = ["LegCheck", "due_legs", "leg_digest", "leg_records", "seal_leg", "verify_leg"]


def due_legs(
    *, uow: UnitOfWork, now: datetime, grace: timedelta, limit: int = 100
) -> list[tuple[str, int]]:
    """Closed legs whose grace has passed and whose current revision is not sealed."""
    cutoff = now - grace
    query = (
        select(TripLeg.manifest_id, TripLeg.leg_index)
        .where(
            TripLeg.closed_at.is_not(None),
            TripLeg.closed_at <= cutoff,
            TripLeg.changed_at <= cutoff,
            TripLeg.sealed_revision < TripLeg.revision,
        )
        .order_by(TripLeg.changed_at, TripLeg.manifest_id, TripLeg.leg_index)
        .limit(limit)
    )
    return [(m, int(i)) for m, i in uow.session.execute(query)]


def leg_records(session: Session, leg: LegWindow) -> list[tuple[SortKey, Fix | LockEvent]]:
    """Every fix and e-lock event of the leg's vehicle in its window, with its sort key."""
    records: list[tuple[SortKey, Fix | LockEvent]] = []
    fixes = select(TelemetryFix).where(
        TelemetryFix.vehicle == leg.vehicle, TelemetryFix.t >= leg.opened_at
    )
    locks = select(TelemetryLockEvent).where(
        TelemetryLockEvent.vehicle == leg.vehicle, TelemetryLockEvent.t >= leg.opened_at
    )
    if leg.closed_at is not None:
        fixes = fixes.where(TelemetryFix.t < leg.closed_at)
        locks = locks.where(TelemetryLockEvent.t < leg.closed_at)
    for fix_row in session.scalars(fixes):
        fix = stored_fix(fix_row)
        records.append((fix.key, fix.fix))
    for lock_row in session.scalars(locks):
        lock = stored_lock(lock_row)
        records.append((lock.key, lock.lock))
    return records


def leg_digest(session: Session, leg: LegWindow) -> LegDigest:
    """The leg's telemetry digest recomputed from the stored rows."""
    return digest_track(leg_records(session, leg))


def seal_leg(*, uow: UnitOfWork, manifest_id: str, leg_index: int, now: datetime) -> LegSeal | None:
    """Seal the leg's current revision into the log and commit; None if nothing to seal."""
    session = uow.session
    row = session.get(TripLeg, (manifest_id, leg_index))
    if row is None or row.closed_at is None or row.sealed_revision >= row.revision:
        return None
    revision, leg = row.revision, window_of(row)
    digest = leg_digest(session, leg)  # computed before taking the log lock
    # The leg's row lock first, the log's append lock last (taken by append), as
    # manifest appends do: the reverse order could deadlock with an append's leg sync.
    store = LogStore(session)
    current = session.execute(
        select(TripLeg.revision, TripLeg.sealed_revision)
        .where(TripLeg.manifest_id == manifest_id, TripLeg.leg_index == leg_index)
        .with_for_update()
    ).one()
    if current.revision != revision or current.sealed_revision >= revision:
        return None  # changed meanwhile, or sealed by another gateway: the next round decides
    version = 1 + (
        session.scalar(
            select(func.max(LegSeal.version)).where(
                LegSeal.manifest_id == manifest_id, LegSeal.leg_index == leg_index
            )
        )
        or 0
    )
    entry = seal_entry(leg=leg, digest=digest, version=version, accepted_at=now)
    leaf_index, _ = store.append(kind=LEG_TELEMETRY, subject=manifest_id, entry=entry)
    seal = LegSeal(
        manifest_id=manifest_id,
        leg_index=leg_index,
        version=version,
        revision=revision,
        device_id=leg.device_id,
        vehicle=leg.vehicle,
        count=digest.count,
        first_t=digest.first_t,
        last_t=digest.last_t,
        root=digest.root,
        leaf_index=leaf_index,
        sealed_at=now,
    )
    session.add(seal)
    session.execute(
        update(TripLeg)
        .where(TripLeg.manifest_id == manifest_id, TripLeg.leg_index == leg_index)
        .values(sealed_revision=revision)
        .execution_options(synchronize_session=False)
    )
    uow.flush()
    uow.commit()
    return seal


@dataclass(frozen=True)
class LegCheck:
    """A leg's sealed telemetry root against the one recomputed from the stored rows."""

    manifest_id: str
    leg_index: int
    version: int
    leaf_index: int
    sealed_root: str  # as the log entry states it
    recomputed: LegDigest
    current: bool  # False: data or the window changed after this version was sealed

    @property
    def ok(self) -> bool:
        """Whether the stored track is exactly the sealed one."""
        return self.current and self.sealed_root == self.recomputed.root


def verify_leg(*, uow: UnitOfWork, manifest_id: str, leg_index: int) -> LegCheck:
    """Recompute the leg's root from stored rows and compare it with its latest log entry."""
    session = uow.session
    row = session.get(TripLeg, (manifest_id, leg_index))
    seal = session.scalar(
        select(LegSeal)
        .where(LegSeal.manifest_id == manifest_id, LegSeal.leg_index == leg_index)
        .order_by(LegSeal.version.desc())
        .limit(1)
    )
    if row is None or seal is None:
        raise NotFound(f"leg {leg_index} of manifest {manifest_id} is not sealed")
    entry = json.loads(LogStore(session).entry(seal.leaf_index).entry)
    payload = entry["payload"]
    if entry["kind"] != LEG_TELEMETRY or (payload["manifest_id"], payload["leg_index"]) != (
        manifest_id,
        leg_index,
    ):
        raise NotFound(f"log entry {seal.leaf_index} does not seal this leg")
    return LegCheck(
        manifest_id=manifest_id,
        leg_index=leg_index,
        version=int(payload["version"]),
        leaf_index=seal.leaf_index,
        sealed_root=str(payload["root"]),
        recomputed=leg_digest(session, window_of(row)),
        current=row.revision == seal.revision,
    )
