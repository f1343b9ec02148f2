"""Filing checks on the declared route: starts at the producer, ends inside the destination,
avoids restricted zones unless the manifest says why.

GeoJSON lines are straight in longitude/latitude (RFC 7946 §3.1.1), so
containment and crossing are decided in that plane with shapely; only the
"how far" answers are geodesic (geopy), and those are one-off checks at filing,
not per-fix work.
"""

from __future__ import annotations

from typing import Any

from geopy.distance import geodesic
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from sqlalchemy import select

from waste.errors import FilingRejected
from waste.manifests.events import Filing
from waste.registry.models import Party, Permit, RestrictedZone
from waste.uow import UnitOfWork

START_TOLERANCE_M = 500.0
"""How far the route's first position may lie from the producer's premises."""

END_TOLERANCE_M = 50.0
"""How far outside the destination's area the route's last position may lie (GPS-drawn edges)."""


def distance_m(point: tuple[float, float], area: BaseGeometry) -> float:
    """Geodesic metres from a (lon, lat) point to the nearest point of ``area`` (0 inside)."""
    p = Point(point)
    if area.covers(p):
        return 0.0
    nearest = nearest_points(area, p)[0]
    return float(geodesic((p.y, p.x), (nearest.y, nearest.x)).meters)


def check_filing_route(
    *, uow: UnitOfWork, filing: Filing, producer: Party, permits: list[Permit]
) -> None:
    """Raise ``FilingRejected`` naming ``data.route`` if the declared route does not fit."""
    route = shape(filing.route)
    coords = list(route.coords)
    start, end = coords[0], coords[-1]
    if producer.site is not None:
        gap = distance_m(start, shape(producer.site))
        if gap > START_TOLERANCE_M:
            raise FilingRejected(
                f"the route starts {gap:.0f} m from the producer's premises "
                f"(at most {START_TOLERANCE_M:.0f} m)",
                field="data.route",
            )
    gaps = [distance_m(end, shape(p.area)) for p in permits]
    if min(gaps) > END_TOLERANCE_M:
        raise FilingRejected(
            f"the route ends {min(gaps):.0f} m outside the destination's licensed area",
            field="data.route",
        )
    crossed = crossed_zones(uow=uow, route_geojson=filing.route)
    if crossed and not filing.restricted_zone_justification:
        raise FilingRejected(
            "the route crosses restricted zone(s) "
            + ", ".join(crossed)
            + "; reroute, or state why in restricted_zone_justification",
            field="data.route",
        )


def crossed_zones(*, uow: UnitOfWork, route_geojson: dict[str, Any]) -> list[str]:
    """Names of the restricted zones a route passes through."""
    route = shape(route_geojson)
    minx, miny, maxx, maxy = route.bounds
    names = []
    for zone in uow.session.scalars(select(RestrictedZone).order_by(RestrictedZone.name)):
        area = shape(zone.area)
        zx0, zy0, zx1, zy1 = area.bounds
        if zx1 < minx or zx0 > maxx or zy1 < miny or zy0 > maxy:
            continue
        if route.intersects(area):
            names.append(zone.name)
    return names
