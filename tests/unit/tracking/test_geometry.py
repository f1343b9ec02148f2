"""GeoJSON validation (fields named), local frames and cap boxes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from geopy.distance import geodesic

from waste.errors import GeometryError
from waste.tracking import LocalFrame, parse_area, parse_linestring, parse_polygon
from waste.tracking.geometry import cap_boxes, densify_geodesic, mean_position

RING = [[120.0, 29.0], [120.01, 29.0], [120.01, 29.01], [120.0, 29.01], [120.0, 29.0]]


def _error(fn: Any, obj: object, **kw: Any) -> GeometryError:
    with pytest.raises(GeometryError) as info:
        fn(obj, **kw)
    return info.value


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([[0, 0], [1, 1]], "route"),
        ({"type": "Polygon", "coordinates": [RING]}, "route.type"),
        ({"type": "LineString"}, "route.coordinates"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "route.coordinates"),
        ({"type": "LineString", "coordinates": [[0, 0], "x"]}, "route.coordinates[1]"),
        ({"type": "LineString", "coordinates": [[0, 0], [1]]}, "route.coordinates[1]"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, True]]}, "route.coordinates[1][1]"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, math.nan]]}, "route.coordinates[1][1]"),
        (
            {"type": "LineString", "coordinates": [[0, 0], [1, 0, math.inf]]},
            "route.coordinates[1][2]",
        ),
        ({"type": "LineString", "coordinates": [[0, 0], [180.5, 0]]}, "route.coordinates[1][0]"),
        ({"type": "LineString", "coordinates": [[0, 91], [1, 0]]}, "route.coordinates[0][1]"),
    ],
)
def test_bad_linestrings_name_the_field(obj: object, field: str) -> None:
    assert _error(parse_linestring, obj).field == field


def test_a_linestring_of_one_repeated_point_is_invalid() -> None:
    err = _error(parse_linestring, {"type": "LineString", "coordinates": [[1, 1], [1, 1, 9]]})
    assert err.field == "route.coordinates"
    assert "single point repeated" in err.detail


def test_a_good_linestring_keeps_lon_lat_order_and_ignores_altitude() -> None:
    pts = parse_linestring({"type": "LineString", "coordinates": [[120, 29, 5], [120.1, 29.1]]})
    assert pts.tolist() == [[120.0, 29.0], [120.1, 29.1]]


@pytest.mark.parametrize(
    ("coords", "field", "words"),
    [
        ([[[0, 0], [1, 0], [0, 0]]], "zone.coordinates[0]", "at least 4"),
        ([[*RING[:-1], [120.0, 29.001]]], "zone.coordinates[0]", "not closed"),
        ([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]], "zone", "Self-intersection"),
        (
            [[[179.9, 0], [-179.9, 0], [-179.9, 1], [179.9, 1], [179.9, 0]]],
            "zone.coordinates[0][1]",
            "antimeridian",
        ),
        ([], "zone.coordinates", "non-empty"),
    ],
)
def test_bad_polygons_name_the_field(coords: Any, field: str, words: str) -> None:
    err = _error(parse_polygon, {"type": "Polygon", "coordinates": coords}, field="zone")
    assert err.field == field
    assert words in err.detail


def test_a_hole_outside_its_shell_is_invalid() -> None:
    hole = [[121, 30], [121.01, 30], [121.01, 30.01], [121, 30.01], [121, 30]]
    err = _error(parse_polygon, {"type": "Polygon", "coordinates": [RING, hole]})
    assert err.field == "area"
    assert "Hole lies outside shell" in err.detail


def test_overlapping_multipolygon_parts_are_invalid() -> None:
    obj = {"type": "MultiPolygon", "coordinates": [[RING], [RING]]}
    err = _error(parse_area, obj, field="site")
    assert err.field == "site"
    assert "not valid" in err.detail


def test_parse_area_takes_both_kinds_and_either_winding() -> None:
    assert parse_area({"type": "Polygon", "coordinates": [RING[::-1]]}).area > 0
    multi = parse_area({"type": "MultiPolygon", "coordinates": [[RING]]})
    assert multi.geom_type == "MultiPolygon"


def test_frame_distance_from_centre_is_the_geodesic() -> None:
    frame = LocalFrame(70.0, 23.0)
    lats = np.array([70.5, 69.2, 71.0])
    lons = np.array([25.0, 20.0, 23.0])
    x, y = frame.to_xy(lons, lats)
    for i in range(3):
        expected = geodesic((70.0, 23.0), (lats[i], lons[i])).meters
        assert math.hypot(x[i], y[i]) == pytest.approx(expected, rel=1e-9)
        assert frame.xy(float(lons[i]), float(lats[i])) == (x[i], y[i])
    back_lon, back_lat = frame.to_lonlat(x, y)
    assert np.allclose(back_lon, lons, atol=1e-9)
    assert np.allclose(back_lat, lats, atol=1e-9)


def test_frame_across_the_antimeridian_is_continuous() -> None:
    frame = LocalFrame(-17.0, 180.0)
    x, _ = frame.to_xy(np.array([179.99, -179.99]), np.array([-17.0, -17.0]))
    assert x[0] < 0 < x[1]
    assert x[1] - x[0] == pytest.approx(geodesic((-17, 179.99), (-17, -179.99)).meters, rel=1e-4)


def test_mean_position_across_the_antimeridian_is_not_greenwich() -> None:
    lat, lon = mean_position([179.9, -179.9], [-17.0, -17.0])
    assert abs(abs(lon) - 180.0) < 1e-6
    assert lat == pytest.approx(-17.0, abs=1e-3)


def test_cap_boxes_split_at_the_antimeridian_and_cover_the_pole() -> None:
    assert len(cap_boxes(0.0, 179.99, 5000)) == 2
    assert len(cap_boxes(0.0, 120.0, 5000)) == 1
    (box,) = cap_boxes(89.99, 10.0, 5000)
    assert box[0] == -180.0
    assert box[2] == 180.0
    assert box[3] == 90.0


def test_long_route_steps_are_densified_along_the_geodesic() -> None:
    pts = np.array([[0.0, 60.0], [10.0, 60.0]])
    dense, parent, steps = densify_geodesic(pts, 5000.0)
    assert len(dense) > 100
    assert set(parent.tolist()) == {0}
    total = geodesic((60.0, 0.0), (60.0, 10.0)).meters
    assert steps.sum() == pytest.approx(total, rel=1e-9)
    # the geodesic bulges poleward of the parallel
    assert dense[len(dense) // 2, 1] > 60.09
