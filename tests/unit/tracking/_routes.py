"""Routes and fix streams built with geopy / geographiclib, independent of the code under test."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from geographiclib.geodesic import Geodesic  # type: ignore[import-untyped]
from geopy.distance import geodesic

from waste.tracking import Fix, RouteIndex

T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
WGS84 = Geodesic.WGS84


def line(coords: list[list[float]]) -> dict[str, Any]:
    """A GeoJSON LineString."""
    return {"type": "LineString", "coordinates": coords}


def square(lat: float, lon: float, half_m: float) -> dict[str, Any]:
    """A GeoJSON Polygon: a lon/lat box of about ``2 * half_m`` a side centred on a point."""
    dlat = half_m / 111_320.0
    dlon = half_m / (111_320.0 * math.cos(math.radians(lat)))
    w, e, s, n = lon - dlon, lon + dlon, lat - dlat, lat + dlat
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def geodesic_route(
    lat: float, lon: float, bearing: float, length_m: float, step_m: float
) -> list[list[float]]:
    """Vertices every ``step_m`` along ONE geodesic leaving (lat, lon) on ``bearing``."""
    n = round(length_m / step_m)
    out = []
    for i in range(n + 1):
        p = geodesic(meters=i * step_m).destination((lat, lon), bearing)
        out.append([p.longitude, p.latitude])
    return out


def winding_route(
    lat: float, lon: float, n_vertices: int, step_m: float, seed: int = 0
) -> list[list[float]]:
    """A road-like route: bearing wandering smoothly, a vertex every ``step_m``."""
    out = [[lon, lat]]
    bearing = 60.0 + 17 * seed
    turn = 25.0 * min(1.0, step_m / 1000.0)  # degrees per step at most: curves of ~2 km radius
    for i in range(n_vertices - 1):
        bearing += turn * math.sin(i / 7.0 + seed) * math.cos(i / 31.0)
        d = WGS84.Direct(out[-1][1], out[-1][0], bearing, step_m)
        out.append([(d["lon2"] + 180.0) % 360.0 - 180.0, d["lat2"]])
    return out


def geopy_length(coords: list[list[float]]) -> float:
    """Sum of geopy geodesic distances between consecutive vertices."""
    pairs = itertools.pairwise(coords)
    return float(sum(geodesic((a[1], a[0]), (b[1], b[0])).meters for a, b in pairs))


def offset(lat: float, lon: float, azimuth: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` away on ``azimuth``."""
    d = WGS84.Direct(lat, lon, azimuth, metres)
    return d["lat2"], (d["lon2"] + 180.0) % 360.0 - 180.0


def azimuth(a: list[float], b: list[float]) -> float:
    """Forward azimuth from vertex a to vertex b ([lon, lat])."""
    return float(WGS84.Inverse(a[1], a[0], b[1], b[0])["azi1"])


class Drive:
    """Fixes along a route: at a time, a progress, and a signed offset to the left."""

    def __init__(self, route: RouteIndex) -> None:
        self.route = route

    def position(self, progress_m: float, left_m: float = 0.0) -> tuple[float, float]:
        """Where a point ``left_m`` to the left of the route at ``progress_m`` lies."""
        lat, lon = self.route.point_at(progress_m)
        ahead = self.route.point_at(min(progress_m + 1.0, self.route.length_m))
        behind = self.route.point_at(max(progress_m - 1.0, 0.0))
        az = WGS84.Inverse(behind[0], behind[1], ahead[0], ahead[1])["azi1"]
        if left_m == 0.0:
            return lat, lon
        return offset(lat, lon, az - 90.0, left_m)

    def fix(
        self, seconds: float, progress_m: float, left_m: float = 0.0, hdop: float | None = 1.0
    ) -> Fix:
        """A fix at T0 + seconds."""
        lat, lon = self.position(progress_m, left_m)
        return Fix(T0 + timedelta(seconds=seconds), lat, lon, hdop=hdop)
