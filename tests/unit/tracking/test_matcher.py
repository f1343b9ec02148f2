"""LegTracker scenarios: hysteresis, noise, stops, zones, gaps, closing, settings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

import pytest

from tests.unit.tracking._routes import T0, Drive, geodesic_route, line, square
from waste.errors import Invalid
from waste.tracking import (
    AreaIndex,
    AreaKind,
    AreaRef,
    CircleArea,
    ExcursionEnded,
    ExcursionStarted,
    ExcursionUpdated,
    Fix,
    FixQuality,
    GapObserved,
    LegTracker,
    MatchSettings,
    PolygonArea,
    RouteIndex,
    StopEnded,
    StopStarted,
    StopUpdated,
    TrackEvent,
    ZoneEntered,
    ZoneExited,
)

ROUTE = RouteIndex(line(geodesic_route(29.3061, 120.0752, 90.0, 20_000.0, 500.0)), 50.0)
DRIVE = Drive(ROUTE)
DEST = AreaRef(AreaKind.DESTINATION, "site-9", "Disposal site")
ZONE = AreaRef(AreaKind.RESTRICTED_ZONE, "zone-1", "Reservoir")
ZONE_LAT, ZONE_LON = DRIVE.position(5_000.0, 400.0)
END_LAT, END_LON = DRIVE.position(ROUTE.length_m)
AREAS = AreaIndex(
    [
        CircleArea(DEST, END_LAT, END_LON, 150.0),
        PolygonArea(ZONE, square(ZONE_LAT, ZONE_LON, 150.0)),
    ]
)


def tracker(**settings: float) -> LegTracker:
    return LegTracker("leg-1", ROUTE, AREAS, MatchSettings(**settings))  # type: ignore[arg-type]


def feed(t: LegTracker, fixes: Iterable[Fix]) -> list[TrackEvent]:
    return [e for f in fixes for e in t.consume(f).events]


def of(events: list[TrackEvent], *kinds: type) -> list[TrackEvent]:
    return [e for e in events if isinstance(e, kinds)]


def driving(start_s: int, end_s: int, every_s: int = 10, left_m: float = 0.0) -> list[Fix]:
    """On (or beside) the route at 10 m/s."""
    return [DRIVE.fix(s, 100.0 + 10.0 * s, left_m) for s in range(start_s, end_s, every_s)]


EXCURSION_EVENTS = (ExcursionStarted, ExcursionUpdated, ExcursionEnded)


def test_a_single_80_m_outlier_raises_nothing() -> None:
    t = tracker()
    fixes = driving(0, 200)
    fixes[10] = DRIVE.fix(100, 1_100.0, 80.0)
    steps = [t.consume(f) for f in fixes]
    assert steps[10].quality is FixQuality.GOOD
    assert steps[10].match is not None
    assert not steps[10].match.inside_corridor
    assert [e for s in steps for e in s.events] == []


def test_a_two_fix_excursion_raises_nothing_even_when_long() -> None:
    fixes = driving(0, 600, every_s=60)
    fixes[3] = DRIVE.fix(180, 1_900.0, 120.0)
    fixes[4] = DRIVE.fix(240, 2_500.0, 120.0)  # two fixes spanning 60 s
    assert feed(tracker(), fixes) == []


def test_three_fixes_within_45_s_are_not_an_excursion() -> None:
    fixes = driving(0, 200)
    for i in (5, 6, 7):  # 20 s span
        fixes[i] = DRIVE.fix(10 * i, 100.0 + 100 * i, 120.0)
    assert feed(tracker(), fixes) == []


def test_a_three_fix_60_s_excursion_is_one_excursion_that_ends() -> None:
    fixes = driving(0, 60, every_s=30)
    fixes += driving(60, 150, every_s=30, left_m=120.0)
    fixes += driving(150, 300, every_s=30)
    events = feed(tracker(), fixes)
    started, ended = events
    assert isinstance(started, ExcursionStarted)
    assert isinstance(ended, ExcursionEnded)
    assert started.at == T0 + timedelta(seconds=120)
    assert ended.excursion.id == started.excursion.id == "leg-1/excursion/1"
    exc = ended.excursion
    assert exc.started_at == T0 + timedelta(seconds=60)
    assert exc.ended_at == T0 + timedelta(seconds=150)
    assert exc.duration == timedelta(seconds=90)
    assert len(exc.path) == 3
    assert exc.max_distance_m == pytest.approx(120.0, rel=0.005)
    assert ended.returned


def test_a_long_excursion_starts_updates_and_ends_as_one() -> None:
    bump = [80, 150, 250, 400, 600, 600, 600, 600, 600, 600, 400, 200, 100]
    fixes = driving(0, 100)
    fixes += [DRIVE.fix(100 + 10 * i, 1_100 + 100 * i, d) for i, d in enumerate(bump)]
    fixes += driving(230, 400)
    events = of(feed(tracker(), fixes), *EXCURSION_EVENTS)
    assert isinstance(events[0], ExcursionStarted)
    assert isinstance(events[-1], ExcursionEnded)
    updates = events[1:-1]
    assert updates
    assert all(isinstance(e, ExcursionUpdated) for e in updates)
    excursions = [e.excursion for e in events if isinstance(e, EXCURSION_EVENTS)]
    assert len({x.id for x in excursions}) == 1
    maxima = [x.max_distance_m for x in excursions]
    assert maxima == sorted(maxima)
    assert maxima[-1] == pytest.approx(600.0, rel=0.005)
    assert excursions[-1].ended_at == T0 + timedelta(seconds=230)


def test_return_needs_return_m_not_just_the_corridor() -> None:
    fixes = driving(0, 50) + driving(50, 120, left_m=200.0)
    fixes += driving(120, 200, left_m=45.0)  # inside the 50 m corridor, beyond 40 m
    t = tracker()
    events = feed(t, fixes)
    assert [type(e) for e in of(events, ExcursionStarted, ExcursionEnded)] == [ExcursionStarted]
    assert t.excursion is not None
    events = feed(t, driving(200, 240, left_m=10.0))
    assert [type(e) for e in events] == [ExcursionEnded]


def test_return_distance_is_capped_at_the_corridor() -> None:
    narrow = RouteIndex(line(geodesic_route(29.3061, 120.0752, 90.0, 20_000.0, 500.0)), 30.0)
    t = LegTracker("leg-2", narrow)  # return_m 40 > corridor 30: 30 counts
    drive = Drive(narrow)
    fixes = [drive.fix(s, 100.0 + 10 * s, 150.0 if s < 100 else 35.0) for s in range(0, 200, 10)]
    events = of(feed(t, fixes), ExcursionStarted, ExcursionEnded)
    assert [type(e) for e in events] == [ExcursionStarted]
    assert t.excursion is not None


def test_suspect_hdop_fixes_are_not_evidence() -> None:
    t = tracker()
    fixes = driving(0, 50) + [DRIVE.fix(s, 100 + 10 * s, 150.0, hdop=9.0) for s in (50, 80, 110)]
    steps = [t.consume(f) for f in fixes + driving(140, 200)]
    assert [s.quality for s in steps[5:8]] == [FixQuality.SUSPECT_HDOP] * 3
    assert [e for s in steps for e in s.events] == []


def test_a_suspect_fix_does_not_complete_a_run_of_good_ones() -> None:
    fixes = driving(0, 50)
    fixes += [DRIVE.fix(50, 600, 150.0), DRIVE.fix(80, 900, 150.0)]
    fixes += [DRIVE.fix(110, 1_200, 150.0, hdop=12.0)]
    fixes += driving(140, 200)
    assert feed(tracker(), fixes) == []


def test_an_impossible_jump_is_suspect_and_not_evidence() -> None:
    t = tracker()
    fixes = driving(0, 100)
    jumps = [DRIVE.fix(100 + s, 1_100 + 10 * s, 3_000.0) for s in (1, 2)]
    steps = [t.consume(f) for f in fixes + jumps + driving(103, 200)]
    assert [s.quality for s in steps[10:12]] == [FixQuality.SUSPECT_SPEED] * 2
    assert steps[12].quality is FixQuality.GOOD
    assert [e for s in steps for e in s.events] == []


def test_consistent_fast_fixes_mean_the_anchor_was_the_outlier() -> None:
    t = tracker()
    bad_first = DRIVE.fix(0, 100.0, 5_000.0)
    steps = [t.consume(f) for f in [bad_first, *driving(5, 60, every_s=5)]]
    qualities = [s.quality for s in steps]
    assert qualities[:4] == [
        FixQuality.GOOD,
        FixQuality.SUSPECT_SPEED,
        FixQuality.SUSPECT_SPEED,
        FixQuality.GOOD,
    ]
    assert set(qualities[4:]) == {FixQuality.GOOD}


def test_a_stop_outside_any_area() -> None:
    t = tracker()
    fixes = driving(0, 300)  # reaches progress 3,090 m
    jitter = [(0, 0), (12, 8), (-9, 15), (5, -12), (-14, -6)]
    fixes += [
        DRIVE.fix(300 + 15 * i, 3_300.0 + jitter[i % 5][0], jitter[i % 5][1]) for i in range(20)
    ]  # 285 s at one place, 300 m past the last moving fix
    fixes += [DRIVE.fix(600 + s, 3_300.0 + 20 * s) for s in range(10, 200, 10)]
    events = of(feed(t, fixes), StopStarted, StopUpdated, StopEnded)
    assert isinstance(events[0], StopStarted)
    assert isinstance(events[-1], StopEnded)
    stop = events[-1].stop
    assert len({e.stop.id for e in events if isinstance(e, StopStarted | StopUpdated)}) == 1
    assert events[0].stop.id == stop.id
    assert stop.areas == ()
    assert stop.started_at == T0 + timedelta(seconds=300)
    assert stop.ended_at == T0 + timedelta(seconds=300 + 15 * 19)
    assert stop.duration == timedelta(seconds=285)
    assert events[0].at == T0 + timedelta(seconds=480)  # once 180 s were seen


def test_a_stop_inside_the_destination() -> None:
    t = tracker()
    end = ROUTE.length_m
    fixes = [DRIVE.fix(s, end - 2_000 + 10 * s) for s in range(0, 200, 10)]
    fixes += [DRIVE.fix(200 + 20 * i, end - 20.0, 10.0 * (i % 3)) for i in range(15)]
    events = of(feed(t, fixes), StopStarted, StopEnded)
    assert len(events) == 1
    assert isinstance(events[0], StopStarted)
    assert events[0].stop.areas == (DEST,)
    assert events[0].stop.kinds == {AreaKind.DESTINATION}
    closing = t.close(T0 + timedelta(hours=1))
    assert len(closing) == 1
    assert isinstance(closing[0], StopEnded)
    assert closing[0].stop.ended_at == T0 + timedelta(seconds=200 + 20 * 14)
    assert t.stop is None


def test_driving_slowly_is_not_a_stop() -> None:
    fixes = [DRIVE.fix(s, 100.0 + 2.0 * s) for s in range(0, 600, 5)]  # 7.2 km/h
    assert of(feed(tracker(), fixes), StopStarted) == []


def test_zone_entry_needs_two_fixes_and_a_near_miss_raises_nothing() -> None:
    # the zone's southern edge lies 250 m left of the route
    near_miss = [DRIVE.fix(s, 4_900.0 + 2 * s, 245.0) for s in range(0, 100, 10)]
    one_inside = [DRIVE.fix(100, 5100.0, 300.0), DRIVE.fix(110, 5120.0, 240.0)]
    t = tracker()
    assert of(feed(t, near_miss + one_inside), ZoneEntered, ZoneExited) == []
    inside = [DRIVE.fix(120 + 10 * i, 5_000.0 + 5 * i, 300.0) for i in range(6)]
    events = of(feed(t, inside), ZoneEntered, ZoneExited)
    assert len(events) == 1
    assert isinstance(events[0], ZoneEntered)
    assert events[0].zone == ZONE
    assert events[0].entered_at == T0 + timedelta(seconds=120)
    assert events[0].at == T0 + timedelta(seconds=130)
    out = [DRIVE.fix(200 + 10 * i, 5_100.0, 20.0) for i in range(3)]
    events = of(feed(t, out), ZoneEntered, ZoneExited)
    assert len(events) == 1
    assert isinstance(events[0], ZoneExited)
    assert events[0].exited_at == T0 + timedelta(seconds=200)


def test_a_gap_is_observed_with_distance_and_speed() -> None:
    t = tracker()
    fixes = [*driving(0, 30), DRIVE.fix(920, 2120.0)]
    events = feed(t, fixes)
    (gap,) = events
    assert isinstance(gap, GapObserved)
    assert gap.from_t == T0 + timedelta(seconds=20)
    assert gap.to_t == gap.at == T0 + timedelta(seconds=920)
    assert gap.distance_m == pytest.approx(1_820.0, rel=0.005)
    assert gap.implied_speed_kmh == pytest.approx(1_820.0 / 900 * 3.6, rel=0.005)
    assert gap.resumed_inside_corridor
    assert feed(tracker(), [*driving(0, 30), DRIVE.fix(620, 2000.0)]) == []  # 600 s exactly


def test_fixes_out_of_order_are_stale_and_ignored() -> None:
    t = tracker()
    t.consume(DRIVE.fix(100, 1_000.0))
    step = t.consume(DRIVE.fix(100, 5_000.0, 300.0))
    assert step.quality is FixQuality.STALE
    assert step.events == ()
    assert t.consume(DRIVE.fix(50, 500.0)).quality is FixQuality.STALE
    assert t.consume(DRIVE.fix(110, 1_100.0)).quality is FixQuality.GOOD


def test_close_ends_an_excursion_that_never_came_back() -> None:
    t = tracker()
    feed(t, driving(0, 50) + driving(50, 150, left_m=300.0))
    assert t.excursion is not None
    (ended,) = t.close(T0 + timedelta(seconds=200))
    assert isinstance(ended, ExcursionEnded)
    assert not ended.returned
    assert ended.excursion.ended_at is None
    assert t.excursion is None


def test_state_survives_json_mid_excursion_and_stop() -> None:
    t = tracker()
    feed(t, driving(0, 50) + driving(50, 150, left_m=300.0))
    state = json.loads(json.dumps(t.to_state()))
    back = LegTracker.from_state(state, route=ROUTE, areas=AREAS)
    assert back.to_state() == state
    assert back.excursion == t.excursion
    with pytest.raises(Invalid):
        LegTracker.from_state(state | {"route_length_m": 1.0}, route=ROUTE)


def test_excursion_paths_are_thinned_to_the_limit() -> None:
    t = tracker(max_path_points=20)
    feed(t, driving(0, 30) + [DRIVE.fix(s, 400.0 + s, 300.0) for s in range(30, 500, 5)])
    assert t.excursion is not None
    assert 10 <= len(t.excursion.path) <= 20
    assert t.excursion.path[-1].t == T0 + timedelta(seconds=495)


def test_settings_reject_nonsense() -> None:
    with pytest.raises(Invalid) as info:
        MatchSettings(stop_radius_m=0)
    assert info.value.field == "stop_radius_m"
    assert MatchSettings().max_hdop == 6.0
