"""The one GeoJSON checker (waste.geojson) and how its three callers report its errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waste.errors import GeometryError
from waste.geojson import Limits, check_geometry, geometry_shape
from waste.manifests import _fields
from waste.registry.geo import validate_area, validate_site
from waste.tracking import parse_area

RING = [[120.0, 29.0], [120.01, 29.0], [120.01, 29.01], [120.0, 29.01], [120.0, 29.0]]
SQUARE = {"type": "Polygon", "coordinates": [RING]}
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
ACROSS = {
    "type": "Polygon",
    "coordinates": [[[179.9, 0], [-179.9, 0], [-179.9, 1], [179.9, 1], [179.9, 0]]],
}
AREAS = ("Polygon", "MultiPolygon")


def _ring(i: int, position: list[Any]) -> dict[str, Any]:
    """The square with its position ``i`` replaced."""
    return {"type": "Polygon", "coordinates": [[*RING[:i], position, *RING[i + 1 :]]]}


def _error(obj: object, **kw: Any) -> GeometryError:
    with pytest.raises(GeometryError) as info:
        check_geometry(obj, **{"field": "g", "kinds": AREAS, **kw})
    return info.value


def test_a_good_polygon_comes_back_as_fresh_floats_without_bbox() -> None:
    ring = [[0, 0], [1, 0], [1, 1], [0, 0]]
    obj = {"type": "Polygon", "coordinates": [ring], "bbox": []}
    out = check_geometry(obj, field="g", kinds=AREAS)
    assert out == {"type": "Polygon", "coordinates": [[[float(x), float(y)] for x, y in ring]]}
    assert all(isinstance(c, float) for c in out["coordinates"][0][1])
    out["coordinates"][0][0][0] = 5.0
    assert ring[0][0] == 0


@pytest.mark.parametrize(
    ("obj", "field", "words"),
    [
        ("POLYGON((0 0))", "g", "GeoJSON 'Polygon' or 'MultiPolygon' object"),
        ({**SQUARE, "crs": {}}, "g.crs", "not a known member"),
        ({"type": "Point", "coordinates": [0, 0]}, "g.type", "not 'Point'"),
        ({"type": "Polygon"}, "g.coordinates", "required"),
        ({"type": "Polygon", "coordinates": []}, "g.coordinates", "non-empty"),
        ({"type": "Polygon", "coordinates": [RING[:3]]}, "g.coordinates[0]", "at least 4"),
        ({"type": "Polygon", "coordinates": [[*RING[:-1], [1, 1]]]}, "g.coordinates[0]", "closed"),
        (_ring(2, [1, math.nan]), "g.coordinates[0][2][1]", "finite"),
        (_ring(2, [True, 1]), "g.coordinates[0][2][0]", "number"),
        (_ring(2, [1, 95]), "g.coordinates[0][2][1]", "(lat)"),
        (_ring(2, [181, 1]), "g.coordinates[0][2][0]", "(lon)"),
        (_ring(2, [1]), "g.coordinates[0][2]", "[lon, lat]"),
        ({"type": "MultiPolygon", "coordinates": []}, "g.coordinates", "list of polygons"),
        (BOWTIE, "g", "Self-intersection"),
        (ACROSS, "g.coordinates[0][1]", "antimeridian"),
    ],
)
def test_errors_name_the_member(obj: object, field: str, words: str) -> None:
    err = _error(obj)
    assert (err.field, words in err.detail) == (field, True), err.detail


def test_topology_is_optional() -> None:
    for obj in (BOWTIE, ACROSS):
        assert check_geometry(obj, field="g", kinds=AREAS, topology=False)["type"] == "Polygon"


def test_limits() -> None:
    assert "more than 4 positions" in _error(SQUARE, limits=Limits(positions=4)).detail
    two = {"type": "Polygon", "coordinates": [RING, RING]}
    assert _error(two, limits=Limits(rings=1)).field == "g.coordinates"
    assert _error(SQUARE, limits=Limits(ring_positions=4)).field == "g.coordinates[0]"


def test_points_and_lines() -> None:
    point = check_geometry({"type": "Point", "coordinates": [1, 2, 3]}, field="p", kinds=("Point",))
    assert point["coordinates"] == [1.0, 2.0, 3.0]
    line = {"type": "LineString", "coordinates": [[0, 0], [0, 0.0, 7]]}
    with pytest.raises(GeometryError, match="single point repeated"):
        check_geometry(line, field="r", kinds=("LineString",))
    shape = geometry_shape(SQUARE, field="a", kinds=AREAS)
    assert shape.geom_type == "Polygon"
    assert shape.area > 0


def test_each_caller_keeps_its_own_field_paths() -> None:
    bad = {"type": "Polygon", "coordinates": [[*RING[:-1], [1, 1]]]}
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: validate_area(bad, field="area"), "area"),  # the request field as a whole
        (lambda: validate_site(bad, field="site"), "site"),
        (lambda: _fields.polygon(bad, "data.rest_areas[0]"), "data.rest_areas[0].coordinates[0]"),
        (lambda: parse_area(bad, field="zone"), "zone.coordinates[0]"),
    ]
    for call, field in calls:
        with pytest.raises(GeometryError) as info:
            call()
        assert info.value.field == field
        assert "coordinates[0] is not closed" in info.value.detail


def test_registry_returns_the_object_as_given_and_takes_points_for_sites() -> None:
    obj = {**SQUARE, "bbox": [120.0, 29.0, 120.01, 29.01]}
    assert validate_area(obj, field="area") is obj
    point = {"type": "Point", "coordinates": [120, 29]}
    assert validate_site(point, field="site") is point
    with pytest.raises(GeometryError):
        validate_area(point, field="area")
    with pytest.raises(GeometryError) as info:
        validate_area(ACROSS, field="area")  # route matching could not use it
    assert info.value.field == "area"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-400, 400) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.sampled_from(["type", "coordinates", "bbox", "x"]), inner, max_size=3)
    ),
    max_leaves=40,
)
kinds = st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon", "Feature"])


@given(kind=kinds, coords=json_values, topology=st.booleans())
def test_any_json_is_accepted_or_refused_with_a_geometry_error(
    kind: str, coords: object, topology: bool
) -> None:
    obj = {"type": kind, "coordinates": coords}
    every = ("Point", "LineString", *AREAS)
    try:
        out = check_geometry(obj, field="g", kinds=every, topology=topology)
    except GeometryError as exc:
        field = exc.field
    else:
        assert out["type"] == kind
        return
    assert field is not None
    assert field.startswith("g")
