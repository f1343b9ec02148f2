"""GeoJSON layers of the console's maps (pure): corridor, coloured track, stops, markers.

Every feature carries ``properties.layer`` (``route``, ``corridor``, ``track``, ``stop``,
``seal``, ``lock``, ``site``, ``zone``, ``alert``, ``excursion``) and a ``label``;
``static/map.js`` styles by layer, so the vector layers draw with no tiles at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString

from waste.clock import format_utc
from waste.tracking.geometry import LocalFrame, geodesic_m

SPEED_BANDS = ((5.0, "stopped"), (30.0, "slow"), (60.0, "medium"), (90.0, "fast"))
TOP_BAND = "very fast"
RUN_MAX_FIXES = 20  # a track segment feature spans at most this many fixes
STOP_RADIUS_M = 100.0
STOP_MIN_S = 180.0


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """A fix as the map needs it."""

    t: datetime
    lat: float
    lon: float
    speed_kmh: float | None = None


@dataclass(frozen=True, slots=True)
class StopSpan:
    """A stretch where the vehicle stayed within ``STOP_RADIUS_M`` of its first fix."""

    start: datetime
    end: datetime
    lat: float
    lon: float
    fixes: int

    @property
    def minutes(self) -> float:
        """How long it lasted."""
        return (self.end - self.start).total_seconds() / 60


def feature(layer: str, geometry: dict[str, Any], label: str = "", **props: Any) -> dict[str, Any]:
    """A GeoJSON feature on ``layer``."""
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"layer": layer, "label": label, **props},
    }


def point(lat: float, lon: float) -> dict[str, Any]:
    """A GeoJSON point."""
    return {"type": "Point", "coordinates": [lon, lat]}


def collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON feature collection."""
    return {"type": "FeatureCollection", "features": list(features)}


def corridor(route: dict[str, Any], width_m: float) -> dict[str, Any] | None:
    """The area within ``width_m`` of a LineString route, as a GeoJSON polygon (None if odd)."""
    coords = np.asarray(route.get("coordinates") or [], dtype=np.float64)
    if coords.ndim != 2 or len(coords) < 2 or width_m <= 0:
        return None
    frame = LocalFrame.around(coords[:, 0], coords[:, 1])
    x, y = frame.to_xy(coords[:, 0], coords[:, 1])
    area = LineString(np.column_stack([x, y])).buffer(width_m, quad_segs=4)
    area = shapely.simplify(area, tolerance=max(width_m / 10, 1.0))
    if area.is_empty or area.geom_type != "Polygon":
        return None
    ring = np.asarray(area.exterior.coords)
    lon, lat = frame.to_lonlat(ring[:, 0], ring[:, 1])
    return {
        "type": "Polygon",
        "coordinates": [[[round(a, 6), round(b, 6)] for a, b in zip(lon, lat, strict=True)]],
    }


def speed_band(kmh: float) -> str:
    """The colour band of a speed."""
    for limit, name in SPEED_BANDS:
        if kmh < limit:
            return name
    return TOP_BAND


def _segment_speed(a: TrackPoint, b: TrackPoint) -> float:
    if b.speed_kmh is not None:
        return b.speed_kmh
    seconds = (b.t - a.t).total_seconds()
    if seconds <= 0:
        return 0.0
    return geodesic_m(a.lat, a.lon, b.lat, b.lon) / seconds * 3.6


def track(points: Sequence[TrackPoint], *, leg: int = 0) -> list[dict[str, Any]]:
    """The track as LineStrings of runs of one speed band, each with its time fraction.

    ``properties.band`` colours by speed; ``properties.t_frac`` (0 at the first fix,
    1 at the last) colours by time.
    """
    if len(points) < 2:
        return [
            feature("track", point(p.lat, p.lon), f"fix {format_utc(p.t)}", band="stopped",
                    t_frac=0.0, leg=leg)
            for p in points
        ]  # fmt: skip
    t0, t1 = points[0].t, points[-1].t
    span = max((t1 - t0).total_seconds(), 1.0)
    groups: list[list[tuple[TrackPoint, TrackPoint, float, str]]] = []
    for a, b in itertools.pairwise(points):
        kmh = _segment_speed(a, b)
        band = speed_band(kmh)
        if groups and groups[-1][-1][3] == band and len(groups[-1]) < RUN_MAX_FIXES:
            groups[-1].append((a, b, kmh, band))
        else:
            groups.append([(a, b, kmh, band)])
    return [
        _run([g[0][0], *(seg[1] for seg in g)], g[0][3], [seg[2] for seg in g], t0, span, leg)
        for g in groups
    ]


def _run(
    run: list[TrackPoint], band: str, speeds: list[float], t0: datetime, span: float, leg: int
) -> dict[str, Any]:
    mid = run[0].t + (run[-1].t - run[0].t) / 2
    return feature(
        "track",
        {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in run]},
        f"{format_utc(run[0].t)} – {format_utc(run[-1].t)}: "
        f"{round(max(speeds or [0.0]))} km/h max ({band})",
        band=band,
        t_frac=round((mid - t0).total_seconds() / span, 4),
        leg=leg,
    )


def stops(
    points: Sequence[TrackPoint],
    *,
    radius_m: float = STOP_RADIUS_M,
    min_s: float = STOP_MIN_S,
) -> list[StopSpan]:
    """Stretches of at least ``min_s`` seconds within ``radius_m`` of their first fix."""
    found: list[StopSpan] = []
    i, n = 0, len(points)
    while i < n:
        anchor = points[i]
        j = i + 1
        while j < n and _metres(anchor, points[j]) <= radius_m:
            j += 1
        last = points[j - 1]
        if (last.t - anchor.t).total_seconds() >= min_s:
            lats = [p.lat for p in points[i:j]]
            lons = [p.lon for p in points[i:j]]
            found.append(
                StopSpan(anchor.t, last.t, sum(lats) / len(lats), sum(lons) / len(lons), j - i)
            )
            i = j
        else:
            i += 1
    return found


def _metres(a: TrackPoint, b: TrackPoint) -> float:
    return geodesic_m(a.lat, a.lon, b.lat, b.lon)


def stop_features(spans: Sequence[StopSpan]) -> list[dict[str, Any]]:
    """Stops as point features."""
    return [
        feature(
            "stop",
            point(s.lat, s.lon),
            f"stopped {s.minutes:.0f} min from {format_utc(s.start)}",
        )
        for s in spans
    ]


def area_feature(layer: str, area: dict[str, Any] | None, label: str) -> dict[str, Any] | None:
    """A site or zone area as a feature (None if there is no area)."""
    if not area or area.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    return feature(layer, area, label)
