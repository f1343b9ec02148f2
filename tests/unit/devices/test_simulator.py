"""Properties of the vehicle simulator: spacing, speeds, noise, holds, the antimeridian."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.geo import Path, distance_m, road_between, to_lonlat
from devices.simulator import (
    DriveProfile,
    Hold,
    LockAction,
    NoiseModel,
    VehicleRun,
    drive,
    observe,
    play,
)
from gateway.payloads import Fix, LockEvent, LockEventKind
from waste.tracking.geometry import LocalFrame

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)

centres = st.tuples(
    st.floats(-70, 70),  # latitude
    st.one_of(st.floats(-180, 180), st.sampled_from([179.99, -179.99, 180.0, -180.0])),
)


def _path(lat: float, lon: float, seed: int, km: float = 6.0) -> Path:
    rng = random.Random(seed)
    frame = LocalFrame(lat, lon)
    angle = rng.uniform(0, 2 * np.pi)
    end = (km * 1000 * np.cos(angle), km * 1000 * np.sin(angle))
    return Path(to_lonlat(frame, road_between((0.0, 0.0), end, rng)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(centre=centres, seed=st.integers(0, 10_000), interval=st.sampled_from([1, 5, 10, 30]))
def test_fixes_are_spaced_by_the_interval_in_range_and_at_plausible_speeds(
    centre: tuple[float, float], seed: int, interval: int
) -> None:
    path = _path(*centre, seed)
    rng = random.Random(seed)
    trace = drive(path, T0, [Hold(0, 60, "loading")], rng, DriveProfile(cruise_kmh=70))
    fixes = observe(trace, rng, noise=NoiseModel.perfect(), interval=timedelta(seconds=interval))
    gaps = {(b.t - a.t).total_seconds() for a, b in itertools.pairwise(fixes)}
    assert gaps == {float(interval)}
    assert fixes[0].t == T0
    for a, b in itertools.pairwise(fixes):
        assert -90 <= b.lat <= 90
        assert -180 <= b.lon <= 180
        metres = distance_m(a.lat, a.lon, b.lat, b.lon)
        # 70 km/h cruising may drift to 1.25x: under 90 km/h, never a jump round the world
        assert metres <= 90 / 3.6 * interval + 1
        assert b.speed_kmh is not None
        assert 0 <= b.speed_kmh <= 90
        assert b.heading is None or 0 <= b.heading < 360


@settings(max_examples=25, deadline=None)
@given(centre=centres, seed=st.integers(0, 10_000))
def test_jitter_stays_bounded_and_outliers_are_rare_and_alone(
    centre: tuple[float, float], seed: int
) -> None:
    path = _path(*centre, seed, km=3)
    rng = random.Random(seed)
    trace = drive(path, T0, [Hold(0, 300, "loading"), Hold(path.length_m, 600, "end")], rng)
    noise = NoiseModel(outlier_rate=0.05, dropout_rate=0.0, tunnels_per_hour=0.0)
    fixes = observe(trace, rng, noise=noise)
    lat, lon, *_ = trace.state([f.t for f in fixes])
    errors = [distance_m(f.lat, f.lon, a, b) for f, a, b in zip(fixes, lat, lon, strict=True)]
    wild = [e > noise.max_jitter_m + 0.5 for e in errors]  # 0.5: rounding to 1e-6 degrees
    assert all(e <= noise.outlier_m[1] + noise.max_jitter_m + 0.5 for e in errors)
    assert not any(a and b for a, b in itertools.pairwise(wild))  # never two in a row
    assert sum(wild) <= max(3, 0.15 * len(fixes))


def test_a_truck_stops_at_its_holds_and_operates_its_lock() -> None:
    path = _path(29.3, 120.07, 1, km=8)
    rng = random.Random(1)
    holds = [
        Hold(0, 600, "loading", (LockAction(590, LockEventKind.SEALED),)),
        Hold(4000, 900, "rest"),
        Hold(path.length_m, 600, "unloading", (LockAction(60, LockEventKind.UNSEALED),)),
    ]
    run = VehicleRun.simulate(path, T0, holds, rng, lock_id="SEAL-9", noise=NoiseModel.perfect())
    rest = run.trace.hold("rest")
    assert rest.depart - rest.arrive == timedelta(seconds=900)
    still = [f for f in run.fixes if rest.arrive < f.t < rest.depart]
    assert still
    assert all(f.speed_kmh == 0 for f in still)
    assert len({(f.lat, f.lon) for f in still}) == 1
    sealed, unsealed = run.locks
    assert sealed.event is LockEventKind.SEALED
    assert sealed.t == T0 + timedelta(seconds=590)
    assert unsealed.t == run.trace.hold("unloading").arrive.replace(
        microsecond=run.trace.hold("unloading").arrive.microsecond // 1000 * 1000
    ) + timedelta(seconds=60)
    assert distance_m(unsealed.lat or 0, unsealed.lon or 0, *path.point(path.length_m)) < 10
    assert run.records == sorted(run.records, key=lambda r: (r.t, isinstance(r, Fix)))


def test_red_lights_stop_the_truck_briefly_and_it_accelerates_gently() -> None:
    path = _path(29.3, 120.07, 3, km=12)
    profile = DriveProfile(light_spacing_m=800, red_probability=1.0)
    trace = drive(path, T0, [], random.Random(3), profile)
    stopped = np.diff(trace.t_s)[np.asarray(trace.v_ms[1:]) == 0]
    assert (stopped <= profile.red_s[1] + 1).all()
    dv = np.diff(trace.v_ms) / np.maximum(np.diff(trace.t_s), 1e-9)
    assert dv.max() <= profile.accel_ms2 + 1e-9
    assert trace.v_ms.max() * 3.6 <= profile.cruise_kmh * 1.25 + 1e-6


def test_gaps_and_dropouts_remove_fixes() -> None:
    path = _path(-33.9, 151.2, 5, km=10)
    rng = random.Random(5)
    trace = drive(path, T0, [], rng)
    gap = (T0 + timedelta(minutes=3), T0 + timedelta(minutes=8))
    fixes = observe(trace, rng, noise=NoiseModel(dropout_rate=0.2), gaps=[gap])
    assert not [f for f in fixes if gap[0] <= f.t < gap[1]]
    expected = (trace.end - T0) / timedelta(seconds=10)
    assert len(fixes) < 0.9 * expected


def test_a_path_across_the_antimeridian_goes_the_short_way() -> None:
    path = Path([(179.95, -17.0), (-179.95, -17.0)])
    assert 10_000 < path.length_m < 11_000
    _lat, lon, heading = path.at(np.linspace(0, path.length_m, 11))
    assert ((lon >= 179.95) | (lon <= -179.95)).all()
    assert np.allclose(heading, 90, atol=0.1)


def test_play_hands_records_to_a_sink_in_order() -> None:
    got: list[object] = []

    class Sink:
        def record_fix(self, fix: Fix) -> None:
            got.append(fix)

        def record_lock(self, lock: LockEvent) -> None:
            got.append(lock)

    path = _path(51.5, -0.1, 9, km=2)
    holds = [Hold(0, 60, "loading", (LockAction(30, LockEventKind.SEALED),))]
    run = VehicleRun.simulate(path, T0, holds, random.Random(9), lock_id="L-1")
    assert play(run.records, Sink()) == len(got) == len(run.fixes) + 1
    assert got == run.records
