"""Building blocks of scenarios: one truck's leg, custody data, transmissions, true spans.

A ``LegPlan`` is what one truck does: a driven polyline (local metres) with holds,
GPS gaps and lock actions; ``run_leg`` turns it into a ``VehicleRun``. ``transmit``
turns a run's records into what reaches the broker (live, or held back while the
device is offline and then sent in batches). ``off_route_spans`` and
``inside_spans`` measure the truth (no noise) against a declared route or a zone,
for the labels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.ops import substring

from devices.geo import Path
from devices.scenario_model import Transmission
from devices.simulator import DriveProfile, Hold, NoiseModel, Trace, VehicleRun
from devices.world import WASTES, County, Place, Truck
from gateway.payloads import MAX_FIXES, Fix, LockEvent

XY = tuple[float, float]
Span = tuple[datetime, datetime]


def whole_s(t: datetime) -> datetime:
    """``t`` rounded down to the second (custody events are signed at second precision)."""
    return t.replace(microsecond=0)


def minutes(rng: random.Random, low: float, high: float) -> timedelta:
    """A uniform random duration in minutes."""
    return timedelta(minutes=rng.uniform(low, high))


def cut(xy: Sequence[XY], s0: float, s1: float) -> list[XY]:
    """The part of a local polyline from ``s0`` to ``s1`` metres along it."""
    part = substring(LineString(xy), s0, s1)
    return [(float(x), float(y)) for x, y in part.coords]


def polyline_length(xy: Sequence[XY]) -> float:
    """Length of a local polyline in metres."""
    return float(LineString(xy).length)


def point_along(xy: Sequence[XY], s: float) -> XY:
    """The local point ``s`` metres along a polyline."""
    p = LineString(xy).interpolate(s)
    return float(p.x), float(p.y)


def normal_at(xy: Sequence[XY], s: float) -> XY:
    """The unit normal (to the left) of a polyline ``s`` metres along it."""
    a, b = point_along(xy, max(0.0, s - 20)), point_along(xy, s + 20)
    dx, dy = b[0] - a[0], b[1] - a[1]
    n = math.hypot(dx, dy) or 1.0
    return -dy / n, dx / n


def splice(xy: Sequence[XY], s_a: float, s_b: float, detour: Sequence[XY]) -> list[XY]:
    """The polyline with the stretch from ``s_a`` to ``s_b`` replaced by ``detour``."""
    total = polyline_length(xy)
    return [*cut(xy, 0, s_a), *detour[1:-1], *cut(xy, s_b, total)]


@dataclass
class LegPlan:
    """What one truck does on one leg (or one unmanifested movement)."""

    truck: Truck
    xy: list[XY]
    start: datetime
    holds: list[Hold] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)
    profile: DriveProfile = field(default_factory=DriveProfile)


def geodesic_s(county: County, xy_prefix: Sequence[XY]) -> float:
    """Metres along the drivable path of a polyline prefix (geodesic, as ``Path`` measures)."""
    return county.path(xy_prefix).length_m if len(xy_prefix) > 1 else 0.0


def run_leg(
    county: County,
    plan: LegPlan,
    rng: random.Random,
    noise: NoiseModel,
    interval: timedelta,
) -> VehicleRun:
    """Simulate a leg plan."""
    return VehicleRun.simulate(
        county.path(plan.xy),
        plan.start,
        plan.holds,
        rng,
        lock_id=plan.truck.lock_id,
        profile=plan.profile,
        noise=noise,
        interval=interval,
        gaps=plan.gaps,
    )


def transmit(
    device_id: str,
    records: Iterable[Fix | LockEvent],
    rng: random.Random,
    *,
    offline: Sequence[Span] = (),
    keepalive_s: float = 30.0,
    online_at: datetime | None = None,
) -> list[Transmission]:
    """What reaches the broker: one message per record live (0.3-2.5 s later), records of
    an offline span held and sent in order, in batches of up to 500 fixes, when it ends
    (after the will, 1.5 keepalives into the span, and a fresh online status)."""
    out: list[Transmission] = []
    if online_at is not None:
        out.append(Transmission(online_at, device_id, 0, online=True))
    held: dict[int, list[Fix | LockEvent]] = {i: [] for i in range(len(offline))}
    for record in records:
        span = next((i for i, (a, b) in enumerate(offline) if a <= record.t < b), None)
        if span is not None:
            held[span].append(record)
            continue
        latency = timedelta(seconds=rng.uniform(0.3, 2.5))
        out.append(_message(device_id, record.t + latency, [record]))
    for i, (a, b) in enumerate(offline):
        out.append(
            Transmission(
                a + timedelta(seconds=1.5 * keepalive_s), device_id, 0, online=False, will=True
            )
        )
        arrive = b + timedelta(seconds=rng.uniform(1, 5))
        out.append(Transmission(arrive, device_id, 0, online=True))
        for batch in _batches(held[i]):
            arrive += timedelta(milliseconds=rng.uniform(50, 300))
            out.append(_message(device_id, arrive, batch))
    return sorted(out, key=lambda m: m.arrive_at)


def _message(device_id: str, arrive: datetime, batch: Sequence[Fix | LockEvent]) -> Transmission:
    if isinstance(batch[0], LockEvent):
        return Transmission(arrive, device_id, 0, lock=batch[0])
    return Transmission(arrive, device_id, 0, fixes=tuple(batch))  # type: ignore[arg-type]


def _batches(records: Sequence[Fix | LockEvent]) -> list[list[Fix | LockEvent]]:
    out: list[list[Fix | LockEvent]] = []
    for record in records:
        if isinstance(record, LockEvent):
            out.append([record])
        elif out and isinstance(out[-1][0], Fix) and len(out[-1]) < MAX_FIXES:
            out[-1].append(record)
        else:
            out.append([record])
    return out


def _spans(times: Sequence[datetime], flags: np.ndarray) -> list[Span]:
    spans: list[Span] = []
    start: datetime | None = None
    for t, flag in zip(times, flags, strict=True):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, times[-1]))
    return spans


def _truth(county: County, trace: Trace, step_s: float) -> tuple[list[datetime], np.ndarray]:
    total = (trace.end - trace.start).total_seconds()
    times = [trace.start + timedelta(seconds=float(s)) for s in np.arange(0, total, step_s)]
    lat, lon, *_ = trace.state(times)
    xs, ys = county.frame.to_xy(lon, lat)
    return times, shapely.points(xs, ys)


def off_route_spans(
    county: County, trace: Trace, route_xy: Sequence[XY], corridor_m: float, step_s: float = 2.0
) -> list[Span]:
    """When the true position lay outside the declared route's corridor."""
    times, points = _truth(county, trace, step_s)
    dist = shapely.distance(LineString(route_xy), points)
    return _spans(times, np.asarray(dist) > corridor_m)


def inside_spans(county: County, trace: Trace, area_xy: Any, step_s: float = 2.0) -> list[Span]:
    """When the true position lay inside a (local) shapely geometry."""
    times, points = _truth(county, trace, step_s)
    return _spans(times, np.asarray(shapely.intersects(area_xy, points)))


def waste_lines(
    producer: Place, truck: Truck, rng: random.Random
) -> tuple[list[dict[str, Any]], float]:
    """The manifest's waste lines (one, the producer's kind) and their declared mass."""
    kind = next(w for w in WASTES if w.code == producer.waste_codes[0])
    most = int(min(truck.capacity_kg * 0.9, 16_000) // kind.kg_per_container)
    containers = rng.randint(max(1, most // 3), max(1, most))
    mass = round(containers * kind.kg_per_container * rng.uniform(0.9, 1.0), 1)
    line = {
        "code": kind.code,
        "name": kind.name,
        "hazards": list(kind.hazards),
        "form": kind.form,
        "packaging": kind.packaging,
        "containers": containers,
        "mass_kg": mass,
    }
    return [line], mass


def ts(t: datetime) -> str:
    """A protocol timestamp at second precision."""
    return whole_s(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def route_geojson(county: County, xy: Sequence[XY]) -> dict[str, Any]:
    """A local polyline as a GeoJSON LineString."""
    return Path(county.lonlat(xy)).geojson()
