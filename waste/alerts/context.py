"""What detection needs of a leg, read from the database: its route, areas, parties, thresholds.

``LegCache`` keeps each leg's ``LegRuntime`` (its ``RouteIndex`` and ``AreaIndex`` are
costly to build) in the process, keyed by the leg and checked against the leg's
``changed_at``/``closed_at`` on every use; entries also expire after ``ttl_s`` so
registry edits (permits, zones) reach running gateways.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from waste.alerts.rules import LegFacts
from waste.alerts.store import Concerned
from waste.alerts.thresholds import AlertThresholds, ThresholdBook
from waste.ledger.models import CustodyEvent
from waste.manifests.domain import Custody, Leg, apply_event
from waste.manifests.events import Handover
from waste.manifests.models import Manifest
from waste.registry.models import Party, Permit, RestrictedZone, Vehicle
from waste.telemetry.models import TripLeg
from waste.tracking import AreaIndex, AreaKind, AreaRef, CircleArea, PolygonArea, RouteIndex

NO_ROUTE_CORRIDOR_M = 50_000.0
"""A leg without a declared route (a redirect) is matched against a straight line with this
corridor: no deviations, but stops, zones, gaps and seals are judged as usual."""
ZONE_MARGIN_DEG = 0.2


@dataclass(frozen=True)
class LegRuntime:
    """One leg ready for detection."""

    facts: LegFacts
    thresholds: AlertThresholds
    route: RouteIndex
    areas: AreaIndex
    concerned: Concerned
    opened_at: datetime
    closed_at: datetime | None
    fingerprint: tuple[Any, ...]


def custody_of(session: Session, manifest_id: str) -> Custody | None:
    """A manifest's custody, replayed from its accepted events (None if it has none)."""
    custody: Custody | None = None
    rows = session.scalars(
        select(CustodyEvent)
        .where(CustodyEvent.manifest_id == manifest_id)
        .order_by(CustodyEvent.seq)
    )
    for row in rows:
        custody = apply_event(
            custody,
            event_type=row.type,
            actor=row.actor,
            at=row.at,
            data=row.envelope["body"]["data"],
            signers=row.signers,
            manifest_id=manifest_id,
        )
    return custody


def _fingerprint(row: TripLeg) -> tuple[Any, ...]:
    return (row.changed_at, row.closed_at, row.vehicle, row.device_id)


class LegCache:
    """Leg runtimes of this process, checked against the database on each use."""

    def __init__(self, book: ThresholdBook, *, size: int = 512, ttl_s: float = 300.0) -> None:
        self.book = book
        self._size = size
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int], tuple[float, LegRuntime]] = OrderedDict()
        self._haulers: OrderedDict[str, tuple[float, tuple[str | None, str]]] = OrderedDict()

    def get(
        self, session: Session, manifest_id: str, leg_index: int, *, custody: Custody | None = None
    ) -> LegRuntime | None:
        """The leg's runtime (None if the leg is not stored)."""
        row = session.get(TripLeg, (manifest_id, leg_index), options=[defer(TripLeg.route)])
        if row is None:
            return None
        key = (manifest_id, leg_index)
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
        if found is not None and found[0] > now and found[1].fingerprint == _fingerprint(row):
            return found[1]
        runtime = build_runtime(session, row, self.book, custody=custody)
        if runtime is None:
            return None
        with self._lock:
            self._items[key] = (now + self._ttl, runtime)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return runtime

    def hauler(self, session: Session, plate: str) -> tuple[str | None, str]:
        """``vehicle_hauler``, remembered for a minute (a vehicle rarely changes hands)."""
        now = time.monotonic()
        with self._lock:
            found = self._haulers.get(plate)
        if found is not None and found[0] > now:
            return found[1]
        answer = vehicle_hauler(session, plate)
        with self._lock:
            self._haulers[plate] = (now + min(self._ttl, 60.0), answer)
            self._haulers.move_to_end(plate)
            while len(self._haulers) > self._size * 8:
                self._haulers.popitem(last=False)
        return answer


def build_runtime(
    session: Session, row: TripLeg, book: ThresholdBook, *, custody: Custody | None = None
) -> LegRuntime | None:
    """Build a leg's runtime from its row, its manifest, its custody and the registry."""
    manifest = session.get(Manifest, row.manifest_id)
    custody = custody or custody_of(session, row.manifest_id)
    if manifest is None or custody is None or row.leg_index >= len(custody.legs):
        return None
    leg = custody.legs[row.leg_index]
    th = book.for_region(manifest.region_code)
    areas = _areas(session, custody, leg, th)
    route = _route(row, areas)
    filing = custody.filing
    facts = LegFacts(
        manifest_id=row.manifest_id,
        leg_index=row.leg_index,
        corridor_m=row.corridor_m,
        seal_id=row.seal_id,
        opened_at=row.opened_at,
        restricted_zone_justification=filing.restricted_zone_justification,
    )
    index = AreaIndex(areas + _zones(session, route))
    concerned = Concerned(
        region_code=manifest.region_code,
        manifest_id=row.manifest_id,
        leg_index=row.leg_index,
        device_id=row.device_id,
        vehicle=row.vehicle,
        producer_id=manifest.producer_id,
        hauler_id=leg.hauler,
        site_id=leg.destination,
    )
    return LegRuntime(
        facts, th, route, index, concerned, row.opened_at, row.closed_at, _fingerprint(row)
    )


Area = PolygonArea | CircleArea


def _site_areas(
    session: Session, party_id: str, kind: AreaKind, th: AlertThresholds, *, permits: bool
) -> list[Area]:
    party = session.get(Party, party_id)
    found: list[Area] = []
    shapes: list[dict[str, Any]] = []
    if party is not None and party.site is not None:
        shapes.append(party.site)
    if permits:
        rows = session.scalars(
            select(Permit.area).where(Permit.site_id == party_id, Permit.revoked.is_(False))
        )
        shapes.extend(rows)
    for i, geometry in enumerate(shapes):
        ref = AreaRef(kind, f"{party_id}#{i}", party.name if party else "")
        if geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            found.append(CircleArea(ref, float(lat), float(lon), th.site_radius_m))
        else:
            found.append(PolygonArea(ref, geometry, th.area_buffer_m))
    return found


def _areas(session: Session, custody: Custody, leg: Leg, th: AlertThresholds) -> list[Area]:
    areas: list[Area] = []
    if leg.index == 0:
        areas += _site_areas(session, custody.producer, AreaKind.PICKUP, th, permits=False)
    else:
        previous = custody.legs[leg.index - 1]
        opening = [e for e in custody.history if e.at == leg.opened_at]
        data = opening[-1].data if opening else None
        if isinstance(data, Handover):
            if data.location is not None:
                lat, lon = data.location
                ref = AreaRef(AreaKind.PICKUP, f"handover#{leg.index}", "handover")
                areas.append(CircleArea(ref, lat, lon, th.handover_radius_m))
        else:  # a redirect: the load leaves the site that rejected it
            areas += _site_areas(session, previous.destination, AreaKind.PICKUP, th, permits=True)
    areas += _site_areas(session, leg.destination, AreaKind.DESTINATION, th, permits=True)
    for i, rest in enumerate(custody.filing.rest_areas):
        ref = AreaRef(AreaKind.REST_AREA, f"rest#{i}", "declared rest area")
        areas.append(PolygonArea(ref, rest, th.area_buffer_m))
    return areas


def _route(row: TripLeg, areas: list[Area]) -> RouteIndex:
    if row.route is not None:
        return RouteIndex(row.route, row.corridor_m)
    ends = [_centre(a) for a in areas if a.ref.kind in (AreaKind.PICKUP, AreaKind.DESTINATION)]
    if not ends:
        ends = [(0.0, 0.0)]
    if len(ends) < 2:
        ends.append((ends[0][0], ends[0][1] + 1e-4))
    (lat0, lon0), (lat1, lon1) = ends[0], ends[-1]
    if (lat0, lon0) == (lat1, lon1):
        lon1 += 1e-4
    line = {"type": "LineString", "coordinates": [[lon0, lat0], [lon1, lat1]]}
    return RouteIndex(line, NO_ROUTE_CORRIDOR_M)


def _centre(area: Area) -> tuple[float, float]:
    if isinstance(area, CircleArea):
        return (area.lat, area.lon)
    c = shape(area.geojson).centroid
    return (float(c.y), float(c.x))


def _zones(session: Session, route: RouteIndex) -> list[Area]:
    coords = route.coordinates
    lon0, lat0 = coords[:, 0].min() - ZONE_MARGIN_DEG, coords[:, 1].min() - ZONE_MARGIN_DEG
    lon1, lat1 = coords[:, 0].max() + ZONE_MARGIN_DEG, coords[:, 1].max() + ZONE_MARGIN_DEG
    zones: list[Area] = []
    for zone in session.scalars(select(RestrictedZone)):
        zx0, zy0, zx1, zy1 = shape(zone.area).bounds
        if zx1 < lon0 or zx0 > lon1 or zy1 < lat0 or zy0 > lat1:
            continue
        ref = AreaRef(AreaKind.RESTRICTED_ZONE, zone.id, zone.name)
        zones.append(PolygonArea(ref, zone.area))
    return zones


def vehicle_hauler(session: Session, plate: str) -> tuple[str | None, str]:
    """``(hauler party id, region code)`` of a registered vehicle (region "" if unknown)."""
    found = session.execute(
        select(Vehicle.hauler_id, Party.region_code)
        .join(Party, Party.id == Vehicle.hauler_id)
        .where(func.upper(Vehicle.plate) == plate.upper())
    ).first()
    if found is None:
        return None, ""
    return str(found[0]), str(found[1])
