"""Map layers (pure): corridor polygons, tracks coloured by speed band, stops; the SVG chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shapely.geometry import Point, shape

from waste.console import charts, maps
from waste.tracking.geometry import LocalFrame

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ROUTE = {"type": "LineString", "coordinates": [[120.0, 29.0], [120.05, 29.0], [120.05, 29.05]]}


def _at(lat: float, lon: float, s: float, kmh: float | None = None) -> maps.TrackPoint:
    return maps.TrackPoint(T0 + timedelta(seconds=s), lat, lon, kmh)


def test_the_corridor_holds_points_within_its_width_and_not_beyond() -> None:
    area = shape(maps.corridor(ROUTE, 50.0))
    frame = LocalFrame(29.0, 120.025)
    x, y = frame.xy(120.025, 29.0)
    inside = frame.to_lonlat([x], [y + 40])
    outside = frame.to_lonlat([x], [y + 70])
    assert area.contains(Point(float(inside[0][0]), float(inside[1][0])))
    assert not area.contains(Point(float(outside[0][0]), float(outside[1][0])))


def test_no_corridor_for_a_degenerate_route() -> None:
    assert maps.corridor({"type": "LineString", "coordinates": [[120.0, 29.0]]}, 50) is None
    assert maps.corridor(ROUTE, 0) is None


def test_speed_bands() -> None:
    assert [maps.speed_band(v) for v in (0, 10, 45, 75, 120)] == [
        "stopped", "slow", "medium", "fast", "very fast",
    ]  # fmt: skip


def test_track_runs_split_where_the_speed_band_changes_and_keep_every_fix() -> None:
    points = [_at(29.0, 120.0 + i * 0.001, i * 10, 50.0 if i < 5 else 100.0) for i in range(10)]
    runs = maps.track(points)
    assert [r["properties"]["band"] for r in runs] == ["medium", "very fast"]
    coords = [c for r in runs for c in r["geometry"]["coordinates"]]
    assert coords[0] == [120.0, 29.0]
    assert coords[-1] == [points[-1].lon, 29.0]
    assert runs[0]["geometry"]["coordinates"][-1] == runs[1]["geometry"]["coordinates"][0]
    assert 0 <= runs[0]["properties"]["t_frac"] < runs[1]["properties"]["t_frac"] <= 1


def test_long_runs_are_cut_so_time_colouring_stays_fine() -> None:
    points = [_at(29.0, 120.0 + i * 0.001, i * 10, 50.0) for i in range(50)]
    runs = maps.track(points)
    assert all(len(r["geometry"]["coordinates"]) <= maps.RUN_MAX_FIXES + 1 for r in runs)
    assert len(runs) == 3


def test_speed_is_derived_from_positions_when_fixes_carry_none() -> None:
    points = [_at(29.0, 120.0, 0), _at(29.0, 120.01, 10)]  # ~970 m in 10 s
    assert maps.track(points)[0]["properties"]["band"] == "very fast"


def test_a_stop_is_three_minutes_within_the_radius() -> None:
    moving = [_at(29.0, 120.0 + i * 0.005, i * 30) for i in range(5)]
    parked = [_at(29.0 + (i % 2) * 0.0002, 120.03, 150 + i * 30) for i in range(8)]
    spans = maps.stops(moving + parked)
    assert len(spans) == 1
    assert spans[0].fixes == 8
    assert spans[0].minutes >= 3
    assert maps.stops(parked[:6]) == []  # 2.5 minutes: not yet a stop


def test_the_chart_stacks_each_days_kinds() -> None:
    days = [date(2026, 11, 22), date(2026, 11, 23)]
    counts = {days[1]: {"route_deviation": 2, "seal_tamper": 1, "new<kind": 1}}
    svg = str(charts.stacked_bars(days, counts))
    assert svg.count('class="bar"') == 3
    assert 'data-kind="route_deviation"' in svg
    assert "new&lt;kind" in svg
    assert "new<kind" not in svg
    assert "style=" not in svg  # nothing the CSP would block
