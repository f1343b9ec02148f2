"""Labelled scenarios with ground truth, and corpora of many of them.

Public API (what tests, ``bench/`` and the demo call)::

    from devices.scenarios import KINDS, make_corpus, make_scenario
    corpus = make_corpus(1000, seed=7, start=datetime(2026, 11, 23, 6, tzinfo=UTC))
    corpus.county                 # register it: devices.registrar.register_county
    corpus.custody_steps()        # [(scenario, CustodyStep)] in posting order
    corpus.transmissions()        # [Transmission] in arrival order; .topic, .payload(key)
    corpus.expected()             # [(scenario, ExpectedAlert)]: the labels
    one = make_scenario("dump_stop", seed=3, start=...)

Kinds and what they must raise (``ExpectedAlert.required``); windows are on fix time:

    honest                 nothing (stops only at pickup, destination, declared rest areas)
    multi_leg              nothing (a handover at a declared transfer point; when the
                           handover is posted late, provisional unmanifested_movement /
                           seal_opened_off_site are tolerated)
    offline_backlog        nothing (device offline 15-40 min, its backlog arrives late;
                           a provisional signal_lost is tolerated)
    detour                 route_deviation
    dump_stop              seal_opened_off_site, unscheduled_stop, suspected_illegal_dumping
                           (+ route_deviation when off road, + quantity_discrepancy if mass lost)
    partial_dump           unscheduled_stop, quantity_discrepancy, suspected_illegal_dumping
    short_delivery         quantity_discrepancy (no stop: not suspected dumping)
    signal_jamming         signal_lost (GPS jammed 15-40 min, truck carries on)
    restricted_zone        restricted_zone_entry, route_deviation
    unmanifested_movement  unmanifested_movement (sealed truck moves with no manifest)
    seal_tamper            seal_tamper (a tamper event, or another seal at the gate)
    overdue_delivery       overdue_delivery (breakdown at a rest area past deliver_by)
    unlicensed_receipt     unlicensed_receipt (the site books a code its permit lacks)

Thresholds assumed (``waste.tracking.model.MatchSettings`` and the issue's table): corridor
50 m, off-route 3 fixes over 45 s, stop window 3 min within 100 m, unscheduled stop after
at most 15 min (planted stops last 16-30 min), signal lost after 10 min (honest gaps last
at most 2.5 min, jams 15-40), mass tolerance 10% (honest losses under 2%).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from devices.paperwork import Options
from devices.scenario_extra import multi_leg, unmanifested
from devices.scenario_model import Corpus, Scenario, Transmission
from devices.scenario_trip import Trip
from devices.world import County, make_county

__all__ = ["HONEST_KINDS", "INCIDENT_KINDS", "KINDS", "Options", "make_corpus", "make_scenario"]

HONEST_KINDS = ("honest", "multi_leg", "offline_backlog")
INCIDENT_KINDS = (
    "detour",
    "dump_stop",
    "partial_dump",
    "short_delivery",
    "signal_jamming",
    "restricted_zone",
    "unmanifested_movement",
    "seal_tamper",
    "overdue_delivery",
    "unlicensed_receipt",
)
KINDS = HONEST_KINDS + INCIDENT_KINDS

Builder = Callable[[Trip], None]
_T = TypeVar("_T", Scenario, Corpus)


def _honest(trip: Trip) -> None:
    if trip.length > 12_000 and trip.rng.random() < 0.4:
        trip.add_rest(trip.rng.uniform(0.4, 0.7), trip.rng.uniform(10, 25))


def _offline(trip: Trip) -> None:
    _honest(trip)
    trip.offline_for(trip.rng.uniform(15, 40))


def _detour(trip: Trip) -> None:
    trip.add_detour()


def _dump_stop(trip: Trip) -> None:
    trip.add_dump(
        seal_opened=True, off_road=trip.rng.random() < 0.5, mass_lost=trip.rng.random() < 0.5
    )


def _partial_dump(trip: Trip) -> None:
    trip.add_dump(seal_opened=False, off_road=False, mass_lost=True)


def _short_delivery(trip: Trip) -> None:
    trip.lose_mass()


def _jamming(trip: Trip) -> None:
    trip.jam(trip.rng.uniform(15, 40))


def _zone(trip: Trip) -> None:
    trip.enter_zone()


def _tamper(trip: Trip) -> None:
    trip.tamper(at_gate=trip.rng.random() < 0.5)


def _overdue(trip: Trip) -> None:
    trip.break_down()


def _unlicensed(trip: Trip) -> None:
    trip.book_unlicensed()


_BUILDERS: dict[str, Builder] = {
    "honest": _honest,
    "offline_backlog": _offline,
    "detour": _detour,
    "dump_stop": _dump_stop,
    "partial_dump": _partial_dump,
    "short_delivery": _short_delivery,
    "signal_jamming": _jamming,
    "restricted_zone": _zone,
    "seal_tamper": _tamper,
    "overdue_delivery": _overdue,
    "unlicensed_receipt": _unlicensed,
}


def _build(
    kind: str,
    county: County,
    rng: random.Random,
    key: str,
    start: datetime,
    trucks: Sequence[str],
    opts: Options,
) -> Scenario:
    if kind not in KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "multi_leg":
        return multi_leg(county, rng, key, start, trucks[0], trucks[1], opts)
    if kind == "unmanifested_movement":
        return unmanifested(county, rng, key, start, trucks[0], opts)
    zone_route = kind == "restricted_zone"
    trip = Trip.plan(county, rng, key, kind, start, trucks[0], opts, near_zone=zone_route)
    _BUILDERS[kind](trip)
    return trip.build()


def _assign_seqs(
    transmissions: Sequence[Transmission], first: dict[str, int]
) -> dict[int, Transmission]:
    """Seqs per device in arrival order (statuses carry none), continuing from ``first``;
    keyed by the ``id`` of the transmission given."""
    out: dict[int, Transmission] = {}
    for m in sorted(transmissions, key=lambda m: (m.arrive_at, m.first_t)):
        if m.online is None:
            seq = first.get(m.device_id, 1)
            first[m.device_id] = seq + 1
            out[id(m)] = replace(m, seq=seq)
        else:
            out[id(m)] = m
    return out


def _renumbered(scenarios: Sequence[Scenario]) -> tuple[Scenario, ...]:
    seqs = _assign_seqs([m for s in scenarios for m in s.transmissions], {})
    return tuple(
        replace(
            s,
            transmissions=tuple(
                sorted((seqs[id(m)] for m in s.transmissions), key=lambda m: m.arrive_at)
            ),
        )
        for s in scenarios
    )


def _trucks_for(kind: str, county: County, rng: random.Random) -> list[str]:
    if kind != "multi_leg":
        return [rng.choice(county.trucks).key]
    a = rng.choice(county.trucks)
    b = rng.choice([t for t in county.trucks if t.hauler != a.hauler])
    return [a.key, b.key]


def _ending(build: Callable[[datetime], _T], begin: datetime, end: datetime | None) -> _T:
    """``build(begin)``, or, given ``end``, built again starting early enough to be over
    by ``end`` (everything is relative to a whole-second start, so the same seed gives the
    same scenarios, shifted)."""
    begin = begin.replace(microsecond=0)
    first = build(begin)
    if end is None:
        return first
    return build((begin + (end - first.end)).replace(microsecond=0))


def make_scenario(
    kind: str,
    *,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    county: County | None = None,
    options: Options | None = None,
) -> Scenario:
    """One scenario of ``kind`` (in its own county unless one is given), seqs from 1.

    ``start``: when the truck starts loading (default 2026-11-23 08:00Z); or ``end``: the
    latest simulated time the scenario may reach (e.g. now, to replay it compressed)."""
    county = county or make_county(random.Random(seed))
    opts = options or Options()

    def build(begin: datetime) -> Scenario:
        rng = random.Random(f"{kind}/{seed}")
        trucks = _trucks_for(kind, county, rng)
        return _renumbered([_build(kind, county, rng, f"{kind}-{seed}", begin, trucks, opts)])[0]

    return _ending(build, start or datetime(2026, 11, 23, 8, tzinfo=UTC), end)


def make_corpus(
    trips: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    incident_share: float = 0.2,
    county: County | None = None,
    kinds: Sequence[str] | None = None,
    options: Options | None = None,
) -> Corpus:
    """``trips`` scenarios in one county: honest ones and, ``incident_share`` of the time,
    an incident (cycling through ``INCIDENT_KINDS``, or ``kinds`` if given). Each truck
    runs one scenario at a time, 20-90 minutes apart. ``start`` / ``end`` as for
    ``make_scenario`` (default start 2026-11-23 06:00Z)."""
    if trips < 1 or not 0 <= incident_share <= 1:
        raise ValueError("trips >= 1 and 0 <= incident_share <= 1")
    place = county or make_county(random.Random(seed), trucks_per_hauler=max(2, -(-trips // 24)))
    opts = options or Options()

    def build(begin: datetime) -> Corpus:
        rng = random.Random(seed)
        cycle = list(kinds or INCIDENT_KINDS)
        incidents = round(trips * incident_share)
        plan = [cycle[i % len(cycle)] for i in range(incidents)]
        plan += [
            rng.choices(HONEST_KINDS, weights=(70, 15, 15))[0] for _ in range(trips - incidents)
        ]
        rng.shuffle(plan)
        free = {t.key: begin + timedelta(minutes=rng.uniform(0, 60)) for t in place.trucks}
        scenarios: list[Scenario] = []
        for i, kind in enumerate(plan):
            trucks = _trucks_for(kind, place, rng)
            if kind != "multi_leg":  # the truck that is free first
                trucks = [min(free, key=lambda k: free[k])]
            at = max(free[k] for k in trucks).replace(microsecond=0)
            scenario = _build(kind, place, rng, f"trip-{i:05d}", at, trucks, opts)
            scenarios.append(scenario)
            for k in trucks:
                free[k] = scenario.end + timedelta(minutes=rng.uniform(20, 90))
        return Corpus(place, _renumbered(scenarios), seed)

    return _ending(build, start or datetime(2026, 11, 23, 6, tzinfo=UTC), end)
