"""Geometry for simulated vehicles: drivable paths, offsets, and roads drawn in a local frame.

A ``Path`` is what a truck drives: the geodesics between consecutive lon/lat
vertices, as ``waste.tracking`` reads a declared route (a step crosses the
antimeridian the short way). Positions along it are computed on the WGS 84
ellipsoid (pyproj), so any latitude and the antimeridian are nothing special.
Scenario worlds are laid out in metres in an azimuthal equidistant frame around
their centre and converted to lon/lat at the end.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod

from waste.tracking.geometry import LocalFrame

__all__ = [
    "GEOD",
    "Path",
    "circle_polygon",
    "displace",
    "distance_m",
    "road_between",
    "square_polygon",
]

GEOD = Geod(ellps="WGS84")
FloatArray = NDArray[np.float64]


def _wrap(lon: FloatArray) -> FloatArray:
    return np.asarray((lon + 180.0) % 360.0 - 180.0, dtype=np.float64)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic metres between two positions."""
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def displace(
    lats: ArrayLike, lons: ArrayLike, azimuths: ArrayLike, metres: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Positions ``metres`` away along ``azimuths`` (degrees from north), vectorised."""
    lon, lat, _ = GEOD.fwd(
        np.asarray(lons, dtype=np.float64),
        np.asarray(lats, dtype=np.float64),
        np.asarray(azimuths, dtype=np.float64),
        np.asarray(metres, dtype=np.float64),
    )
    return np.asarray(lat, dtype=np.float64), _wrap(np.asarray(lon, dtype=np.float64))


class Path:
    """Geodesic segments between ``(lon, lat)`` vertices, measured in metres from the start."""

    def __init__(self, coords: Sequence[Sequence[float]]) -> None:
        pts = np.asarray([(float(c[0]), float(c[1])) for c in coords], dtype=np.float64)
        if len(pts) < 2:
            raise ValueError("a path needs at least two vertices")
        if not (np.all(np.abs(pts[:, 0]) <= 180) and np.all(np.abs(pts[:, 1]) <= 90)):
            raise ValueError("vertices are (lon, lat) in degrees")
        az, _, dist = GEOD.inv(pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1])
        keep = np.asarray(dist, dtype=np.float64) > 1e-3
        if not keep.any():
            raise ValueError("a path needs two distinct vertices")
        self._lon = pts[:-1, 0][keep]
        self._lat = pts[:-1, 1][keep]
        self._az = np.asarray(az, dtype=np.float64)[keep]
        self._len = np.asarray(dist, dtype=np.float64)[keep]
        self._cum = np.concatenate([[0.0], np.cumsum(self._len)])
        self.coords = [(float(x), float(y)) for x, y in pts]

    @property
    def length_m(self) -> float:
        """Length along the geodesics."""
        return float(self._cum[-1])

    def at(self, s: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(lats, lons, headings)`` at distances ``s`` along the path (clamped to it)."""
        dist = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length_m)
        idx = np.clip(np.searchsorted(self._cum, dist, side="right") - 1, 0, len(self._len) - 1)
        lon, lat, back = GEOD.fwd(
            self._lon[idx], self._lat[idx], self._az[idx], dist - self._cum[idx]
        )
        heading = (np.asarray(back, dtype=np.float64) + 180.0) % 360.0
        return np.asarray(lat, dtype=np.float64), _wrap(np.asarray(lon, dtype=np.float64)), heading

    def point(self, s: float) -> tuple[float, float]:
        """``(lat, lon)`` at ``s`` metres along."""
        lat, lon, _ = self.at([s])
        return float(lat[0]), float(lon[0])

    def geojson(self) -> dict[str, Any]:
        """The path as a GeoJSON LineString."""
        return {"type": "LineString", "coordinates": [[x, y] for x, y in self.coords]}


def to_lonlat(frame: LocalFrame, xy: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Local metres to ``(lon, lat)`` rounded to 7 decimals (about 1 cm)."""
    xs, ys = zip(*xy, strict=True)
    lon, lat = frame.to_lonlat(xs, ys)
    return [(round(float(a), 7), round(float(b), 7)) for a, b in zip(lon, lat, strict=True)]


def square_polygon(frame: LocalFrame, x: float, y: float, half_m: float) -> dict[str, Any]:
    """A GeoJSON Polygon: a square of side ``2 * half_m`` centred on local ``(x, y)``."""
    ring = [(x - half_m, y - half_m), (x + half_m, y - half_m), (x + half_m, y + half_m)]
    ring += [(x - half_m, y + half_m), (x - half_m, y - half_m)]
    return {"type": "Polygon", "coordinates": [[list(p) for p in to_lonlat(frame, ring)]]}


def circle_polygon(
    frame: LocalFrame, x: float, y: float, radius_m: float, sides: int = 24
) -> dict[str, Any]:
    """A GeoJSON Polygon approximating a circle (vertices on it, counter-clockwise)."""
    ring = [
        (
            x + radius_m * math.cos(2 * math.pi * k / sides),
            y + radius_m * math.sin(2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[list(p) for p in to_lonlat(frame, ring)]]}


def road_between(
    a: tuple[float, float],
    b: tuple[float, float],
    rng: random.Random,
    *,
    via: Sequence[tuple[float, float]] = (),
    wiggle: float = 0.08,
    step_m: float = 150.0,
) -> list[tuple[float, float]]:
    """A plausible road in local metres from ``a`` to ``b`` (through ``via``): a gently
    bending polyline, vertices at most ``step_m`` apart, no sharp reversals."""
    controls = [a, *via, b]
    out: list[tuple[float, float]] = [a]
    for (x0, y0), (x1, y1) in itertools.pairwise(controls):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length  # unit normal
        bends = max(1, int(length // 2500))
        knots = [(0.0, 0.0)]
        for k in range(1, bends + 1):
            f = k / (bends + 1) + rng.uniform(-0.15, 0.15) / (bends + 1)
            knots.append((f, rng.uniform(-wiggle, wiggle) * length))
        knots.append((1.0, 0.0))
        for (f0, o0), (f1, o1) in itertools.pairwise(knots):
            seg = math.hypot((f1 - f0) * length, o1 - o0)
            n = max(1, math.ceil(seg / step_m))
            for i in range(1, n + 1):
                u = i / n
                # smoothstep between knots keeps the bends gentle
                w = u * u * (3 - 2 * u)
                f = f0 + (f1 - f0) * u
                o = o0 + (o1 - o0) * w
                out.append((x0 + (x1 - x0) * f + nx * o, y0 + (y1 - y0) * f + ny * o))
    return out
