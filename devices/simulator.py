"""A vehicle simulator: a truck driving a path, what its GPS reports, and its e-lock.

Three steps, each pure and seeded by a ``random.Random``:

``drive``   the true motion: from rest, accelerating to a cruising speed that drifts
            (an Ornstein-Uhlenbeck process), braking to stop at planned holds (loading,
            traffic lights, rest areas, unloading, or whatever the scenario says) and
            at red lights placed along the way, and resting there. Integrated every
            second; the result is a ``Trace`` of knots (time, distance, speed).
``observe`` what the receiver reports every ``interval`` (default 10 s): the true
            position plus a slowly wandering error of a few metres (clipped at
            ``max_jitter_m``), now and then a single 50-100 m outlier (never two in a
            row; half of them with a poor HDOP), single missed fixes, short gaps
            (tunnels, up to ``tunnel_s``) and the gaps the scenario imposes (jamming).
``locks``   e-lock events at times the scenario gives, at the truck's position then.

``VehicleRun`` bundles the three for one trip; ``play`` feeds a run's records to a
``Sink`` (a ``DeviceClient``, or a list in tests) in time order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from devices.geo import Path, displace
from gateway.payloads import Fix, LockEvent, LockEventKind

__all__ = [
    "DriveProfile",
    "Hold",
    "HoldTiming",
    "LockAction",
    "NoiseModel",
    "Sink",
    "Trace",
    "VehicleRun",
    "drive",
    "observe",
    "play",
]

_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class LockAction:
    """An e-lock event ``offset_s`` seconds after the truck arrived at a hold."""

    offset_s: float
    event: LockEventKind
    lock_id: str | None = None  # default: the run's lock


@dataclass(frozen=True, slots=True)
class Hold:
    """A planned stop ``s_m`` metres along the path, lasting ``duration_s``."""

    s_m: float
    duration_s: float
    name: str
    locks: tuple[LockAction, ...] = ()


@dataclass(frozen=True, slots=True)
class HoldTiming:
    """When the truck actually stood at a hold, and where."""

    hold: Hold
    arrive: datetime
    depart: datetime
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DriveProfile:
    """How the truck drives."""

    cruise_kmh: float = 60.0
    drift_kmh: float = 5.0
    """Standard deviation of the cruising speed's drift around ``cruise_kmh``."""
    accel_ms2: float = 0.7
    brake_ms2: float = 1.5
    light_spacing_m: float = 1500.0
    """Mean distance between traffic lights (0: none)."""
    red_probability: float = 0.4
    red_s: tuple[float, float] = (15.0, 75.0)
    """A red light holds the truck this long (well under the 3-minute stop window)."""
    light_clearance_m: float = 500.0
    """No light this close to a planned hold or to another light."""


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """What the GPS receiver gets wrong."""

    sigma_m: float = 2.5
    correlation: float = 0.9
    max_jitter_m: float = 12.0
    outlier_rate: float = 0.01
    outlier_m: tuple[float, float] = (50.0, 100.0)
    dropout_rate: float = 0.02
    tunnels_per_hour: float = 0.4
    tunnel_s: tuple[float, float] = (30.0, 150.0)
    hdop: tuple[float, float] = (0.6, 1.6)
    speed_sigma_kmh: float = 0.8

    @classmethod
    def perfect(cls) -> NoiseModel:
        """No noise, no outliers, no drop-outs (for tests)."""
        return cls(0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, (0.0, 0.0), (0.8, 0.8), 0.0)


@dataclass(frozen=True, slots=True)
class Trace:
    """The true motion: knots of (seconds from ``start``, metres along, m/s)."""

    path: Path
    start: datetime
    t_s: np.ndarray
    s_m: np.ndarray
    v_ms: np.ndarray
    holds: tuple[HoldTiming, ...]

    @property
    def end(self) -> datetime:
        """When the truck stopped for the last time (the end of the last hold)."""
        return self.start + timedelta(seconds=float(self.t_s[-1]))

    def state(self, times: Sequence[datetime]) -> tuple[np.ndarray, ...]:
        """``(lat, lon, heading, speed_kmh, s_m)`` arrays at ``times``."""
        secs = np.asarray([(t - self.start).total_seconds() for t in times], dtype=np.float64)
        s = np.interp(secs, self.t_s, self.s_m)
        v = np.interp(secs, self.t_s, self.v_ms) * 3.6
        lat, lon, heading = self.path.at(s)
        return lat, lon, heading, v, s

    def hold(self, name: str) -> HoldTiming:
        """The first hold called ``name``."""
        for timing in self.holds:
            if timing.hold.name == name:
                return timing
        raise KeyError(name)


def _lights(
    length: float, holds: Sequence[Hold], p: DriveProfile, rng: random.Random
) -> list[Hold]:
    if p.light_spacing_m <= 0:
        return []
    taken = [h.s_m for h in holds] + [0.0, length]
    lights: list[Hold] = []
    s = rng.expovariate(1 / p.light_spacing_m)
    while s < length:
        if all(abs(s - x) >= p.light_clearance_m for x in taken):
            taken.append(s)
            if rng.random() < p.red_probability:
                lights.append(Hold(s, rng.uniform(*p.red_s), "light"))
        s += p.light_clearance_m + rng.expovariate(1 / p.light_spacing_m)
    return lights


def drive(
    path: Path,
    start: datetime,
    holds: Sequence[Hold],
    rng: random.Random,
    profile: DriveProfile | None = None,
) -> Trace:
    """The true motion along ``path`` from rest at ``start``, through ``holds`` to the end."""
    start = _ms(start)
    p = profile or DriveProfile()
    if p.cruise_kmh < 5 or p.accel_ms2 <= 0 or p.brake_ms2 <= 0:
        raise ValueError("a truck cruises at 5 km/h or more, and accelerates and brakes")
    length = path.length_m
    planned = sorted([*holds, *_lights(length, holds, p, rng)], key=lambda h: h.s_m)
    if any(not 0 <= h.s_m <= length for h in planned):
        raise ValueError("a hold lies outside the path")
    if not planned or planned[-1].s_m < length:
        planned.append(Hold(length, 0.0, "end"))
    cruise = p.cruise_kmh / 3.6
    sigma, theta = p.drift_kmh / 3.6, 1 / 60.0  # drift relaxes over about a minute
    t = s = v = 0.0
    target = cruise
    ts, ss, vs = [0.0], [0.0], [0.0]
    timings: list[HoldTiming] = []
    for hold in planned:
        while hold.s_m - s > 0.5:
            target += theta * (cruise - target) + sigma * math.sqrt(2 * theta) * rng.gauss(0, 1)
            target = min(max(target, 0.5 * cruise), 1.25 * cruise)
            d = hold.s_m - s
            v_new = min(v + p.accel_ms2, target, math.sqrt(2 * p.brake_ms2 * d))
            step = (v + v_new) / 2  # metres in the next second
            if step >= d:  # arrives within this second
                t, s, v = t + d / max(step, 0.1), hold.s_m, 0.0
            else:
                t, s, v = t + 1.0, s + step, v_new
            ts.append(t)
            ss.append(s)
            vs.append(v)
        s, v = hold.s_m, 0.0
        arrive = t
        if hold.duration_s > 0:
            t += hold.duration_s
            ts.append(t)
            ss.append(s)
            vs.append(0.0)
        if hold.name != "light":
            lat, lon = path.point(s)
            timings.append(
                HoldTiming(
                    hold,
                    start + timedelta(seconds=arrive),
                    start + timedelta(seconds=t),
                    lat,
                    lon,
                )
            )
    return Trace(
        path,
        start,
        np.asarray(ts),
        np.asarray(ss),
        np.asarray(vs),
        tuple(timings),
    )


def fix_times(
    start: datetime,
    end: datetime,
    interval: timedelta,
    gaps: Iterable[tuple[datetime, datetime]] = (),
) -> list[datetime]:
    """Every ``interval`` from ``start`` up to ``end``, except inside ``gaps`` (half-open)."""
    out: list[datetime] = []
    spans = list(gaps)
    t = start
    while t <= end:
        if not any(a <= t < b for a, b in spans):
            out.append(t)
        t += interval
    return out


def observe(
    trace: Trace,
    rng: random.Random,
    *,
    noise: NoiseModel | None = None,
    interval: timedelta = timedelta(seconds=10),
    start: datetime | None = None,
    end: datetime | None = None,
    gaps: Iterable[tuple[datetime, datetime]] = (),
    quiet: Iterable[tuple[datetime, datetime]] = (),
) -> list[Fix]:
    """The fixes the receiver reports between ``start`` and ``end`` (default: the trace's).

    No random tunnel overlaps a ``quiet`` span (the evidence of a planted incident)."""
    n = noise or NoiseModel()
    t0 = start or trace.start
    t1 = end or trace.end
    spans = list(gaps)
    hours = (t1 - t0).total_seconds() / 3600
    tunnel_count = _poisson(rng, n.tunnels_per_hour * hours)
    calm = list(quiet)
    for _ in range(tunnel_count):
        a = t0 + timedelta(seconds=rng.uniform(0, max(0.0, (t1 - t0).total_seconds())))
        b = a + timedelta(seconds=rng.uniform(*n.tunnel_s))
        if not any(a < q1 and q0 < b for q0, q1 in calm):
            spans.append((a, b))
    times = [t for t in fix_times(t0, t1, interval, spans) if rng.random() >= n.dropout_rate]
    if not times:
        return []
    lat, lon, heading, speed, _ = trace.state(times)
    err_e = err_n = 0.0
    rho = n.correlation
    fixes: list[Fix] = []
    last_outlier = False
    east = np.zeros(len(times))
    north = np.zeros(len(times))
    hdops = np.zeros(len(times))
    for i in range(len(times)):
        err_e = rho * err_e + math.sqrt(1 - rho * rho) * rng.gauss(0, n.sigma_m)
        err_n = rho * err_n + math.sqrt(1 - rho * rho) * rng.gauss(0, n.sigma_m)
        mag = math.hypot(err_e, err_n)
        if mag > n.max_jitter_m:  # keep the wander within bounds
            err_e, err_n = err_e * n.max_jitter_m / mag, err_n * n.max_jitter_m / mag
        e, no = err_e, err_n
        hdop = rng.uniform(*n.hdop)
        if not last_outlier and rng.random() < n.outlier_rate:
            angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(*n.outlier_m)
            e, no = e + dist * math.sin(angle), no + dist * math.cos(angle)
            if rng.random() < 0.5:
                hdop = rng.uniform(3.0, 12.0)
            last_outlier = True
        else:
            last_outlier = False
        east[i], north[i], hdops[i] = e, no, hdop
    az = np.degrees(np.arctan2(east, north))
    lat_o, lon_o = displace(lat, lon, az, np.hypot(east, north))
    for i, t in enumerate(times):
        kmh = max(0.0, float(speed[i]) + rng.gauss(0, n.speed_sigma_kmh)) if speed[i] > 0.5 else 0.0
        moving = kmh >= 2.0
        fixes.append(
            Fix(
                t=t,
                lat=round(float(lat_o[i]), 6),
                lon=round(float(lon_o[i]), 6),
                speed_kmh=round(min(kmh, 249.0), 1),
                heading=float(round(float(heading[i])) % 360) if moving else None,
                hdop=round(float(hdops[i]), 1),
            )
        )
    return fixes


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0) if mean > 0 else math.inf
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def lock_events(trace: Trace, lock_id: str, rng: random.Random) -> list[LockEvent]:
    """The e-lock events of the trace's holds, at the truck's position (a few metres off)."""
    events: list[LockEvent] = []
    for timing in trace.holds:
        for action in timing.hold.locks:
            t = _ms(timing.arrive + timedelta(seconds=action.offset_s))
            lat, lon = displace(
                [timing.lat], [timing.lon], [rng.uniform(0, 360)], [rng.uniform(0, 5)]
            )
            events.append(
                LockEvent(
                    t,
                    action.lock_id or lock_id,
                    action.event,
                    round(float(lat[0]), 6),
                    round(float(lon[0]), 6),
                )
            )
    return sorted(events, key=lambda e: e.t)


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


class Sink(Protocol):
    """Where a simulated vehicle's records go (a ``DeviceClient``, or a test's list)."""

    def record_fix(self, fix: Fix) -> None:
        """Take one fix."""
        ...

    def record_lock(self, lock: LockEvent) -> None:
        """Take one e-lock event."""
        ...


@dataclass
class VehicleRun:
    """One truck's trip: its true motion, its fixes and its e-lock events."""

    trace: Trace
    fixes: list[Fix]
    locks: list[LockEvent]
    records: list[Fix | LockEvent] = field(init=False)

    def __post_init__(self) -> None:
        merged: list[Fix | LockEvent] = [*self.fixes, *self.locks]
        merged.sort(key=lambda r: (r.t, isinstance(r, Fix)))
        self.records = merged

    @classmethod
    def simulate(
        cls,
        path: Path,
        start: datetime,
        holds: Sequence[Hold],
        rng: random.Random,
        *,
        lock_id: str,
        profile: DriveProfile | None = None,
        noise: NoiseModel | None = None,
        interval: timedelta = timedelta(seconds=10),
        gaps: Iterable[tuple[datetime, datetime]] = (),
    ) -> VehicleRun:
        """Drive, observe and operate the lock in one go."""
        trace = drive(path, start, holds, rng, profile)
        fixes = observe(trace, rng, noise=noise, interval=interval, gaps=gaps)
        return cls(trace, fixes, lock_events(trace, lock_id, rng))


def play(records: Iterable[Fix | LockEvent], sink: Sink) -> int:
    """Hand records to ``sink`` in the order given; how many."""
    count = 0
    for record in records:
        if isinstance(record, Fix):
            sink.record_fix(record)
        else:
            sink.record_lock(record)
        count += 1
    return count
