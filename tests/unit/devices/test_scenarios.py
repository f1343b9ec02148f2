"""Scenario labels agree with the data: honest trips leave no evidence, incidents leave theirs.

The evidence is read with ``waste.tracking`` (the pure leg tracker, an independent
consumer of the fixes) and from the custody data and e-lock events themselves.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from shapely.geometry import Point, shape

from devices.scenario_model import Scenario
from devices.scenarios import HONEST_KINDS, INCIDENT_KINDS, KINDS, make_corpus, make_scenario
from devices.signing import public_key_bytes
from devices.world import County, make_county
from gateway.payloads import DeviceKey, LockMessage, StatusMessage, TelemetryMessage, decode
from waste.manifests.domain import EventRecord, replay
from waste.tracking import (
    AreaIndex,
    AreaKind,
    AreaRef,
    LegTracker,
    PolygonArea,
    RouteIndex,
)
from waste.tracking import Fix as TrackFix
from waste.tracking.model import ExcursionStarted, GapObserved, StopEnded, TrackEvent, ZoneEntered

SEEDS = range(3)
START = datetime(2026, 11, 23, 8, tzinfo=UTC)


@cache
def scenario(kind: str, seed: int) -> Scenario:
    return make_scenario(kind, seed=seed, start=START)


def county_of(seed: int) -> County:
    import random

    return make_county(random.Random(seed))


def legs(s: Scenario) -> Iterator[tuple[str, str, datetime, datetime, dict[str, object]]]:
    """(manifest key, device id, opened, closed, route) of each leg."""
    for plan in s.manifests:
        steps = {c.type: c for c in s.custody if c.manifest == plan.key}
        opened, device, route = (
            steps["picked_up"].at,
            steps["picked_up"].data["device_id"],
            plan.route,
        )
        if "handed_over" in steps:
            h = steps["handed_over"]
            yield plan.key, device, opened, h.at, route
            opened, device, route = h.at, h.data["device_id"], h.data["route"]
        yield plan.key, device, opened, steps["received"].at, route


def track(s: Scenario, county: County) -> list[TrackEvent]:
    events: list[TrackEvent] = []
    for plan in s.manifests:
        areas = [
            PolygonArea(AreaRef(AreaKind.PICKUP, plan.producer), county.place(plan.producer).area),
            PolygonArea(
                AreaRef(AreaKind.DESTINATION, plan.destination), county.place(plan.destination).area
            ),
            *(
                PolygonArea(AreaRef(AreaKind.REST_AREA, f"r{i}"), a)
                for i, a in enumerate(plan.rest_areas)
            ),
            *(PolygonArea(AreaRef(AreaKind.RESTRICTED_ZONE, z.key), z.area) for z in county.zones),
        ]
        for key, device, opened, closed, route in legs(s):
            if key != plan.key:
                continue
            tracker = LegTracker(key, RouteIndex(route, plan.corridor_m), AreaIndex(areas))
            fixes = [
                TrackFix(f.t, f.lat, f.lon, f.speed_kmh, f.heading, f.hdop)
                for f in s.fixes(device)
                if opened <= f.t < closed
            ]
            events += tracker.consume_many(fixes) + tracker.close(closed)
    return events


def offsite_stops(events: list[TrackEvent], minutes: float) -> list[StopEnded]:
    return [
        e
        for e in events
        if isinstance(e, StopEnded)
        and not e.stop.areas
        and e.stop.duration >= timedelta(minutes=minutes)
    ]


def window(s: Scenario, kind: str) -> tuple[datetime, datetime]:
    (label,) = [e for e in s.expected if e.kind == kind and e.required]
    return label.earliest, label.latest


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", HONEST_KINDS)
def test_honest_trips_leave_no_evidence(kind: str, seed: int) -> None:
    s = scenario(kind, seed)
    assert s.honest
    assert not s.required_kinds
    events = track(s, county_of(seed))
    assert not [e for e in events if isinstance(e, ExcursionStarted | ZoneEntered)]
    assert not [e for e in events if isinstance(e, GapObserved)]
    assert not offsite_stops(events, 0)
    for plan in s.manifests:
        steps = {c.type: c for c in s.custody if c.manifest == plan.key}
        assert steps["received"].data["mass_kg"] >= 0.95 * steps["picked_up"].data["mass_kg"]


def test_a_corpus_of_honest_trips_is_clean_by_the_tracker() -> None:
    corpus = make_corpus(20, seed=11, incident_share=0.0)
    assert set(corpus.counts()) <= set(HONEST_KINDS)
    for s in corpus.scenarios:
        events = track(s, corpus.county)
        assert not [
            e for e in events if isinstance(e, ExcursionStarted | ZoneEntered | GapObserved)
        ], s.key
        assert not offsite_stops(events, 0), s.key


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_incidents_leave_the_evidence_their_labels_claim(kind: str, seed: int) -> None:
    s = scenario(kind, seed)
    county = county_of(seed)
    events = track(s, county)
    kinds = s.required_kinds
    assert kinds, "an incident must be labelled"
    if "route_deviation" in kinds:
        lo, hi = window(s, "route_deviation")
        assert [e for e in events if isinstance(e, ExcursionStarted) and lo <= e.at <= hi]
    else:
        assert not [e for e in events if isinstance(e, ExcursionStarted)]
    if "restricted_zone_entry" in kinds:
        lo, hi = window(s, "restricted_zone_entry")
        assert [e for e in events if isinstance(e, ZoneEntered) and lo <= e.entered_at <= hi]
    if "unscheduled_stop" in kinds:
        lo, hi = window(s, "unscheduled_stop")
        assert [e for e in offsite_stops(events, 15) if lo <= e.stop.started_at <= hi]
    else:
        assert not offsite_stops(events, 0)
    if "signal_lost" in kinds:
        lo, hi = window(s, "signal_lost")
        gaps = [e for e in events if isinstance(e, GapObserved) and lo <= e.from_t and e.to_t <= hi]
        assert gaps
        assert (gaps[0].to_t - gaps[0].from_t) > timedelta(minutes=12)
    else:
        assert not [e for e in events if isinstance(e, GapObserved)]
    _check_paperwork(s, county, kinds)


def _check_paperwork(s: Scenario, county: County, kinds: frozenset[str]) -> None:
    steps = {c.type: c for c in s.custody}
    if "quantity_discrepancy" in kinds:
        assert steps["received"].data["mass_kg"] < 0.88 * steps["picked_up"].data["mass_kg"]
    elif steps:
        assert steps["received"].data["mass_kg"] > 0.95 * steps["picked_up"].data["mass_kg"]
    unsealed = [e for e in s.locks() if e.event == "unsealed"]
    if "seal_opened_off_site" in kinds:
        lo, hi = window(s, "seal_opened_off_site")
        site = shape(county.place(s.manifests[0].destination).area)
        opened = [e for e in unsealed if lo <= e.t <= hi]
        assert opened
        assert not site.covers(Point(opened[0].lon, opened[0].lat))
    if "seal_tamper" in kinds:
        lo, hi = window(s, "seal_tamper")
        tampered = [e for e in s.locks() if e.event == "tamper" and lo <= e.t <= hi]
        swapped = steps["received"].data["seal_id"] != steps["picked_up"].data["seal_id"]
        assert tampered or swapped
    if "overdue_delivery" in kinds:
        assert steps["received"].at > datetime.fromisoformat(steps["filed"].data["deliver_by"])
    else:
        assert not steps or steps["received"].at < datetime.fromisoformat(
            steps["filed"].data["deliver_by"]
        )
    if "unlicensed_receipt" in kinds:
        site = county.place(s.manifests[0].destination)
        assert set(steps["received"].data["waste_codes"]) - set(site.waste_codes)
    if "unmanifested_movement" in kinds:
        assert not s.manifests
        assert [e for e in s.locks() if e.event == "sealed"]
        lo, hi = window(s, "unmanifested_movement")
        assert [f for f in s.fixes() if lo <= f.t <= hi and (f.speed_kmh or 0) > 20]


@pytest.mark.parametrize("kind", KINDS)
def test_every_custody_chain_is_one_the_state_machine_accepts(kind: str) -> None:
    s = scenario(kind, 1)
    county = county_of(1)
    kinds = {p.key: p.kind for p in (*county.producers, *county.sites)}
    kinds |= {h.key: "hauler" for h in county.haulers}
    for plan in s.manifests:
        manifest_id = str(uuid.uuid5(uuid.NAMESPACE_URL, plan.key))
        records = [
            EventRecord(
                c.type,
                c.actor,
                c.at,
                c.data,
                {p: kinds[p] for p in (c.actor, *c.cosigners)},
                manifest_id,
            )
            for c in s.custody
            if c.manifest == plan.key
        ]
        custody = replay(records)
        assert custody.state == "received"
    for a, b in zip(s.custody, s.custody[1:], strict=False):
        assert a.post_at <= b.post_at
        assert a.at <= a.post_at


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_verifies_at_the_gateway_and_seqs_never_repeat(kind: str) -> None:
    s = scenario(kind, 2)
    county = county_of(2)
    keys = {t.device_id: t for t in county.trucks}
    arrivals = [m.arrive_at for m in s.transmissions]
    assert arrivals == sorted(arrivals)
    numbered = [(m.device_id, m.seq) for m in s.transmissions if m.online is None]
    assert len(set(numbered)) == len(numbered)
    for i, m in enumerate(s.transmissions):
        if len(m.fixes) == 1 and i % 7:  # every batch, lock and status; a sample of the rest
            continue
        truck = keys[m.device_id]
        key = DeviceKey(m.device_id, public_key_bytes(truck.private_key()), "v")

        def lookup(_device: str, key: DeviceKey = key) -> DeviceKey:
            return key

        decoded = decode(
            m.topic, m.payload(truck.private_key()), lookup_device=lookup, now=m.arrive_at
        )
        assert isinstance(decoded, TelemetryMessage | LockMessage | StatusMessage), decoded
        for record in (*m.fixes, *((m.lock,) if m.lock else ())):
            assert record.t <= m.arrive_at  # nothing from the future
            assert record.t.microsecond % 1000 == 0


def test_a_backlog_arrives_late_in_order_after_the_will() -> None:
    s = scenario("offline_backlog", 0)
    ((_device, a, b),) = s.offline
    will = [m for m in s.transmissions if m.will]
    assert len(will) == 1
    assert a < will[0].arrive_at < b
    late = [m for m in s.transmissions if m.fixes and a <= m.fixes[0].t < b]
    assert late
    assert all(m.arrive_at >= b for m in late)
    assert sum(len(m.fixes) for m in late) > 60  # 15+ min at 10 s, in batches
    assert len(late) < 10
    times = [f.t for m in late for f in m.fixes]
    assert times == sorted(times)


def test_the_same_seed_gives_the_same_bytes() -> None:
    one, two = make_scenario("dump_stop", seed=5), make_scenario("dump_stop", seed=5)
    county = county_of(5)
    key = {t.device_id: t.private_key() for t in county.trucks}
    assert [m.payload(key[m.device_id]) for m in one.transmissions] == [
        m.payload(key[m.device_id]) for m in two.transmissions
    ]
    assert one.expected == two.expected
    assert make_scenario("dump_stop", seed=6).transmissions != one.transmissions


def test_a_corpus_mixes_kinds_keeps_trucks_apart_and_numbers_seqs_per_device() -> None:
    corpus = make_corpus(40, seed=3, incident_share=0.25)
    counts = corpus.counts()
    assert sum(counts.values()) == 40
    assert sum(counts.get(k, 0) for k in INCIDENT_KINDS) == 10
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for s in corpus.scenarios:
        for device in {m.device_id for m in s.transmissions}:
            fixes = s.fixes(device)
            spans.setdefault(device, []).append((fixes[0].t, fixes[-1].t))
    for device, runs in spans.items():
        runs.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(runs)), device
    seqs: dict[str, list[int]] = {}
    for m in corpus.transmissions():
        if m.online is None:
            seqs.setdefault(m.device_id, []).append(m.seq)
    assert all(v == list(range(1, len(v) + 1)) for v in seqs.values())
    steps = corpus.custody_steps()
    assert [c.post_at for _, c in steps] == sorted(c.post_at for _, c in steps)


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError):
        make_scenario("teleport")
    with pytest.raises(ValueError):
        make_corpus(0)


def _posted_in_order(s: Scenario, county: County) -> None:
    """Every manifest's steps, taken in the order they are posted, are accepted one by one,
    and a handover is always posted before the receipt that ends its manifest."""
    kinds = {p.key: p.kind for p in (*county.producers, *county.sites)}
    kinds |= {h.key: "hauler" for h in county.haulers}
    posted = sorted(s.custody, key=lambda c: c.post_at)
    for plan in s.manifests:
        steps = [c for c in posted if c.manifest == plan.key]
        manifest_id = str(uuid.uuid5(uuid.NAMESPACE_URL, plan.key))
        records = [
            EventRecord(
                c.type, c.actor, c.at, c.data, {p: kinds[p] for p in (c.actor, *c.cosigners)},
                manifest_id,
            )
            for c in steps
        ]
        for n in range(1, len(records) + 1):
            replay(records[:n])  # raises if a step is refused at the moment it is posted
        ends = [c.post_at for c in steps if c.type in ("received", "rejected")]
        for c in steps:
            assert c.at <= c.post_at
            if c.type == "handed_over":
                assert ends, s.key
                assert c.post_at < min(ends), (s.key, c.post_at, ends)


@pytest.mark.parametrize("kind", KINDS)
def test_custody_steps_of_every_scenario_are_postable_in_order(kind: str) -> None:
    county = county_of(0)
    for seed in range(20):
        _posted_in_order(make_scenario(kind, seed=seed, start=START, county=county), county)


def test_a_late_handover_is_always_posted_before_the_receipt() -> None:
    from devices.paperwork import Options

    county, late = county_of(0), Options(late_handover_share=1.0)
    for seed in range(100):
        s = make_scenario("multi_leg", seed=seed, start=START, county=county, options=late)
        steps = {c.type: c for c in s.custody}
        assert steps["handed_over"].post_at - steps["handed_over"].at >= timedelta(minutes=10)
        _posted_in_order(s, county)
