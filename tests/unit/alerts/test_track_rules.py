"""Track-derived alert kinds: each raised by its scenario and not by a near miss."""

from __future__ import annotations

import json

from tests.unit.alerts._trips import (
    AREAS,
    DRIVE,
    END,
    FACTS,
    ROUTE,
    ZONE_AT,
    Trip,
    at,
    engine,
    kinds,
    lock,
    of_kind,
)
from waste.alerts.engine import LegEngine
from waste.alerts.rules import ongoing_gap
from waste.alerts.thresholds import AlertThresholds

TH = AlertThresholds()


def test_an_honest_noisy_trip_raises_nothing() -> None:
    for seed in range(5):
        trip = Trip(seed=seed, jitter_m=12.0).drive(4_000).park(150).drive(7_000)
        trip.outlier(80.0).drive(12_000).park(300).drive(13_000).silence(300).finish()
        assert kinds(engine().feed(trip.fixes)) == set()


# --- route_deviation ---------------------------------------------------------------


def test_a_detour_raises_one_deviation_updated_until_it_ends() -> None:
    candidates = engine().feed(Trip().drive(6_000).detour(3_000, 300.0).finish())
    (dev,) = of_kind(candidates, "route_deviation")
    assert dev.severity == "medium"
    assert 290 < dev.evidence["max_distance_m"] < 320
    assert dev.ended_at is not None
    assert dev.evidence["returned"]
    assert len({c.key for c in candidates if c.kind == "route_deviation"}) == 1
    assert dev.evidence["path"]
    assert dev.at < dev.ended_at


def test_a_long_or_far_detour_is_high() -> None:
    far = of_kind(
        engine().feed(Trip().drive(6_000).detour(2_000, 1_500.0).finish()), "route_deviation"
    )
    assert [c.severity for c in far] == ["high"]
    long = Trip().drive(6_000).detour(500, 200.0).park(700, left_m=200.0).finish()
    assert "high" in {c.severity for c in of_kind(engine().feed(long), "route_deviation")}


def test_jitter_and_one_80_m_outlier_are_not_a_deviation() -> None:
    trip = Trip(jitter_m=15.0).drive(5_000).outlier(80.0).drive(6_000).outlier(90.0).finish()
    assert "route_deviation" not in kinds(engine().feed(trip))


def test_two_outliers_in_a_row_are_not_a_deviation_either() -> None:
    trip = Trip(every_s=5.0).drive(5_000).outlier(120.0).outlier(120.0).finish()
    assert "route_deviation" not in kinds(engine().feed(trip))


# --- unscheduled_stop --------------------------------------------------------------


def test_a_long_stop_off_site_is_unscheduled() -> None:
    candidates = engine().feed(Trip().drive(8_000).park(900).finish())
    (stop,) = of_kind(candidates, "unscheduled_stop")
    assert stop.severity == "medium"
    assert stop.ended_at is not None
    assert stop.evidence["duration_s"] >= 600


def test_stops_in_allowed_areas_or_short_ones_are_not() -> None:
    rest = Trip().drive(10_000).park(1_200, left_m=150.0).finish()
    short = Trip().drive(8_000).park(400).finish()
    at_site = Trip().drive(ROUTE.length_m).park(1_800).fixes
    at_pickup = Trip().park(1_800).finish()
    for fixes in (rest, short, at_site, at_pickup):
        assert "unscheduled_stop" not in kinds(engine().feed(fixes))


# --- seal_opened_off_site / seal_tamper -------------------------------------------------


def test_unsealed_off_site_is_critical() -> None:
    e = engine()
    trip = Trip().drive(8_000)
    found = e.feed(trip.fixes, [lock(trip.t, "unsealed", seq=7)])
    (opened,) = of_kind(found, "seal_opened_off_site")
    assert opened.severity == "critical"
    assert opened.evidence["located_by"] == "last_fix"
    assert opened.lat is not None


def test_unsealed_inside_the_destination_is_not() -> None:
    trip = Trip().drive(ROUTE.length_m).park(300)
    assert kinds(engine().feed(trip.fixes, [lock(trip.t - 60, "unsealed", where=END)])) == set()


def test_a_tamper_event_is_critical_and_sealing_is_not() -> None:
    trip = Trip().drive(3_000)
    found = engine().feed(trip.fixes, [lock(100, "tamper", seq=3)])
    assert [c.severity for c in of_kind(found, "seal_tamper")] == ["critical"]
    quiet = engine().feed(trip.fixes, [lock(10, "sealed", seq=1), lock(90, "low_battery", seq=2)])
    assert kinds(quiet) == set()


# --- signal_lost ---------------------------------------------------------------------


def test_a_gap_is_judged_when_fixes_resume() -> None:
    plain = of_kind(engine().feed(Trip().drive(5_000).silence(900).finish()), "signal_lost")
    assert [(c.severity, c.evidence["escalated"]) for c in plain] == [("high", False)]
    jump = Trip().drive(5_000).silence(700)
    jump.progress = 18_000  # 13 km in under 12 minutes: implausible for a 50 km/h bound
    bad = of_kind(engine(AlertThresholds(gap_max_speed_kmh=50)).feed(jump.finish()), "signal_lost")
    assert [c.severity for c in bad] == ["critical"]
    assert "implausible_gap_distance" in bad[0].evidence["reasons"]
    away = Trip().drive(5_000).silence(700).detour(2_000, 2_000.0).finish()
    (off,) = of_kind(engine().feed(away), "signal_lost")
    assert "resumed_outside_corridor" in off.evidence["reasons"]


def test_a_short_gap_is_not_signal_lost() -> None:
    assert "signal_lost" not in kinds(engine().feed(Trip().drive(5_000).silence(420).finish()))


def test_an_ongoing_gap_and_a_will() -> None:
    last = (at(600), 29.3, 120.1)
    quiet = ongoing_gap(FACTS, TH, last_fix=last, opened_at=at(0), now=at(1_000), offline_at=None)
    assert quiet is None
    lost = ongoing_gap(FACTS, TH, last_fix=last, opened_at=at(0), now=at(1_300), offline_at=None)
    assert lost is not None
    assert lost.severity == "high"
    assert lost.at == at(600)
    will = ongoing_gap(FACTS, TH, last_fix=last, opened_at=at(0), now=at(700), offline_at=at(620))
    assert will is not None
    assert will.evidence["cause"] == "device_offline"
    blip = ongoing_gap(FACTS, TH, last_fix=last, opened_at=at(0), now=at(640), offline_at=at(620))
    assert blip is None  # the will is given a grace period to come back


# --- restricted_zone_entry -----------------------------------------------------------------


def test_driving_through_a_restricted_zone_is_high() -> None:
    trip = Trip(every_s=5.0).drive(4_800).detour(400, 400.0).finish()
    (zone,) = of_kind(engine().feed(trip), "restricted_zone_entry")
    assert zone.severity == "high"
    assert zone.ended_at is not None
    assert zone.evidence["zone"]["id"] == "zone-1"


def test_one_fix_inside_a_zone_is_not_an_entry() -> None:
    trip = Trip().drive(5_000)
    lat, lon = ZONE_AT
    trip.fixes.append(type(trip.fixes[0])(at(trip.t), lat, lon, hdop=0.9))
    trip.t += 10
    assert "restricted_zone_entry" not in kinds(engine().feed(trip.finish()))


# --- suspected_illegal_dumping ------------------------------------------------------------


def test_a_stop_off_site_with_the_seal_opened_is_one_dumping_alert() -> None:
    trip = Trip().drive(8_000).park(300)
    opened = lock(trip.t - 120, "unsealed", seq=5)
    trip.park(400).finish()
    found = engine().feed(trip.fixes, [opened])
    (dumping,) = of_kind(found, "suspected_illegal_dumping")
    assert dumping.severity == "critical"
    assert dumping.evidence["reasons"] == ["seal_opened"]
    assert dumping.evidence["episode"]["kind"] == "stop"
    assert [s["id"] for s in dumping.evidence["seal_events"]] == ["DEV-1/5"]
    assert "seal_opened_off_site" in kinds(found)


def test_mass_lost_at_receipt_makes_an_earlier_stop_dumping_retroactively() -> None:
    e = engine()
    trip = Trip().drive(8_000).park(300).finish()
    assert "suspected_illegal_dumping" not in kinds(e.feed(trip))
    e.close(at(trip[-1].t.timestamp() - trip[0].t.timestamp() + 60))
    found = e.add_weighing({"seq": 3, "stage": "received", "loss_kg": 300.0, "loss_fraction": 0.25})
    (dumping,) = of_kind(found, "suspected_illegal_dumping")
    assert dumping.evidence["reasons"] == ["mass_lost"]
    assert dumping.at < at(1_000)  # when the stop happened, not when the loss was known


def test_no_dumping_without_both_an_episode_and_a_loss() -> None:
    stop_only = Trip().drive(8_000).park(400).finish()
    assert "suspected_illegal_dumping" not in kinds(engine().feed(stop_only))
    trip = Trip().drive(8_000).park(400).drive(ROUTE.length_m).park(600)
    at_site = engine().feed(trip.fixes, [lock(trip.t - 100, "unsealed", where=END)])
    assert "suspected_illegal_dumping" not in kinds(at_site)
    honest = engine()
    honest.feed(Trip().finish())
    assert honest.add_weighing({"seq": 3, "loss_fraction": 0.2}) == []


# --- state ---------------------------------------------------------------------------------


def test_a_restored_engine_continues_like_one_run() -> None:
    fixes = Trip().drive(6_000).detour(3_000, 300.0).drive(8_000).park(900).finish()
    one = engine().feed(fixes)
    first = engine()
    split = first.feed(fixes[:100])
    state, memory = first.to_state()
    state, memory = json.loads(json.dumps(state)), json.loads(json.dumps(memory))
    second = LegEngine(FACTS, TH, ROUTE, AREAS, tracker_state=state, memory=memory)
    split += second.feed(fixes[100:])
    assert [(c.key, c.severity, c.ended_at) for c in split] == [
        (c.key, c.severity, c.ended_at) for c in one
    ]


def test_the_leg_silent_from_pickup_counts_as_a_gap() -> None:
    late_start = Trip(t=900.0).drive(3_000).finish()
    (gap,) = of_kind(engine().feed(late_start), "signal_lost")
    assert gap.at == at(0)
    assert gap.key.endswith("/gap/2026-11-23T08:00:00Z")
    assert DRIVE.route is ROUTE
