"""Saving and restoring a LegTracker anywhere in a stream changes nothing (Hypothesis)."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.tracking._routes import T0, Drive, geodesic_route, line, square
from waste.tracking import (
    AreaIndex,
    AreaKind,
    AreaRef,
    CircleArea,
    Fix,
    LegTracker,
    MatchSettings,
    PolygonArea,
    RouteIndex,
    TrackEvent,
)

ROUTE = RouteIndex(line(geodesic_route(-33.45, -70.66, 185.0, 30_000.0, 500.0)), 50.0)
DRIVE = Drive(ROUTE)
AREAS = AreaIndex(
    [
        PolygonArea(
            AreaRef(AreaKind.RESTRICTED_ZONE, "z"), square(*DRIVE.position(3_000.0, 250.0), 120.0)
        ),
        CircleArea(AreaRef(AreaKind.REST_AREA, "r"), *DRIVE.position(6_000.0, 60.0), 120.0),
    ]
)
SETTINGS = MatchSettings(update_interval_s=30.0)

# one piece of a trip: what the truck does, for how many fixes, how often it reports
PIECE = st.tuples(
    st.sampled_from(["drive", "off", "stop", "zone", "noisy", "jump", "teleport", "gap"]),
    st.integers(1, 12),
    st.sampled_from([1, 5, 10, 30]),
)


def _stream(pieces: list[tuple[str, int, int]]) -> list[Fix]:
    fixes: list[Fix] = []
    t, progress = 0.0, 0.0
    for kind, count, every in pieces:
        if kind == "gap":
            t += 700.0
        for i in range(count):
            t += every
            left, hdop = 0.0, 1.0
            if kind in ("drive", "off", "noisy", "gap"):
                progress = min(progress + 8.0 * every, ROUTE.length_m)
            if kind == "off":
                left = 60.0 + 40.0 * i
            elif kind == "stop":
                left = (-1) ** i * 15.0
            elif kind == "zone":
                progress, left = 3_000.0 + 10.0 * i, 250.0
            elif kind == "noisy":
                hdop = 8.0 if i % 2 else 2.0
            elif (kind == "jump" and i % 3 == 0) or kind == "teleport":
                left = 4_000.0
            lat, lon = DRIVE.position(progress, left)
            fixes.append(Fix(T0 + timedelta(seconds=t), lat, lon, hdop=hdop))
    return fixes


def _fresh() -> LegTracker:
    return LegTracker("leg-r", ROUTE, AREAS, SETTINGS)


def _run(tracker: LegTracker, fixes: list[Fix]) -> list[TrackEvent]:
    return [e for f in fixes for e in tracker.consume(f).events]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(PIECE, min_size=1, max_size=12), cut=st.floats(0.0, 1.0))
def test_a_restored_tracker_raises_the_same_events(
    pieces: list[tuple[str, int, int]], cut: float
) -> None:
    fixes = _stream(pieces)
    whole = _fresh()
    expected = _run(whole, fixes) + whole.close(T0 + timedelta(days=1))

    k = round(cut * len(fixes))
    first = _fresh()
    before = _run(first, fixes[:k])
    state = json.loads(json.dumps(first.to_state()))
    second = LegTracker.from_state(state, route=ROUTE, areas=AREAS)
    after = _run(second, fixes[k:]) + second.close(T0 + timedelta(days=1))
    assert before + after == expected

    batched = _fresh()
    assert batched.consume_many(fixes) + batched.close(T0 + timedelta(days=1)) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(PIECE, min_size=1, max_size=12))
def test_restoring_after_every_fix_changes_nothing(pieces: list[tuple[str, int, int]]) -> None:
    fixes = _stream(pieces)
    whole = _fresh()
    expected = _run(whole, fixes)
    tracker = _fresh()
    events: list[TrackEvent] = []
    for fix in fixes:
        events.extend(tracker.consume(fix).events)
        state = json.loads(json.dumps(tracker.to_state()))
        tracker = LegTracker.from_state(state, route=ROUTE, areas=AREAS)
    assert events == expected
    assert tracker.to_state() == whole.to_state()


def test_the_generated_streams_do_raise_events() -> None:
    pieces = [
        ("drive", 5, 10),
        ("off", 8, 10),
        ("drive", 5, 10),
        ("stop", 12, 30),
        ("zone", 4, 5),
        ("gap", 2, 10),
        ("jump", 4, 1),
        ("teleport", 4, 1),
    ]
    kinds = {type(e).__name__ for e in _run(_fresh(), _stream(pieces))}
    assert {
        "ExcursionStarted",
        "ExcursionEnded",
        "StopStarted",
        "ZoneEntered",
        "GapObserved",
    } <= kinds
