"""Named areas (sites, restricted zones, rest areas, pickup points) and point lookup, pure.

Each area lives in its own azimuthal equidistant frame centred on it: polygons are
densified in lon/lat (their edges are straight in lon/lat, RFC 7946 §3.1.1) and
projected, buffers are applied in metres there, and a circle is an exact geodesic
radius (aeqd keeps distances from its centre exact). To find candidates, each area's
bounding cap (centre and radius) becomes one or two lon/lat boxes (split at the
antimeridian, every longitude when it reaches a pole) in a shapely ``STRtree``; the
exact test then runs in the candidate's own frame. Boundaries count as inside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import shapely

from waste.errors import Invalid
from waste.tracking.geometry import LocalFrame, cap_boxes, parse_area, project_area


class AreaKind(StrEnum):
    """What an area is, as far as tracking cares."""

    PICKUP = "pickup"
    DESTINATION = "destination"
    REST_AREA = "rest_area"
    SITE = "site"
    RESTRICTED_ZONE = "restricted_zone"


@dataclass(frozen=True, slots=True)
class AreaRef:
    """A reference to a named area: its kind and id (and a display name)."""

    kind: AreaKind
    id: str
    name: str = ""

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready form."""
        return {"kind": self.kind.value, "id": self.id, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AreaRef:
        """The inverse of ``to_dict``."""
        return cls(AreaKind(data["kind"]), str(data["id"]), str(data.get("name", "")))


@dataclass(frozen=True, slots=True)
class PolygonArea:
    """An area given as a GeoJSON Polygon or MultiPolygon, optionally grown by ``buffer_m``."""

    ref: AreaRef
    geojson: Mapping[str, Any]
    buffer_m: float = 0.0


@dataclass(frozen=True, slots=True)
class CircleArea:
    """An area of every point within ``radius_m`` of a position (e.g. a pickup point)."""

    ref: AreaRef
    lat: float
    lon: float
    radius_m: float


class _Placed:
    """One area ready to test: its frame, its shape in metres (None for a circle)."""

    __slots__ = ("frame", "radius_m", "ref", "shape")

    def __init__(
        self, ref: AreaRef, frame: LocalFrame, shape: shapely.Geometry | None, radius_m: float
    ) -> None:
        self.ref = ref
        self.frame = frame
        self.shape = shape
        self.radius_m = radius_m

    def contains(self, lat: float, lon: float) -> bool:
        x, y = self.frame.xy(lon, lat)
        if self.shape is None:
            return math.sqrt(x * x + y * y) <= self.radius_m
        return bool(shapely.intersects_xy(self.shape, x, y))


class AreaIndex:
    """Named areas indexed for ``containing(lat, lon)`` lookups."""

    def __init__(self, areas: Iterable[PolygonArea | CircleArea] = ()) -> None:
        self._areas: list[_Placed] = []
        boxes: list[tuple[float, float, float, float]] = []
        owners: list[int] = []
        for i, area in enumerate(areas):
            placed = _place(area, f"areas[{i}]")
            for box in cap_boxes(placed.frame.lat0, placed.frame.lon0, placed.radius_m):
                boxes.append(box)
                owners.append(len(self._areas))
            self._areas.append(placed)
        self._owners = np.asarray(owners, dtype=np.intp)
        self._tree = shapely.STRtree(shapely.box(*np.asarray(boxes).T) if boxes else [])

    def __len__(self) -> int:
        return len(self._areas)

    def containing(self, lat: float, lon: float) -> list[AreaRef]:
        """The areas holding the position, in the order they were given."""
        if not self._areas:
            return []
        hits = self._tree.query(shapely.Point(lon, lat))
        if not hits.size:
            return []
        candidates = np.unique(self._owners[hits]).tolist()
        return [self._areas[i].ref for i in candidates if self._areas[i].contains(lat, lon)]


def _place(area: PolygonArea | CircleArea, field: str) -> _Placed:
    if isinstance(area, CircleArea):
        if not (-90 <= area.lat <= 90 and -180 <= area.lon <= 180):
            raise Invalid(f"{field} centre is not a position", field=f"{field}.lat")
        if not (math.isfinite(area.radius_m) and area.radius_m > 0):
            raise Invalid(f"{field}.radius_m must be positive", field=f"{field}.radius_m")
        return _Placed(area.ref, LocalFrame(area.lat, area.lon), None, float(area.radius_m))
    if not (math.isfinite(area.buffer_m) and area.buffer_m >= 0):
        raise Invalid(f"{field}.buffer_m must be zero or more", field=f"{field}.buffer_m")
    geom = parse_area(area.geojson, field=f"{field}.geojson")
    coords = shapely.get_coordinates(geom)
    frame = LocalFrame.around(coords[:, 0], coords[:, 1])
    shape = project_area(geom, frame)
    if area.buffer_m > 0:
        shape = shapely.buffer(shape, area.buffer_m, quad_segs=16)
    xy = shapely.get_coordinates(shape)
    radius = float(np.sqrt((xy * xy).sum(axis=1)).max())
    shapely.prepare(shape)
    return _Placed(area.ref, frame, shape, radius)
