"""GeoJSON geometry validation (RFC 7946), pure: the one checker behind the registry's
areas, the manifests' routes and rest areas, and route matching.

``check_geometry`` returns a fresh plain ``{"type", "coordinates"}`` dict whose numbers
are all floats, or raises ``GeometryError`` whose ``field`` is the dotted path of the
offending member, e.g. ``data.route.coordinates[3][1]``. ``geometry_shape`` checks the
same way and returns the shapely geometry (lon/lat, altitude dropped).

What is checked, in this order:

- an object whose ``type`` is one of the kinds asked for, with ``coordinates``, an
  optional ``bbox`` (not checked) and no other member;
- positions ``[lon, lat]`` or ``[lon, lat, alt]`` of finite JSON numbers (``true`` is
  not a number), lon in [-180, 180], lat in [-90, 90];
- Point: one position; LineString: at least 2 positions, not one point repeated;
  Polygon: a non-empty list of linear rings, each of at least 4 positions and closed
  (last position = first); MultiPolygon: a non-empty list of polygons;
- ``Limits``: positions in the whole geometry, rings per polygon, positions per ring;
- with ``topology`` (the default): no polygon edge crosses the antimeridian (a step of
  more than 180° in longitude: such a polygon must be cut there, §3.1.9), and polygons
  are valid as shapely's ``is_valid`` judges them (no self-intersection, holes inside
  their shell, parts of a MultiPolygon not overlapping).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from waste.errors import GeometryError

__all__ = ["UNLIMITED", "Limits", "check_geometry", "geometry_shape"]

KINDS = ("Point", "LineString", "Polygon", "MultiPolygon")
_MEMBERS = frozenset({"type", "coordinates", "bbox"})

Position = list[float]


@dataclass(frozen=True, slots=True)
class Limits:
    """How large a geometry may be (a bound on the work a hostile one can cause)."""

    positions: int = 100_000
    """In the whole geometry."""
    rings: int = 10_000
    """Per polygon (the shell and its holes)."""
    ring_positions: int = 100_000
    """Per linear ring."""


UNLIMITED = Limits(positions=sys.maxsize, rings=sys.maxsize, ring_positions=sys.maxsize)
_DEFAULT = Limits()


def check_geometry(
    obj: object,
    *,
    field: str,
    kinds: Collection[str],
    limits: Limits = _DEFAULT,
    topology: bool = True,
) -> dict[str, Any]:
    """A valid GeoJSON geometry of one of ``kinds``, as a fresh plain dict of floats."""
    return _Checker(field, limits).geometry(obj, kinds, topology)[0]


def geometry_shape(
    obj: object,
    *,
    field: str,
    kinds: Collection[str],
    limits: Limits = UNLIMITED,
) -> BaseGeometry:
    """A valid GeoJSON geometry of one of ``kinds`` (topology checked) as a shapely one."""
    geometry, shape = _Checker(field, limits).geometry(obj, kinds, True)
    return shape if shape is not None else _shape(geometry)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return isinstance(value, list | tuple)


def _xy(positions: list[Position]) -> list[tuple[float, float]]:
    return [(p[0], p[1]) for p in positions]


def _polygon_shape(rings: list[list[Position]]) -> Polygon:
    return Polygon(_xy(rings[0]), [_xy(r) for r in rings[1:]])


def _shape(geometry: dict[str, Any]) -> BaseGeometry:
    kind, coords = geometry["type"], geometry["coordinates"]
    if kind == "Point":
        return Point(coords[0], coords[1])
    if kind == "LineString":
        return LineString(_xy(coords))
    if kind == "Polygon":
        return _polygon_shape(coords)
    return MultiPolygon([_polygon_shape(p) for p in coords])


class _Checker:
    """One walk over one geometry, counting positions against ``limits``."""

    def __init__(self, field: str, limits: Limits) -> None:
        self.field = field
        self.limits = limits
        self.count = 0

    def geometry(
        self, obj: object, kinds: Collection[str], topology: bool
    ) -> tuple[dict[str, Any], BaseGeometry | None]:
        field = self.field
        wanted = [k for k in KINDS if k in kinds]
        names = " or ".join(repr(k) for k in wanted)
        if not isinstance(obj, Mapping):
            raise GeometryError(f"{field} must be a GeoJSON {names} object", field=field)
        for key in obj:
            if key not in _MEMBERS:
                where = f"{field}.{str(key)[:40]}"
                raise GeometryError(f"{where} is not a known member", field=where)
        kind = obj.get("type")
        if kind not in wanted:
            where = f"{field}.type"
            raise GeometryError(f"{where} must be {names}, not {_show(kind)}", field=where)
        if "coordinates" not in obj:
            where = f"{field}.coordinates"
            raise GeometryError(f"{where} is required", field=where)
        where, coords = f"{field}.coordinates", obj["coordinates"]
        if kind == "Point":
            out: Any = self.position(coords, where)
        elif kind == "LineString":
            out = self.line(coords, where)
        elif kind == "Polygon":
            out = self.polygon(coords, where, topology)
        else:
            out = self.multipolygon(coords, where, topology)
        geometry = {"type": kind, "coordinates": out}
        if not topology or kind in ("Point", "LineString"):
            return geometry, None
        shape = _shape(geometry)
        if not shape.is_valid:
            raise GeometryError(f"{field} is not valid: {explain_validity(shape)}", field=field)
        return geometry, shape

    def position(self, value: object, where: str) -> Position:
        if not _is_array(value) or not 2 <= len(value) <= 3:
            raise GeometryError(
                f"{where} must be a position [lon, lat] or [lon, lat, alt]", field=where
            )
        out: Position = []
        for j, number in enumerate(value):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise GeometryError(f"{where}[{j}] must be a number", field=f"{where}[{j}]")
            if not math.isfinite(number):
                raise GeometryError(f"{where}[{j}] must be finite", field=f"{where}[{j}]")
            out.append(float(number))
        lon, lat = out[0], out[1]
        if not -180.0 <= lon <= 180.0:
            at = f"{where}[0]"
            raise GeometryError(f"{at} (lon) = {lon} is outside [-180, 180]", field=at)
        if not -90.0 <= lat <= 90.0:
            at = f"{where}[1]"
            raise GeometryError(f"{at} (lat) = {lat} is outside [-90, 90]", field=at)
        return out

    def positions(self, value: object, where: str, *, minimum: int, maximum: int) -> list[Position]:
        if not _is_array(value) or len(value) < minimum:
            raise GeometryError(
                f"{where} must be a list of at least {minimum} positions", field=where
            )
        if len(value) > maximum:
            raise GeometryError(f"{where} holds more than {maximum} positions", field=where)
        self.count += len(value)
        if self.count > self.limits.positions:
            raise GeometryError(
                f"{self.field} has more than {self.limits.positions} positions", field=self.field
            )
        return [self.position(p, f"{where}[{i}]") for i, p in enumerate(value)]

    def line(self, value: object, where: str) -> list[Position]:
        points = self.positions(value, where, minimum=2, maximum=self.limits.positions)
        if all(p[:2] == points[0][:2] for p in points):
            raise GeometryError(f"{where} must not be a single point repeated", field=where)
        return points

    def polygon(self, value: object, where: str, topology: bool) -> list[list[Position]]:
        if not _is_array(value) or not value:
            raise GeometryError(f"{where} must be a non-empty list of linear rings", field=where)
        if len(value) > self.limits.rings:
            raise GeometryError(
                f"{where} holds more than {self.limits.rings} linear rings", field=where
            )
        return [self.ring(r, f"{where}[{i}]", topology) for i, r in enumerate(value)]

    def ring(self, value: object, where: str, topology: bool) -> list[Position]:
        ring = self.positions(value, where, minimum=4, maximum=self.limits.ring_positions)
        if ring[0] != ring[-1]:
            raise GeometryError(
                f"{where} is not closed: its first and last positions differ", field=where
            )
        if topology:
            for k in range(1, len(ring)):
                if abs(ring[k][0] - ring[k - 1][0]) > 180.0:
                    at = f"{where}[{k}]"
                    raise GeometryError(
                        f"{at}: the edge crosses the antimeridian; "
                        "cut the polygon there (RFC 7946 §3.1.9)",
                        field=at,
                    )
        return ring

    def multipolygon(self, value: object, where: str, topology: bool) -> list[list[list[Position]]]:
        if not _is_array(value) or not value:
            raise GeometryError(f"{where} must be a non-empty list of polygons", field=where)
        return [self.polygon(p, f"{where}[{i}]", topology) for i, p in enumerate(value)]
