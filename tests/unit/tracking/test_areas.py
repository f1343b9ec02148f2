"""AreaIndex: metric buffers and circles, RFC 7946 edges, antimeridian and poles."""

from __future__ import annotations

import pytest

from tests.unit.tracking._routes import offset, square
from waste.errors import GeometryError, Invalid
from waste.tracking import AreaIndex, AreaKind, AreaRef, CircleArea, PolygonArea

SITE = AreaRef(AreaKind.SITE, "s1", "Landfill")
ZONE = AreaRef(AreaKind.RESTRICTED_ZONE, "z1")
PICKUP = AreaRef(AreaKind.PICKUP, "p1")


def test_a_buffer_is_metres_even_at_70_degrees_north() -> None:
    half = 200.0
    index = AreaIndex([PolygonArea(SITE, square(70.0, 23.0, half), buffer_m=50.0)])
    # the square's edges lie within a metre of these points (it uses a spherical degree);
    # a 50 m buffer taken in degrees would reach only ~17 m east at this latitude
    lat, lon = offset(70.0, 23.0, 90.0, half)
    assert index.containing(*offset(lat, lon, 90.0, 40.0)) == [SITE]
    assert index.containing(*offset(lat, lon, 90.0, 60.0)) == []
    north_edge = offset(70.0, 23.0, 0.0, half)
    assert index.containing(*offset(*north_edge, 0.0, 45.0)) == [SITE]
    assert index.containing(*offset(*north_edge, 0.0, 56.0)) == []


def test_polygon_edges_are_straight_in_lon_lat_as_rfc_7946_says() -> None:
    # a 75 km wide zone whose north edge runs along the 70th parallel: a geodesic edge
    # would bulge ~300 m north of it in the middle
    zone = {
        "type": "Polygon",
        "coordinates": [[[20.0, 69.8], [22.0, 69.8], [22.0, 70.0], [20.0, 70.0], [20.0, 69.8]]],
    }
    index = AreaIndex([PolygonArea(ZONE, zone)])
    assert index.containing(69.9995, 21.0) == [ZONE]
    assert index.containing(70.0005, 21.0) == []


def test_a_near_miss_just_outside_is_not_inside() -> None:
    index = AreaIndex([PolygonArea(ZONE, square(29.3, 120.0, 150.0))])
    south_edge_lat = 29.3 - 150.0 / 111_320.0
    assert index.containing(south_edge_lat + 0.00002, 120.0) == [ZONE]  # ~2 m inside
    assert index.containing(south_edge_lat - 0.00002, 120.0) == []  # ~2 m outside


def test_a_circle_is_an_exact_geodesic_radius() -> None:
    index = AreaIndex([CircleArea(PICKUP, -33.45, -70.66, 100.0)])
    for azimuth in (0.0, 45.0, 133.0, 270.0):
        assert index.containing(*offset(-33.45, -70.66, azimuth, 99.5)) == [PICKUP]
        assert index.containing(*offset(-33.45, -70.66, azimuth, 100.5)) == []


def test_a_circle_across_the_antimeridian_and_one_over_the_pole() -> None:
    fiji = AreaRef(AreaKind.REST_AREA, "fiji")
    pole = AreaRef(AreaKind.SITE, "pole")
    index = AreaIndex([CircleArea(fiji, -16.8, 179.999, 1_000.0), CircleArea(pole, 89.995, 0, 2e3)])
    assert index.containing(-16.8, -179.995) == [fiji]
    assert index.containing(-16.8, 179.99) == [fiji]
    assert index.containing(-16.8, -179.98) == []
    assert index.containing(90.0, 0.0) == [pole]
    assert index.containing(89.99, 180.0) == [pole]  # 1.7 km on the far side of the pole
    assert index.containing(89.97, 90.0) == []


def test_a_multipolygon_cut_at_the_antimeridian_is_one_area() -> None:
    cut = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.9, -17.0], [180.0, -17.0], [180.0, -16.9], [179.9, -16.9], [179.9, -17.0]]],
            [[[-180.0, -17.0], [-179.9, -17.0], [-179.9, -16.9], [-180.0, -16.9], [-180.0, -17.0]]],
        ],
    }
    index = AreaIndex([PolygonArea(ZONE, cut)])
    for lon in (179.95, 180.0, -180.0, -179.95):
        assert index.containing(-16.95, lon) == [ZONE]
    assert index.containing(-16.95, -179.85) == []
    assert index.containing(-16.95, 0.0) == []


def test_overlapping_areas_come_back_in_the_order_given() -> None:
    index = AreaIndex(
        [
            PolygonArea(SITE, square(29.3, 120.0, 500.0)),
            CircleArea(PICKUP, 29.3, 120.0, 50.0),
            PolygonArea(ZONE, square(31.0, 121.0, 500.0)),
        ]
    )
    assert len(index) == 3
    assert index.containing(29.3, 120.0) == [SITE, PICKUP]
    assert AreaIndex().containing(0.0, 0.0) == []


def test_bad_areas_name_the_field() -> None:
    with pytest.raises(GeometryError) as info:
        AreaIndex([PolygonArea(SITE, square(0, 0, 10)), PolygonArea(ZONE, {"type": "Polygon"})])
    assert info.value.field == "areas[1].geojson.coordinates"
    with pytest.raises(Invalid) as bad:
        AreaIndex([CircleArea(PICKUP, 0.0, 0.0, -5.0)])
    assert bad.value.field == "areas[0].radius_m"
    assert AreaRef.from_dict(SITE.to_dict()) == SITE
