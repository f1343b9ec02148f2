"""GeoJSON checks for registry records (site areas, restricted zones, premises).

The rules are ``waste.geojson``'s, topology included (these areas are what route
matching later tests fixes against), with at most ``MAX_POSITIONS`` positions. An
error names the request field as a whole (``area``, ``site``); its message names the
offending member, e.g. ``area.coordinates[0][3] is not closed: …``.
"""

from __future__ import annotations

from typing import Any

from waste.errors import GeometryError
from waste.geojson import Limits, check_geometry

MAX_POSITIONS = 100_000
_LIMITS = Limits(positions=MAX_POSITIONS)


def validate_area(obj: object, *, field: str) -> dict[str, Any]:
    """A valid GeoJSON Polygon or MultiPolygon, returned as given; else ``GeometryError``."""
    return _checked(obj, field, ("Polygon", "MultiPolygon"))


def validate_site(obj: object, *, field: str) -> dict[str, Any]:
    """A party's premises: a GeoJSON Point, Polygon or MultiPolygon, returned as given."""
    return _checked(obj, field, ("Point", "Polygon", "MultiPolygon"))


def _checked(obj: object, field: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    try:
        check_geometry(obj, field=field, kinds=kinds, limits=_LIMITS)
    except GeometryError as exc:
        raise GeometryError(exc.detail, field=field) from None
    assert isinstance(obj, dict)  # check_geometry accepted it: a JSON object
    return obj
