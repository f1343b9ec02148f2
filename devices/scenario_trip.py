"""``Trip``: one manifest carried by one truck, honest unless an incident bends it.

An honest trip: the truck loads at the producer (10-20 min; the e-lock is sealed just
after the ``picked_up`` instant), drives the declared route (lights, maybe a rest in a
declared rest area), unloads at the destination (unsealed 1-3 min after arriving,
``received`` 8-14 min after arriving). Incident methods change the drive (detours,
stops, gaps) or the paperwork, and add the labels, measured on the true motion.
Methods that change the driven path must come before those that place holds on it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import LineString, Point

from devices.geo import road_between, square_polygon
from devices.paperwork import (
    Options,
    assemble,
    filing_data,
    pair,
    pickup_data,
    receipt_data,
    step,
)
from devices.scenario_model import CustodyStep, ExpectedAlert, ManifestPlan, Scenario
from devices.simulator import (
    DriveProfile,
    Hold,
    LockAction,
    Trace,
    VehicleRun,
    drive,
    lock_events,
    observe,
)
from devices.trips import (
    XY,
    Span,
    cut,
    geodesic_s,
    inside_spans,
    minutes,
    normal_at,
    off_route_spans,
    point_along,
    polyline_length,
    route_geojson,
    splice,
    transmit,
    waste_lines,
    whole_s,
)
from devices.world import UNLICENSED_CODE, County, Place, Truck
from gateway.payloads import LockEventKind

__all__ = ["SEALED", "TAMPER", "UNSEALED", "Trip"]

SEALED, UNSEALED, TAMPER = LockEventKind.SEALED, LockEventKind.UNSEALED, LockEventKind.TAMPER
_S = timedelta(seconds=1)
_MIN = timedelta(minutes=1)


class Trip:
    """One manifest, one truck: the honest skeleton that incident methods bend."""

    def __init__(
        self,
        county: County,
        rng: random.Random,
        key: str,
        kind: str,
        start: datetime,
        truck: Truck,
        producer: Place,
        site: Place,
        route_xy: list[XY],
        opts: Options,
    ) -> None:
        self.county, self.rng, self.key, self.kind, self.opts = county, rng, key, kind, opts
        self.start, self.truck, self.producer, self.site = start, truck, producer, site
        self.route_xy = route_xy
        self.length = polyline_length(route_xy)
        self.driven = list(route_xy)
        self.manifest = f"{key}/m0"
        self.loading = minutes(rng, 10, 20)
        self.unloading = minutes(rng, 15, 30)
        self.holds: list[tuple[float, Hold]] = []  # (local metres along ``driven``, hold)
        self.rest_areas: list[dict[str, Any]] = []
        self.gaps: list[Span] = []
        self.offline: list[Span] = []
        self.expected: list[ExpectedAlert] = []
        self.mass_factor = rng.uniform(0.985, 1.002)
        self.receipt: dict[str, Any] = {}
        self.deliver_by: datetime | None = None
        self.after: list[Callable[[Trace], None]] = []
        self.received_at = start  # set by ``build``

    @classmethod
    def plan(
        cls,
        county: County,
        rng: random.Random,
        key: str,
        kind: str,
        start: datetime,
        truck_key: str,
        opts: Options,
        *,
        near_zone: bool = False,
    ) -> Trip:
        """A trip between a producer and a site of the county far enough apart for ``kind``."""
        min_m = {"signal_jamming": 28_000.0, "offline_backlog": 8_000.0}.get(kind, 5_000.0)
        p, d, xy = pair(county, rng, min_m, near_zone)
        return cls(county, rng, key, kind, start, county.truck(truck_key), p, d, xy, opts)

    # -- labels -------------------------------------------------------------------

    def expect(
        self,
        kind: str,
        earliest: datetime,
        latest: datetime,
        *,
        required: bool = True,
        note: str = "",
    ) -> None:
        """Add a label about this trip's manifest."""
        self.expected.append(
            ExpectedAlert(kind, self.manifest, None, earliest, latest, required, note)
        )

    def _expect_off_route(self, trace: Trace, note: str) -> None:
        spans = [
            (a, b)
            for a, b in off_route_spans(self.county, trace, self.route_xy, self.opts.corridor_m)
            if (b - a) >= timedelta(seconds=60)
        ]
        if not spans:
            raise RuntimeError(f"{self.key}: planted excursion never left the corridor")
        first, last = spans[0][0], spans[-1][1]  # noise may cross the edge a fix early
        self.expect("route_deviation", first - _MIN, last + timedelta(minutes=5), note=note)

    # -- incidents ----------------------------------------------------------------

    def add_rest(self, fraction: float, duration_min: float, name: str = "rest") -> XY:
        """A stop in a declared rest area ``fraction`` of the way along."""
        s = fraction * self.length
        x, y = point_along(self.driven, s)
        self.rest_areas.append(square_polygon(self.county.frame, x, y, 200))
        self.holds.append((s, Hold(0, duration_min * 60, name)))
        return x, y

    def _detour(self, s_a: float, s_b: float, apex_m: tuple[float, float]) -> list[XY]:
        a, b = point_along(self.driven, s_a), point_along(self.driven, s_b)
        for _ in range(30):
            nx, ny = normal_at(self.driven, (s_a + s_b) / 2)
            side, off = self.rng.choice((-1, 1)), self.rng.uniform(*apex_m)
            mid = point_along(self.driven, (s_a + s_b) / 2)
            apex = (mid[0] + side * nx * off, mid[1] + side * ny * off)
            path = road_between(a, b, self.rng, via=[apex], wiggle=0.03, step_m=100)
            if self.county.zone_distance(path) >= 600:
                return path
        raise RuntimeError(f"{self.key}: no detour clears the zones")

    def add_detour(self) -> None:
        """Leave the route for 1.5-3 km of road 400-1500 m off it, and come back."""
        s_a = self.rng.uniform(0.2, 0.5) * self.length
        s_b = min(s_a + self.rng.uniform(1500, 3000), 0.85 * self.length)
        self.driven = splice(self.driven, s_a, s_b, self._detour(s_a, s_b, (400, 1500)))
        self.after.append(lambda trace: self._expect_off_route(trace, "detour"))

    def add_dump(self, *, seal_opened: bool, off_road: bool, mass_lost: bool) -> None:
        """Stop 16-30 min off site (by the road, or down a track), maybe opening the seal."""
        s = self.rng.uniform(0.3, 0.7) * self.length
        if off_road:
            out = self._detour(s, s + 150, (300, 700))
            field_at = len(out) // 2
            self.driven = splice(self.driven, s, s + 150, out)
            s += polyline_length(out[: field_at + 1])
        dur = self.rng.uniform(16, 30) * 60
        locks: tuple[LockAction, ...] = ()
        if seal_opened:
            opened = self.rng.uniform(60, 180)
            locks = (
                LockAction(opened, UNSEALED),
                LockAction(dur - self.rng.uniform(60, 120), SEALED),
            )
        self.holds.append((s, Hold(0, dur, "dump", locks)))
        if mass_lost:
            self.mass_factor = self.rng.uniform(0.55, 0.8)

        def label(trace: Trace) -> None:
            stop = trace.hold("dump")
            # a stop's first fix may be one of the slow ones just before the truck stood still
            began = stop.arrive - 2 * _MIN
            self.expect("unscheduled_stop", began, stop.depart + 2 * _MIN)
            self.expect("suspected_illegal_dumping", began, self.received_at + 5 * _MIN)
            if seal_opened:
                t = stop.arrive + timedelta(seconds=locks[0].offset_s)
                self.expect("seal_opened_off_site", t - _S, t + timedelta(minutes=2))
            if off_road:
                self._expect_off_route(trace, "dump down a track")
            if mass_lost:
                self._expect_receipt("quantity_discrepancy")

        self.after.append(label)

    def _expect_receipt(self, kind: str) -> None:
        self.expect(kind, self.received_at - _S, self.received_at + timedelta(minutes=5))

    def lose_mass(self) -> None:
        """Arrive 15-40% lighter with no stop on the way."""
        self.mass_factor = self.rng.uniform(0.6, 0.85)
        self.after.append(lambda _t: self._expect_receipt("quantity_discrepancy"))

    def _window(self, trace: Trace, lead_min: tuple[float, float], want_min: float) -> Span:
        depart, arrive = trace.hold("loading").depart, trace.hold("unloading").arrive
        a = depart + minutes(self.rng, *lead_min)
        return a, min(a + timedelta(minutes=want_min), arrive)

    def jam(self, duration_min: float) -> None:
        """No fixes for 15-40 min while driving (a GPS jammer); the device stays online."""

        def label(trace: Trace) -> None:
            a, b = self._window(trace, (3, 8), duration_min)
            if b - a < timedelta(minutes=13):
                raise RuntimeError(f"{self.key}: route too short for a jam")
            self.gaps.append((a, b))
            self.expect("signal_lost", a - _MIN, b + 5 * _MIN)
            # going dark, then unsealing (at the destination) is what dumping looks like too
            self.expect(
                "suspected_illegal_dumping",
                a - _MIN,
                self.received_at + 5 * _MIN,
                required=False,
                note="a dark gap, then the unsealing at the destination",
            )

        self.after.append(label)

    def offline_for(self, duration_min: float) -> None:
        """The device loses the broker for a while; its backlog arrives late (honest)."""

        def label(trace: Trace) -> None:
            a, _ = self._window(trace, (2, 10), duration_min)
            b = min(a + timedelta(minutes=duration_min), trace.end - timedelta(minutes=1))
            self.offline.append((a, b))
            for kind in ("signal_lost", "suspected_illegal_dumping"):
                self.expect(
                    kind,
                    a - _MIN,
                    self.received_at + 5 * _MIN,
                    required=False,
                    note="provisional, until the backlog arrives",
                )

        self.after.append(label)

    def enter_zone(self) -> None:
        """Cut through the restricted zone the declared route skirts (planned by ``plan``)."""
        line = LineString(self.route_xy)
        zone = min(self.county.zones, key=lambda z: line.distance(Point(z.x, z.y)))
        s_v = line.project(Point(zone.x, zone.y))
        s_a, s_b = max(100.0, s_v - 900), min(self.length - 100, s_v + 900)
        near = point_along(self.driven, s_v)
        dx, dy = near[0] - zone.x, near[1] - zone.y
        norm = math.hypot(dx, dy) or 1.0
        apex = (
            zone.x + dx / norm * (zone.radius_m - 300),
            zone.y + dy / norm * (zone.radius_m - 300),
        )
        a, b = point_along(self.driven, s_a), point_along(self.driven, s_b)
        detour = road_between(a, b, self.rng, via=[apex], wiggle=0.02, step_m=100)
        self.driven = splice(self.driven, s_a, s_b, detour)

        def label(trace: Trace) -> None:
            spans = inside_spans(
                self.county, trace, Point(zone.x, zone.y).buffer(zone.radius_m, 64)
            )
            if not spans:
                raise RuntimeError(f"{self.key}: the shortcut missed the zone")
            self.expect("restricted_zone_entry", spans[0][0] - _MIN, spans[-1][1] + 2 * _MIN)
            self._expect_off_route(trace, "shortcut through a restricted zone")

        self.after.append(label)

    def tamper(self, *, at_gate: bool) -> None:
        """A ``tamper`` event at a traffic stop, or another seal id found at the gate."""
        if at_gate:
            self.receipt = {"seal_id": f"{self.truck.lock_id}-R", "seal_intact": False}
            self.after.append(lambda _t: self._expect_receipt("seal_tamper"))
            return
        s = self.rng.uniform(0.3, 0.7) * self.length
        self.holds.append(
            (s, Hold(0, self.rng.uniform(30, 60), "tamper", (LockAction(10, TAMPER),)))
        )

        def label(trace: Trace) -> None:
            t = trace.hold("tamper").arrive + timedelta(seconds=10)
            self.expect("seal_tamper", t - _S, t + timedelta(minutes=2))

        self.after.append(label)

    def break_down(self) -> None:
        """Stand 2-3.5 h in a declared rest area; deliver_by would have been met otherwise."""
        self.add_rest(self.rng.uniform(0.3, 0.7), self.rng.uniform(120, 210), "breakdown")

        def label(trace: Trace) -> None:
            held = trace.hold("breakdown")
            on_time = trace.hold("unloading").arrive - (held.depart - held.arrive)
            self.deliver_by = whole_s(on_time + timedelta(minutes=40))
            self.expect("overdue_delivery", self.deliver_by - _S, self.received_at)

        self.after.append(label)

    def book_unlicensed(self) -> None:
        """The site books the load under a code its permit does not cover."""
        self.receipt = {"waste_codes": [UNLICENSED_CODE]}
        self.after.append(lambda _t: self._expect_receipt("unlicensed_receipt"))

    # -- building -----------------------------------------------------------------

    def _drive(self) -> Trace:
        loading_s = self.loading.total_seconds()
        holds = [Hold(0.0, loading_s, "loading", (LockAction(loading_s - 50, SEALED),))]
        for s_local, hold in self.holds:
            s = geodesic_s(self.county, cut(self.driven, 0, s_local))
            holds.append(Hold(s, hold.duration_s, hold.name, hold.locks))
        path = self.county.path(self.driven)
        unseal = self.rng.uniform(60, 180)
        if not self.receipt.get("seal_intact", True):
            unseal = self.rng.uniform(300, 400)  # after the gate check found the wrong seal
        holds.append(
            Hold(
                path.length_m,
                self.unloading.total_seconds(),
                "unloading",
                (LockAction(unseal, UNSEALED),),
            )
        )
        return drive(path, self.start, holds, self.rng, self.opts_profile())

    def opts_profile(self) -> DriveProfile:
        """The truck's driving style for this trip."""
        return DriveProfile(cruise_kmh=self.rng.uniform(50, 75))

    def build(self) -> Scenario:
        """Drive, label, observe and write the paperwork."""
        trace = self._drive()
        arrive = trace.hold("unloading").arrive
        self.received_at = whole_s(arrive + minutes(self.rng, 8, 14))
        for hook in self.after:
            hook(trace)
        quiet = [(e.earliest, e.latest) for e in self.expected if e.required]
        fixes = observe(
            trace,
            self.rng,
            noise=self.opts.noise,
            interval=self.opts.interval,
            gaps=self.gaps,
            quiet=quiet,
        )
        run = VehicleRun(trace, fixes, lock_events(trace, self.truck.lock_id, self.rng))
        plan = ManifestPlan(
            self.manifest,
            self.producer.key,
            self.truck.hauler,
            self.site.key,
            self.truck.key,
            route_geojson(self.county, self.route_xy),
            self.opts.corridor_m,
            tuple(self.rest_areas),
        )
        custody = self._custody(plan)
        sent = transmit(
            self.truck.device_id,
            run.records,
            self.rng,
            offline=self.offline,
            online_at=run.records[0].t,
        )
        scenario = assemble(
            self.key, self.kind, (self.truck.key,), (plan,), custody, sent, self.expected, trace.end
        )
        offline = tuple((self.truck.device_id, a, b) for a, b in self.offline)
        return replace(scenario, offline=offline)

    def _custody(self, plan: ManifestPlan) -> list[CustodyStep]:
        filed_at = whole_s(self.start - minutes(self.rng, 30, 120))
        pickup_at = whole_s(self.start + self.loading - timedelta(seconds=60))
        lines, declared = waste_lines(self.producer, self.truck, self.rng)
        picked = round(declared * self.rng.uniform(0.97, 1.02), 1)
        received = round(picked * self.mass_factor, 1)
        deliver_by = self.deliver_by or whole_s(self.start + timedelta(hours=8))
        filing = filing_data(plan, lines, self.truck, filed_at, self.start, deliver_by)
        steps = [
            step(self.rng, filed_at, plan.key, "filed", self.producer.key, (), filing),
            step(
                self.rng,
                pickup_at,
                plan.key,
                "picked_up",
                self.truck.hauler,
                (self.producer.key,),
                pickup_data(self.truck, picked),
            ),
        ]
        data = receipt_data(self.truck.lock_id, received) | self.receipt
        steps.append(
            step(self.rng, self.received_at, plan.key, "received", self.site.key, (), data)
        )
        return steps
