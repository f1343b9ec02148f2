"""The paperwork and plumbing shared by scenarios: options, picking a producer and a site,
custody event data, and assembling a ``Scenario``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import LineString, Point

from devices.geo import road_between
from devices.scenario_model import CustodyStep, ExpectedAlert, ManifestPlan, Scenario, Transmission
from devices.simulator import NoiseModel
from devices.trips import XY, polyline_length, ts
from devices.world import County, Place, Truck

__all__ = [
    "Options",
    "assemble",
    "filing_data",
    "pair",
    "pickup_data",
    "receipt_data",
    "step",
]


@dataclass(frozen=True)
class Options:
    """Knobs shared by every scenario."""

    interval: timedelta = timedelta(seconds=10)
    noise: NoiseModel = field(default_factory=NoiseModel)
    corridor_m: float = 50.0
    late_handover_share: float = 0.3


def pair(
    county: County, rng: random.Random, min_m: float, near_zone: bool
) -> tuple[Place, Place, list[XY]]:
    for _ in range(200):
        p, d = rng.choice(county.producers), rng.choice(county.sites)
        if math.hypot(p.x - d.x, p.y - d.y) < min_m * 0.8:
            continue
        if not near_zone:
            xy = county.route(p, d, rng)
            if polyline_length(xy) >= min_m:
                return p, d, xy
            continue
        z = min(
            county.zones,
            key=lambda z: LineString([(p.x, p.y), (d.x, d.y)]).distance(Point(z.x, z.y)),
        )
        near = LineString([(p.x, p.y), (d.x, d.y)]).interpolate(
            LineString([(p.x, p.y), (d.x, d.y)]).project(Point(z.x, z.y))
        )
        dx, dy = near.x - z.x, near.y - z.y
        norm = math.hypot(dx, dy) or 1.0
        via = (z.x + dx / norm * (z.radius_m + 350), z.y + dy / norm * (z.radius_m + 350))
        xy = road_between((p.x, p.y), (d.x, d.y), rng, via=[via], wiggle=0.02)
        if polyline_length(xy) >= min_m and county.zone_distance(xy) >= 150:
            return p, d, xy
    raise RuntimeError("no producer/site pair fits this scenario in the county")


def filing_data(
    plan: ManifestPlan,
    lines: list[dict[str, Any]],
    truck: Truck,
    filed_at: datetime,
    start: datetime,
    deliver_by: datetime,
) -> dict[str, Any]:
    """The ``filed`` event's data (party members as county keys)."""
    data: dict[str, Any] = {
        "producer": plan.producer,
        "hauler": plan.hauler,
        "vehicle": truck.plate,
        "destination": plan.destination,
        "wastes": lines,
        "route": plan.route,
        "corridor_m": plan.corridor_m,
        "pickup_window": {"from": ts(filed_at), "to": ts(start + timedelta(hours=4))},
        "deliver_by": ts(deliver_by),
    }
    if plan.rest_areas:
        data["rest_areas"] = list(plan.rest_areas)
    return data


def pickup_data(truck: Truck, mass: float) -> dict[str, Any]:
    """The ``picked_up`` event's data."""
    return {
        "hauler": truck.hauler,
        "vehicle": truck.plate,
        "device_id": truck.device_id,
        "seal_id": truck.lock_id,
        "mass_kg": mass,
    }


def receipt_data(seal_id: str, mass: float) -> dict[str, Any]:
    """The ``received`` event's data: all accepted, seal intact."""
    return {
        "mass_kg": mass,
        "accepted_kg": mass,
        "refused_kg": 0,
        "seal_id": seal_id,
        "seal_intact": True,
    }


def step(
    rng: random.Random,
    at: datetime,
    manifest: str,
    kind: str,
    actor: str,
    cosigners: tuple[str, ...],
    data: dict[str, Any],
    delay: timedelta | None = None,
) -> CustodyStep:
    post = at + (delay if delay is not None else timedelta(seconds=rng.uniform(1, 20)))
    return CustodyStep(at, post, manifest, kind, actor, cosigners, data)


def assemble(
    key: str,
    kind: str,
    trucks: tuple[str, ...],
    plans: tuple[ManifestPlan, ...],
    custody: list[CustodyStep],
    sent: list[Transmission],
    expected: list[ExpectedAlert],
    end: datetime,
) -> Scenario:
    start = min([c.at for c in custody] + [m.first_t for m in sent])
    last = max([end] + [c.post_at for c in custody] + [m.arrive_at for m in sent])
    return Scenario(
        key,
        kind,
        trucks,
        plans,
        tuple(sorted(custody, key=lambda c: c.post_at)),
        tuple(sent),
        tuple(expected),
        start,
        last,
    )
