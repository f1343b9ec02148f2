"""Strict readers of JSON values for event data: each names the dotted field it rejects.

JSON numbers arrive as ``int`` or ``float``; ``bool`` is never a number here,
and NaN or infinities are refused. Geometries are GeoJSON (RFC 7946) with
WGS 84 positions ``[lon, lat]`` or ``[lon, lat, alt]``, checked by ``waste.geojson``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from waste.clock import parse_utc
from waste.errors import Invalid
from waste.geojson import Limits, check_geometry

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ROUTE_POSITIONS = 10_000
MAX_RING_POSITIONS = 2_000
MAX_RINGS = 50
_ROUTE_LIMITS = Limits(positions=MAX_ROUTE_POSITIONS)
_AREA_LIMITS = Limits(rings=MAX_RINGS, ring_positions=MAX_RING_POSITIONS)


def obj(
    value: object,
    field: str,
    *,
    required: Collection[str] = (),
    optional: Collection[str] = (),
) -> Mapping[str, Any]:
    """A JSON object with all of ``required``, some of ``optional`` and no other member."""
    if not isinstance(value, Mapping):
        raise Invalid(f"{field} must be a JSON object", field=field)
    for key in value:
        if not isinstance(key, str) or (key not in required and key not in optional):
            raise Invalid(f"{field}.{key} is not a known member", field=f"{field}.{key}")
    for key in required:
        if key not in value:
            raise Invalid(f"{field}.{key} is required", field=f"{field}.{key}")
    return value


def json_list(value: object, field: str, *, min_len: int, max_len: int) -> list[Any]:
    """A JSON array of ``min_len`` to ``max_len`` items."""
    if not isinstance(value, list):
        raise Invalid(f"{field} must be a JSON array", field=field)
    if not min_len <= len(value) <= max_len:
        raise Invalid(f"{field} must hold {min_len} to {max_len} items", field=field)
    return value


def text(value: object, field: str, *, max_len: int = 200) -> str:
    """A non-blank single-line string of at most ``max_len`` characters, returned stripped."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} must be a non-empty string", field=field)
    if len(value) > max_len:
        raise Invalid(f"{field} must be at most {max_len} characters", field=field)
    if _CONTROL.search(value):
        raise Invalid(f"{field} must not contain control characters", field=field)
    return value.strip()


def long_text(value: object, field: str, *, max_len: int = 2000) -> str:
    """Free text (line breaks allowed) of at most ``max_len`` characters, returned stripped."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} must be a non-empty string", field=field)
    if len(value) > max_len:
        raise Invalid(f"{field} must be at most {max_len} characters", field=field)
    if _CONTROL.search(value.replace("\n", "").replace("\r", "").replace("\t", "")):
        raise Invalid(f"{field} must not contain control characters", field=field)
    return value.strip()


def ident(value: object, field: str) -> str:
    """An identifier (party, device or seal id): 1-64 of A-Z a-z 0-9 . _ : -, alphanumeric first."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise Invalid(
            f"{field} must be 1-64 characters of letters, digits, '.', '_', ':' or '-'",
            field=field,
        )
    return value


def plate(value: object, field: str) -> str:
    """A vehicle plate (``浙A12345``, ``浙AD12345``): 2-20 characters, no spaces; upper-cased."""
    if not isinstance(value, str) or not 2 <= len(value) <= 20:
        raise Invalid(f"{field} must be a plate of 2 to 20 characters", field=field)
    if any(c.isspace() for c in value) or _CONTROL.search(value):
        raise Invalid(f"{field} must not contain spaces or control characters", field=field)
    return value.upper()


def number(
    value: object,
    field: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> float:
    """A finite JSON number within the given bounds, as ``float``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{field} must be a number", field=field)
    result = float(value)
    if not math.isfinite(result):
        raise Invalid(f"{field} must be finite", field=field)
    if gt is not None and not result > gt:
        raise Invalid(f"{field} must be greater than {gt:g}", field=field)
    if ge is not None and not result >= ge:
        raise Invalid(f"{field} must be at least {ge:g}", field=field)
    if le is not None and not result <= le:
        raise Invalid(f"{field} must be at most {le:g}", field=field)
    return result


def integer(value: object, field: str, *, ge: int, le: int) -> int:
    """A JSON integer in ``[ge, le]`` (``2.0`` is accepted, ``2.5`` and ``true`` are not)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{field} must be an integer", field=field)
    if not ge <= value <= le:
        raise Invalid(f"{field} must be between {ge} and {le}", field=field)
    return value


def boolean(value: object, field: str) -> bool:
    """A JSON ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false", field=field)
    return value


def choice(value: object, field: str, choices: Collection[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise Invalid(f"{field} must be one of {', '.join(sorted(choices))}", field=field)
    return value


def timestamp(value: object, field: str) -> datetime:
    """A protocol RFC 3339 UTC timestamp."""
    return parse_utc(value, field=field)


def point(value: object, field: str) -> tuple[float, float]:
    """A location object ``{"lat": …, "lon": …}``, returned as ``(lat, lon)``."""
    data = obj(value, field, required=("lat", "lon"))
    lat = number(data["lat"], f"{field}.lat", ge=-90.0, le=90.0)
    lon = number(data["lon"], f"{field}.lon", ge=-180.0, le=180.0)
    return lat, lon


def line_string(value: object, field: str) -> dict[str, Any]:
    """A GeoJSON LineString of 2+ positions, not all equal; returned as a fresh plain dict."""
    return check_geometry(value, field=field, kinds=("LineString",), limits=_ROUTE_LIMITS)


def polygon(value: object, field: str) -> dict[str, Any]:
    """A GeoJSON Polygon of closed rings of 4+ positions; returned as a fresh plain dict.

    Topology (self-intersection, antimeridian edges) is not judged here: signed events
    already in a manifest's chain were accepted without it and must replay the same.
    """
    return check_geometry(
        value, field=field, kinds=("Polygon",), limits=_AREA_LIMITS, topology=False
    )
