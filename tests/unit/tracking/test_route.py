"""Route matching: geodesic accuracy anywhere, progress, match == match_many, work counts."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.tracking._routes import (
    azimuth,
    geodesic_route,
    geopy_length,
    line,
    offset,
    winding_route,
)
from waste.errors import Invalid
from waste.tracking import RouteIndex

TOLERANCE = 0.005  # the brief's 0.5%

PLACES = {
    # name: (lat, lon, bearing, length_m, step_m)
    "china": (29.3061, 120.0752, 65.0, 150_000.0, 1_000.0),
    "chile": (-33.45, -70.66, 185.0, 200_000.0, 1_000.0),
    "norway_70N": (70.0, 23.0, 90.0, 150_000.0, 1_000.0),
    "fiji_antimeridian": (-16.8, 179.3, 95.0, 120_000.0, 1_000.0),
    "long_2000km": (-31.95, 115.86, 80.0, 2_000_000.0, 2_000.0),
    "near_north_pole": (86.0, 0.0, 45.0, 150_000.0, 1_000.0),
    "past_the_south_pole": (-89.6, 0.0, 183.0, 90_000.0, 1_000.0),  # within ~2.3 km of it
}


@pytest.fixture(scope="module", params=sorted(PLACES))
def place(request: pytest.FixtureRequest) -> tuple[str, list[list[float]], RouteIndex]:
    name = request.param
    lat, lon, bearing, length, step = PLACES[name]
    coords = geodesic_route(lat, lon, bearing, length, step)
    return name, coords, RouteIndex(line(coords), 50.0)


def test_route_length_matches_geopy(place: tuple[str, list[list[float]], RouteIndex]) -> None:
    name, coords, route = place
    expected = geopy_length(coords)
    assert abs(route.length_m / expected - 1) < TOLERANCE, name
    if name == "fiji_antimeridian":
        lons = [c[0] for c in coords]
        assert max(lons) > 179.9
        assert min(lons) < -179.9
    if name == "long_2000km":
        assert route.section_count >= 8


@pytest.mark.parametrize("metres", [25.0, 300.0, 3_000.0, 40_000.0])
def test_offsets_and_progress_match_geopy(
    place: tuple[str, list[list[float]], RouteIndex], metres: float
) -> None:
    name, coords, route = place
    n = len(coords)
    for k in (1, n // 3, n // 2, n - 2):
        az = azimuth(coords[k], coords[k + 1])
        along = geopy_length(coords[: k + 1])
        for side in (-90.0, 90.0):
            lat, lon = offset(coords[k][1], coords[k][0], az + side, metres)
            m = route.match(lat, lon)
            assert abs(m.distance_m / metres - 1) < TOLERANCE, (name, k, side)
            assert abs(m.progress_m - along) <= TOLERANCE * metres + 1e-6 * along, (name, k)
            assert m.segment_index in (k - 1, k)
            assert m.inside_corridor is (metres <= 50.0)
            # the reported distance is the geodesic to the reported closest point
            foot = route.point_at(m.progress_m)
            assert abs(geodesic((lat, lon), foot).meters / m.distance_m - 1) < TOLERANCE


def test_a_winding_route_matches_brute_force_over_geopy_vertices() -> None:
    coords = winding_route(29.3, 120.07, 300, 200.0, seed=3)
    route = RouteIndex(line(coords), 50.0)
    rng = np.random.default_rng(7)
    for _ in range(25):
        k = int(rng.integers(0, len(coords)))
        lat = coords[k][1] + rng.normal(0, 0.002)
        lon = coords[k][0] + rng.normal(0, 0.002)
        m = route.match(lat, lon)
        nearest_vertex = min(geodesic((lat, lon), (c[1], c[0])).meters for c in coords)
        # the closest point of the route is no farther than the closest vertex ...
        assert m.distance_m <= nearest_vertex * (1 + TOLERANCE) + 1e-6
        # ... and with 200 m steps, not much nearer than it either
        assert m.distance_m >= nearest_vertex - 100.0


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(0, 999),
    dlat=st.floats(-0.05, 0.05),
    dlon=st.floats(-0.05, 0.05),
)
def test_match_and_match_many_agree_to_the_bit(k: int, dlat: float, dlon: float) -> None:
    route = _LONG
    lon, lat = _LONG_COORDS[k]
    lat = float(np.clip(lat + dlat, -90, 90))
    lon = float(lon + dlon)
    one = route.match(lat, lon)
    many = route.match_many([lat, lat, 0.0], [lon, lon, 0.0])
    assert many[0] == one
    assert many[1] == one


_LONG_COORDS = geodesic_route(-31.95, 115.86, 80.0, 2_000_000.0, 2_000.0)
_LONG = RouteIndex(line(_LONG_COORDS), 50.0)


def test_match_many_on_many_points_equals_match_one_by_one() -> None:
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(_LONG_COORDS), 500)
    lats = np.array([_LONG_COORDS[i][1] for i in idx]) + rng.normal(0, 0.01, 500)
    lons = np.array([_LONG_COORDS[i][0] for i in idx]) + rng.normal(0, 0.01, 500)
    many = _LONG.match_many(lats, lons)
    assert len(many) == 500
    assert [many[i] for i in range(500)] == [_LONG.match(lats[i], lons[i]) for i in range(500)]


def test_far_fixes_fall_back_to_nearest_neighbour() -> None:
    coords = geodesic_route(29.3, 120.0, 90.0, 50_000.0, 500.0)
    route = RouteIndex(line(coords), 50.0)
    lat, lon = offset(coords[50][1], coords[50][0], 0.0, 20_000.0)
    m = route.match(lat, lon)
    assert abs(m.distance_m / 20_000.0 - 1) < TOLERANCE
    assert m.progress_m == pytest.approx(25_000.0, abs=200.0)
    assert route.work.tree_queries == 2  # the box found nothing near, then nearest


def _work_per_fix(n_vertices: int) -> tuple[float, float]:
    coords = winding_route(45.0, 7.0, n_vertices, 20.0, seed=1)
    route = RouteIndex(line(coords), 50.0)
    assert route.section_count == 1
    rng = np.random.default_rng(5)
    idx = rng.integers(0, n_vertices, 400)
    lats = np.array([coords[i][1] for i in idx]) + rng.normal(0, 0.0002, 400)
    lons = np.array([coords[i][0] for i in idx]) + rng.normal(0, 0.0002, 400)
    for lat, lon in zip(lats, lons, strict=True):
        route.match(float(lat), float(lon))
    route.match_many(lats, lons)
    w = route.work
    assert w.fixes == 800
    return w.tree_queries / w.fixes, w.candidates / w.fixes


def test_work_per_fix_does_not_grow_with_route_length() -> None:
    small_queries, small_candidates = _work_per_fix(100)
    big_queries, big_candidates = _work_per_fix(10_000)
    # 100x the vertices: a linear scan would measure 100x the segments
    assert small_queries <= 1.2
    assert big_queries <= 1.2
    assert big_candidates < 2 * small_candidates
    assert big_candidates < 20  # about the 200 m search box over 20 m segments


def test_bad_inputs_are_invalid() -> None:
    with pytest.raises(Invalid) as info:
        RouteIndex(line([[0, 0], [1, 1]]), 0.0)
    assert info.value.field == "corridor_m"
    route = RouteIndex(line([[0, 0], [0.01, 0.01]]), 50.0)
    with pytest.raises(Invalid):
        route.match(float("nan"), 0.0)
    with pytest.raises(Invalid):
        route.match_many([0.0, 95.0], [0.0, 0.0])


def test_point_at_walks_the_route() -> None:
    coords = geodesic_route(-33.45, -70.66, 185.0, 30_000.0, 1_000.0)
    route = RouteIndex(line(coords), 50.0)
    assert route.point_at(0.0) == pytest.approx((coords[0][1], coords[0][0]))
    lat, lon = route.point_at(12_000.0)
    assert geodesic((lat, lon), (coords[12][1], coords[12][0])).meters < 0.01
    assert route.match(lat, lon).progress_m == pytest.approx(12_000.0, abs=0.01)
