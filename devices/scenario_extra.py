"""Scenarios that are not one truck carrying one manifest: a multi-leg trip with a handover
between hauliers, and a sealed truck moving with no manifest at all."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from devices.geo import square_polygon
from devices.paperwork import (
    Options,
    assemble,
    filing_data,
    pickup_data,
    receipt_data,
    step,
)
from devices.scenario_model import ExpectedAlert, ManifestPlan, Scenario, Transmission
from devices.scenario_trip import SEALED, UNSEALED, Trip
from devices.simulator import Hold, LockAction, VehicleRun, drive, lock_events, observe
from devices.trips import cut, minutes, point_along, route_geojson, transmit, waste_lines, whole_s
from devices.world import County

__all__ = ["multi_leg", "unmanifested"]

_S = timedelta(seconds=1)


def multi_leg(
    county: County,
    rng: random.Random,
    key: str,
    start: datetime,
    a_key: str,
    b_key: str,
    opts: Options,
) -> Scenario:
    """Truck A (hauler 1) hands the load to truck B (hauler 2) at a declared transfer point."""
    trip = Trip.plan(county, rng, key, "multi_leg", start, a_key, opts)
    a, b = trip.truck, county.truck(b_key)
    s_t = rng.uniform(0.35, 0.6) * trip.length
    prefix, suffix = cut(trip.route_xy, 0, s_t), cut(trip.route_xy, s_t, trip.length)
    tx, ty = point_along(trip.route_xy, s_t)
    trip.rest_areas.append(square_polygon(county.frame, tx, ty, 200))
    loading = trip.loading.total_seconds()
    holds_a = [
        Hold(0, loading, "loading", (LockAction(loading - 50, SEALED),)),
        Hold(
            county.path(prefix).length_m,
            rng.uniform(20, 35) * 60,
            "transfer",
            (LockAction(rng.uniform(200, 300), UNSEALED),),
        ),
    ]
    trace_a = drive(county.path(prefix), start, holds_a, rng, trip.opts_profile())
    arrive_a = trace_a.hold("transfer").arrive
    handover_at = whole_s(arrive_a + timedelta(seconds=rng.uniform(60, 150)))
    b_start = arrive_a - minutes(rng, 5, 15)
    sealed_b = (handover_at + minutes(rng, 4, 7) - b_start).total_seconds()
    depart_b = (handover_at + minutes(rng, 8, 12) - b_start).total_seconds()
    path_b = county.path(suffix)
    unseal = rng.uniform(60, 180)
    holds_b = [
        Hold(0, depart_b, "transfer", (LockAction(sealed_b, SEALED),)),
        Hold(
            path_b.length_m,
            trip.unloading.total_seconds(),
            "unloading",
            (LockAction(unseal, UNSEALED),),
        ),
    ]
    trace_b = drive(path_b, b_start, holds_b, rng, trip.opts_profile())
    received_at = whole_s(trace_b.hold("unloading").arrive + minutes(rng, 8, 14))
    plan = ManifestPlan(
        trip.manifest,
        trip.producer.key,
        a.hauler,
        trip.site.key,
        a.key,
        route_geojson(county, trip.route_xy),
        opts.corridor_m,
        tuple(trip.rest_areas),
    )
    filed_at = whole_s(start - minutes(rng, 30, 120))
    lines, declared = waste_lines(trip.producer, a, rng)
    picked = round(declared * rng.uniform(0.97, 1.02), 1)
    handed = round(picked * rng.uniform(0.995, 1.0), 1)
    lat, lon = county.path(prefix).point(county.path(prefix).length_m)
    late = rng.random() < opts.late_handover_share
    delay = minutes(rng, 20, 60) if late else None
    if delay is not None:
        # Posted late, but never after the receipt: the server needs the load in transit.
        delay = min(delay, received_at - handover_at - 60 * _S)
    handover = {
        "from_hauler": a.hauler,
        "to_hauler": b.hauler,
        "vehicle": b.plate,
        "device_id": b.device_id,
        "seal_id": b.lock_id,
        "mass_kg": handed,
        "location": {"lat": round(lat, 6), "lon": round(lon, 6)},
        "route": route_geojson(county, suffix),
    }
    custody = [
        step(
            rng,
            filed_at,
            plan.key,
            "filed",
            trip.producer.key,
            (),
            filing_data(plan, lines, a, filed_at, start, whole_s(start + timedelta(hours=8))),
        ),
        step(
            rng,
            whole_s(start + trip.loading - 60 * _S),
            plan.key,
            "picked_up",
            a.hauler,
            (trip.producer.key,),
            pickup_data(a, picked),
        ),
        step(rng, handover_at, plan.key, "handed_over", a.hauler, (b.hauler,), handover, delay),
        step(
            rng,
            received_at,
            plan.key,
            "received",
            trip.site.key,
            (),
            receipt_data(b.lock_id, round(handed * rng.uniform(0.99, 1.0), 1)),
        ),
    ]
    expected: list[ExpectedAlert] = []
    if late:
        known = handover_at + delay if delay else handover_at
        for kind, device in (
            ("unmanifested_movement", b.device_id),
            ("seal_opened_off_site", None),
            ("signal_lost", None),
            ("unscheduled_stop", None),
        ):
            expected.append(
                ExpectedAlert(
                    kind,
                    None if device else plan.key,
                    device,
                    handover_at - 60 * _S,
                    known + timedelta(minutes=15),
                    required=False,
                    note="handover posted late",
                )
            )
    sent: list[Transmission] = []
    for truck, trace in ((a, trace_a), (b, trace_b)):
        fixes = observe(trace, rng, noise=opts.noise, interval=opts.interval)
        run = VehicleRun(trace, fixes, lock_events(trace, truck.lock_id, rng))
        sent += transmit(truck.device_id, run.records, rng, online_at=run.records[0].t)
    end = max(trace_a.end, trace_b.end)
    return assemble(key, "multi_leg", (a.key, b.key), (plan,), custody, sent, expected, end)


def unmanifested(
    county: County, rng: random.Random, key: str, start: datetime, truck_key: str, opts: Options
) -> Scenario:
    """A truck sealed at a producer drives to a site with no manifest at all."""
    trip = Trip.plan(county, rng, key, "unmanifested_movement", start, truck_key, opts)
    path = county.path(trip.route_xy)
    wait = rng.uniform(5, 10) * 60
    holds = [
        Hold(0, wait, "loading", (LockAction(wait - 40, SEALED),)),
        Hold(path.length_m, rng.uniform(10, 20) * 60, "unloading", (LockAction(90, UNSEALED),)),
    ]
    trace = drive(path, start, holds, rng, trip.opts_profile())
    depart, arrive = trace.hold("loading").depart, trace.hold("unloading").arrive
    label = ExpectedAlert(
        "unmanifested_movement",
        None,
        trip.truck.device_id,
        depart - 60 * _S,
        arrive,
        note=f"sealed at {trip.producer.key}, unsealed at {trip.site.key}",
    )
    fixes = observe(
        trace, rng, noise=opts.noise, interval=opts.interval, quiet=[(label.earliest, label.latest)]
    )
    run = VehicleRun(trace, fixes, lock_events(trace, trip.truck.lock_id, rng))
    sent = transmit(trip.truck.device_id, run.records, rng, online_at=run.records[0].t)
    return assemble(
        key, "unmanifested_movement", (trip.truck.key,), (), [], sent, [label], trace.end
    )
