"""GeoJSON checks for registry records (site areas, restricted zones, premises).

RFC 7946: positions are [lon, lat] (an optional third value, altitude, is
allowed and ignored), lon in [-180, 180], lat in [-90, 90], finite; polygon
rings are closed with at least four positions; the polygon must be valid
(no self-intersection), as shapely's ``is_valid`` judges it.
"""

from __future__ import annotations

import math
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from waste.errors import GeometryError

MAX_POSITIONS = 100_000


def validate_area(obj: object, *, field: str) -> dict[str, Any]:
    """A valid GeoJSON Polygon or MultiPolygon, returned as given; else ``GeometryError``."""
    geometry = _object(obj, field, ("Polygon", "MultiPolygon"))
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    if not isinstance(polygons, list) or not polygons:
        raise GeometryError("coordinates must be a non-empty array", field=field)
    count = 0
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise GeometryError(f"polygon {p} has no rings", field=field)
        for r, ring in enumerate(rings):
            where = f"polygon {p} ring {r}"
            if not isinstance(ring, list) or len(ring) < 4:
                raise GeometryError(f"{where} needs at least 4 positions", field=field)
            for i, position in enumerate(ring):
                _position(position, field, f"{where} position {i}")
            if ring[0][:2] != ring[-1][:2]:
                raise GeometryError(f"{where} is not closed", field=field)
            count += len(ring)
            if count > MAX_POSITIONS:
                raise GeometryError(f"more than {MAX_POSITIONS} positions", field=field)
    shp = shape(geometry)
    if not shp.is_valid:
        raise GeometryError(f"invalid polygon: {explain_validity(shp)}", field=field)
    return geometry


def validate_site(obj: object, *, field: str) -> dict[str, Any]:
    """A party's premises: a GeoJSON Point, Polygon or MultiPolygon."""
    if isinstance(obj, dict) and obj.get("type") == "Point":
        _position(obj.get("coordinates"), field, "the point")
        if set(obj) - {"type", "coordinates", "bbox"}:
            raise GeometryError("unknown members in the point", field=field)
        return obj
    return validate_area(obj, field=field)


def _object(obj: object, field: str, types: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise GeometryError("a GeoJSON geometry object is required", field=field)
    if obj.get("type") not in types:
        raise GeometryError(f"type must be one of {', '.join(types)}", field=field)
    if set(obj) - {"type", "coordinates", "bbox"}:
        raise GeometryError("unknown members in the geometry", field=field)
    if "coordinates" not in obj:
        raise GeometryError("coordinates are required", field=field)
    return obj


def _position(position: object, field: str, where: str) -> None:
    if not isinstance(position, list) or len(position) not in (2, 3):
        raise GeometryError(f"{where} must be [lon, lat]", field=field)
    for v in position:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise GeometryError(f"{where} has a non-numeric or non-finite value", field=field)
    lon, lat = position[0], position[1]
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise GeometryError(f"{where} is out of range (lon, lat) = ({lon}, {lat})", field=field)
