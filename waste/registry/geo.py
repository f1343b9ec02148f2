"""GeoJSON checks for registry records (site areas, restricted zones, premises).

Delegates to ``waste.tracking.geometry`` so that the registry and route
matching accept exactly the same geometries.
"""

from __future__ import annotations

from typing import Any

from waste.tracking import geometry


def validate_area(obj: object, *, field: str) -> dict[str, Any]:
    """A valid GeoJSON Polygon or MultiPolygon, returned as given; else ``GeometryError``."""
    geometry.validate_polygonal(obj, field=field)
    assert isinstance(obj, dict)
    return obj


def validate_site(obj: object, *, field: str) -> dict[str, Any]:
    """A party's premises: a GeoJSON Point, Polygon or MultiPolygon."""
    if isinstance(obj, dict) and obj.get("type") == "Point":
        geometry.validate_point(obj, field=field)
        return obj
    return validate_area(obj, field=field)
