"""Route matching throughput: prints points/s, asserts nothing.

    python bench/route_matching.py

A synthetic winding road of 100 km with 1,000 vertices near Hangzhou, fixes scattered
around it (most inside the 50 m corridor, some far off), matched one at a time with
``RouteIndex.match`` and in bulk with ``match_many``; then a ``LegTracker`` consuming a
1 Hz drive with noise, excursions and stops, fix by fix and batched. One core, best of 3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from pyproj import Geod

from waste.tracking import (
    AreaIndex,
    AreaKind,
    AreaRef,
    CircleArea,
    Fix,
    LegTracker,
    RouteIndex,
)

GEOD = Geod(ellps="WGS84")
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def winding_road(lat: float, lon: float, length_m: float, vertices: int) -> list[list[float]]:
    """A road whose bearing wanders smoothly (curves of a few km radius)."""
    step = length_m / (vertices - 1)
    out = [[lon, lat]]
    bearing = 60.0
    for i in range(vertices - 1):
        bearing += 2.5 * math.sin(i / 7.0) * math.cos(i / 31.0) * step / 100.0
        lon2, lat2, _ = GEOD.fwd(out[-1][0], out[-1][1], bearing, step)
        out.append([lon2, lat2])
    return out


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The shortest wall time of ``runs`` calls."""
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def scatter(route: RouteIndex, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points around the route: 90% within ~30 m, 10% up to a few km off."""
    rng = np.random.default_rng(seed)
    progress = rng.uniform(0, route.length_m, n)
    base = np.array([route.point_at(p) for p in progress])
    far = rng.random(n) < 0.1
    spread = np.where(far, rng.uniform(100, 3000, n), np.abs(rng.normal(0, 20, n)))
    lon, lat, _ = GEOD.fwd(base[:, 1], base[:, 0], rng.uniform(0, 360, n), spread)
    return np.asarray(lat), np.asarray(lon)


def drive(route: RouteIndex, seconds: int) -> list[Fix]:
    """A 1 Hz drive at 60 km/h with GPS noise, two excursions, two stops, some bad HDOP."""
    rng = np.random.default_rng(3)
    fixes = []
    progress = 0.0
    for s in range(seconds):
        minute = (s // 60) % 30
        if minute not in (10, 11, 12, 20, 21, 22, 23):  # stopped in those minutes
            progress = min(progress + 16.7, route.length_m)
        lat, lon = route.point_at(progress)
        off = 300.0 if minute in (5, 6) else abs(rng.normal(0, 8))
        lon, lat, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360), off)
        hdop = 9.0 if rng.random() < 0.02 else 1.0
        fixes.append(Fix(T0 + timedelta(seconds=s), float(lat), float(lon), hdop=hdop))
    return fixes


def main() -> None:
    """Run the benchmark and print its figures."""
    coords = winding_road(30.25, 120.15, 100_000.0, 1_000)
    build = best_of(3, lambda: RouteIndex({"type": "LineString", "coordinates": coords}, 50.0))
    route = RouteIndex({"type": "LineString", "coordinates": coords}, 50.0)
    print(
        f"route: {route.length_m / 1000:.1f} km, {len(coords)} vertices, "
        f"{route.section_count} section(s), built in {build * 1000:.1f} ms"
    )

    lat, lon = scatter(route, 200_000, seed=1)
    one_n = 20_000
    lat_list, lon_list = lat[:one_n].tolist(), lon[:one_n].tolist()

    def one_by_one() -> None:
        for a, b in zip(lat_list, lon_list, strict=True):
            route.match(a, b)

    t_one = best_of(3, one_by_one)
    t_many = best_of(3, lambda: route.match_many(lat, lon))
    each_one, each_many = t_one / one_n * 1e6, t_many / len(lat) * 1e6
    print(f"match (one at a time):   {one_n / t_one:>10,.0f} points/s  ({each_one:.1f} µs each)")
    print(
        f"match_many (vectorised): {len(lat) / t_many:>10,.0f} points/s  ({each_many:.2f} µs each)"
    )
    route.work.fixes = route.work.tree_queries = route.work.candidates = 0
    route.match_many(lat, lon)
    w = route.work
    print(
        f"  work per point: {w.tree_queries / w.fixes:.2f} tree queries, "
        f"{w.candidates / w.fixes:.1f} candidate segments"
    )

    long_coords = winding_road(-31.95, 115.86, 2_000_000.0, 10_000)
    long_route = RouteIndex({"type": "LineString", "coordinates": long_coords}, 50.0)
    llat, llon = scatter(long_route, 100_000, seed=2)
    t_long = best_of(3, lambda: long_route.match_many(llat, llon))
    print(
        f"match_many, 2,000 km / 10,000 vertices / {long_route.section_count} sections: "
        f"{len(llat) / t_long:,.0f} points/s"
    )

    end_lat, end_lon = route.point_at(route.length_m)
    areas = AreaIndex(
        [CircleArea(AreaRef(AreaKind.DESTINATION, "dest"), end_lat, end_lon, 200.0)]
        + [
            CircleArea(AreaRef(AreaKind.RESTRICTED_ZONE, f"z{i}"), *route.point_at(p), 150.0)
            for i, p in enumerate(np.linspace(5_000, 95_000, 20))
        ]
    )
    fixes = drive(route, 6_000)

    def tracker_one() -> None:
        tracker = LegTracker("bench", route, areas)
        for fix in fixes:
            tracker.consume(fix)

    def tracker_many() -> None:
        LegTracker("bench", route, areas).consume_many(fixes)

    t_track = best_of(3, tracker_one)
    t_batch = best_of(3, tracker_many)
    events = LegTracker("bench", route, areas).consume_many(fixes)
    print(f"LegTracker.consume:      {len(fixes) / t_track:>10,.0f} fixes/s")
    print(
        f"LegTracker.consume_many: {len(fixes) / t_batch:>10,.0f} fixes/s  "
        f"({len(events)} events from {len(fixes)} fixes)"
    )


if __name__ == "__main__":
    main()
