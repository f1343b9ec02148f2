"""What a trip looks like on the map: declared routes and corridors, each leg's track,
e-lock events, stops, the sites at either end and restricted zones nearby."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import box, shape
from sqlalchemy import or_, select

from waste.clock import format_utc
from waste.console import maps
from waste.manifests.custody import Custody, Leg
from waste.registry.domain import region_prefix
from waste.registry.models import Party, Permit, RestrictedZone
from waste.telemetry.domain import StoredFix, StoredLock
from waste.telemetry.models import TelemetryLockEvent
from waste.telemetry.queries import stored_lock, track
from waste.uow import UnitOfWork

MAX_FIXES_PER_LEG = 10_000
ZONE_MARGIN_DEG = 0.05  # about 5 km: zones this close to the trip are drawn
OPENING = ("unsealed", "tamper")


@dataclass
class Trip:
    """A trip's map layers and the records behind them."""

    features: list[dict[str, Any]] = field(default_factory=list)
    fixes: list[StoredFix] = field(default_factory=list)
    locks: list[StoredLock] = field(default_factory=list)
    stops: list[maps.StopSpan] = field(default_factory=list)

    @property
    def map(self) -> dict[str, Any]:
        """The GeoJSON the page's map draws."""
        return maps.collection(self.features)


def _points(fixes: list[StoredFix]) -> list[maps.TrackPoint]:
    return [maps.TrackPoint(f.fix.t, f.fix.lat, f.fix.lon, f.fix.speed_kmh) for f in fixes]


def locks_of(
    *, uow: UnitOfWork, device_id: str, start: datetime, end: datetime | None
) -> list[StoredLock]:
    """A device's e-lock events with ``start ≤ t < end``, in time order."""
    query = select(TelemetryLockEvent).where(
        TelemetryLockEvent.device_id == device_id, TelemetryLockEvent.t >= start
    )
    if end is not None:
        query = query.where(TelemetryLockEvent.t < end)
    query = query.order_by(TelemetryLockEvent.t, TelemetryLockEvent.seq).limit(1000)
    return [stored_lock(row) for row in uow.session.scalars(query)]


def lock_features(locks: list[StoredLock]) -> list[dict[str, Any]]:
    """E-lock events with a position: openings and tampering stand out as ``seal``."""
    out = []
    for lk in locks:
        if lk.lock.lat is None or lk.lock.lon is None:
            continue
        kind = str(lk.lock.event)
        out.append(
            maps.feature(
                "seal" if kind in OPENING else "lock",
                maps.point(lk.lock.lat, lk.lock.lon),
                f"e-lock {kind} ({lk.lock.lock_id}) at {format_utc(lk.lock.t)}",
                event=kind,
            )
        )
    return out


def of_custody(*, uow: UnitOfWork, custody: Custody, now: datetime) -> Trip:
    """The whole trip of a manifest: every leg's route, corridor, track, locks and stops."""
    trip = Trip()
    width = custody.filing.corridor_m
    drawn: list[Any] = []
    for leg in custody.legs or ():
        route = leg.route or custody.filing.route
        if route not in drawn:
            drawn.append(route)
            add_route(trip, route, width, label=f"declared route (leg {leg.index})")
        add_leg_track(trip, uow=uow, leg=leg, start=leg.opened_at, end=leg.closed_at or now)
    if not custody.legs:
        add_route(trip, custody.filing.route, width, label="declared route")
    add_places(trip, uow=uow, party_ids=[custody.producer, *custody.destinations])
    return trip


def add_route(trip: Trip, route: dict[str, Any] | None, width_m: float, *, label: str) -> None:
    """Draw a declared route and its corridor."""
    if not route:
        return
    area = maps.corridor(route, width_m)
    if area is not None:
        trip.features.append(maps.feature("corridor", area, f"corridor ±{width_m:g} m"))
    trip.features.append(maps.feature("route", route, label))


def add_leg_track(
    trip: Trip, *, uow: UnitOfWork, leg: Leg, start: datetime, end: datetime
) -> None:
    """Draw a leg's track in ``[start, end)`` coloured by speed, its stops and e-lock events."""
    fixes = track(
        uow=uow, device_id=leg.device_id, start=start, end=end, limit=MAX_FIXES_PER_LEG
    )
    add_device_track(trip, uow=uow, device_id=leg.device_id, fixes=fixes, start=start, end=end,
                     leg=leg.index)  # fmt: skip


def add_device_track(
    trip: Trip,
    *,
    uow: UnitOfWork,
    device_id: str,
    fixes: list[StoredFix],
    start: datetime,
    end: datetime,
    leg: int = 0,
) -> None:
    """Draw stored fixes of one device as a coloured track, with stops and e-lock events."""
    points = _points(fixes)
    trip.fixes.extend(fixes)
    trip.features.extend(maps.track(points, leg=leg))
    spans = maps.stops(points)
    trip.stops.extend(spans)
    trip.features.extend(maps.stop_features(spans))
    locks = locks_of(uow=uow, device_id=device_id, start=start, end=end)
    trip.locks.extend(locks)
    trip.features.extend(lock_features(locks))


def add_places(trip: Trip, *, uow: UnitOfWork, party_ids: list[str]) -> None:
    """Draw the parties' site areas, licensed areas and the restricted zones nearby."""
    wanted = sorted(set(party_ids))
    parties = list(uow.session.scalars(select(Party).where(Party.id.in_(wanted))))
    for p in parties:
        f = maps.area_feature("site", p.site, f"{p.name} ({p.kind.replace('_', ' ')})")
        if f is not None:
            trip.features.append(f)
    permits = uow.session.scalars(
        select(Permit).where(Permit.site_id.in_(wanted), Permit.revoked.is_(False))
    )
    names = {p.id: p.name for p in parties}
    for permit in permits:
        f = maps.area_feature(
            "site", permit.area, f"{names.get(permit.site_id, '')} licensed area {permit.number}"
        )
        if f is not None:
            trip.features.append(f)
    add_zones(trip, uow=uow, regions={p.region_code for p in parties})


def add_zones(trip: Trip, *, uow: UnitOfWork, regions: set[str]) -> None:
    """Draw restricted zones of the trip's provinces that lie near what is drawn."""
    bounds = _bounds(trip.features)
    if bounds is None:
        return
    near = box(*bounds).buffer(ZONE_MARGIN_DEG)
    provinces = sorted({region_prefix(r)[:2] for r in regions})
    query = select(RestrictedZone)
    if provinces:
        query = query.where(or_(*(RestrictedZone.region_code.startswith(p) for p in provinces)))
    for zone in uow.session.scalars(query.limit(2000)):
        try:
            if not shape(zone.area).intersects(near):
                continue
        except (ValueError, TypeError, AttributeError):  # a malformed stored area: skip it
            continue
        f = maps.area_feature("zone", zone.area, f"restricted zone: {zone.name} ({zone.kind})")
        if f is not None:
            trip.features.append(f)


def _bounds(features: list[dict[str, Any]]) -> tuple[float, float, float, float] | None:
    lons: list[float] = []
    lats: list[float] = []
    for f in features:
        if f["properties"]["layer"] in ("zone", "corridor"):
            continue
        _collect(f["geometry"].get("coordinates"), lons, lats)
    if not lons:
        return None
    return min(lons), min(lats), max(lons), max(lats)


def _collect(coords: Any, lons: list[float], lats: list[float]) -> None:
    if isinstance(coords, list | tuple) and coords and isinstance(coords[0], int | float):
        lons.append(float(coords[0]))
        lats.append(float(coords[1]))
    elif isinstance(coords, list | tuple):
        for c in coords:
            _collect(c, lons, lats)


def window(at: datetime, minutes: float) -> tuple[datetime, datetime]:
    """``[at - minutes, at + minutes)``."""
    return at - timedelta(minutes=minutes), at + timedelta(minutes=minutes)
