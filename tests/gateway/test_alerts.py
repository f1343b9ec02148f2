"""Alert detection through the real ingest: stored, published, replayed late, restart-safe."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine

from devices.signing import encode_telemetry
from gateway.topics import telemetry_topic
from tests.support.alert_trips import (
    LENGTH_M,
    Path,
    alerts,
    detector,
    leg_tracker,
    picked_up,
    send_fixes,
    send_lock,
)
from tests.support.telemetry import Rig, Vehicle, make_rig
from tests.support.world import World
from waste.alerts.payload import alert_payload
from waste.alerts.sweep import sweep
from waste.alerts.thresholds import ThresholdBook
from waste.alerts.worker import AlertDetector
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.telemetry.domain import TrackUpdate
from waste.webhooks.models import OutboxMessage

PROTOCOL_MEMBERS = {
    "id", "kind", "severity", "state", "manifest_id", "device_id", "vehicle",
    "at", "raised_at", "lat", "lon", "evidence",
}  # fmt: skip


def _start(now: datetime) -> datetime:
    return now - timedelta(minutes=48)


def _deviating(now: datetime) -> Path:
    """Along the route, 400 m to its left from 4 km to 7 km, then back on it to the end."""
    return Path(_start(now)).drive(4_000).drive(7_000, left_m=400.0).drive(LENGTH_M)


def test_an_honest_trip_raises_nothing(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    send_fixes(rig, truck, Path(_start(now)).drive(LENGTH_M).park(300).fixes)
    assert alerts(rig.engine, manifest_id=mid) == []
    assert rig.transport.published == []


def test_a_deviation_is_stored_published_and_sent_to_webhooks(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    found = detector(rig)
    trip = _deviating(now)
    send_fixes(rig, truck, trip.fixes)
    (alert,) = alerts(rig.engine, manifest_id=mid)
    assert (alert.kind, alert.severity, alert.leg_index) == ("route_deviation", "medium", 0)
    assert alert.vehicle == truck.plate
    assert alert.device_id == truck.device_id
    assert alert.region_code
    assert alert.hauler_id == world.haulers[0].client.party_id
    assert alert.ended_at is not None
    assert alert.at < alert.raised_at
    assert not alert.publish_pending
    assert found.errors == 0
    topics = {m.topic for m in rig.transport.published}
    assert topics == {"waste/v1/alerts/route_deviation"}
    last = json.loads(rig.transport.published[-1].payload)
    assert set(last) == PROTOCOL_MEMBERS
    assert last == alert_payload(alert)
    assert all(m.qos == 1 for m in rig.transport.published)
    raised = rig.rows(OutboxMessage, OutboxMessage.id, topic="alert.raised")
    assert {m.party_id for m in raised} >= {world.producer.party_id, alert.hauler_id}
    assert all(m.payload["alert"]["id"] == alert.id for m in raised)


def test_a_late_backlog_raises_retroactively(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(_start(now)).drive(3_000).park(900, left_m=200.0).drive(LENGTH_M)
    half = len(Path(_start(now)).drive(3_000).park(900).fixes) + 3  # back on the road
    send_fixes(rig, truck, trip.fixes[half:])  # live data first: the vehicle was silent
    (gap,) = alerts(rig.engine, manifest_id=mid)
    assert gap.kind == "signal_lost"
    assert not gap.evidence.get("retracted")
    send_fixes(rig, truck, trip.fixes[:half])  # then the device's store-and-forward backlog
    found = {a.kind: a for a in alerts(rig.engine, manifest_id=mid)}
    assert set(found) == {"signal_lost", "unscheduled_stop", "route_deviation"}
    assert found["signal_lost"].evidence["retracted"]  # the backlog filled the gap
    stop = found["unscheduled_stop"]
    assert stop.at < trip.fixes[half].t < stop.raised_at
    assert not stop.evidence.get("retracted")
    tracker = leg_tracker(rig.engine, mid)
    assert tracker.rebuilds == 1
    assert tracker.fixes == len(trip.fixes)


def test_replaying_the_same_leg_twice_changes_nothing(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(_start(now)).drive(3_000).park(900, left_m=200.0).drive(LENGTH_M)
    send_fixes(rig, truck, trip.fixes[10:])
    send_fixes(rig, truck, trip.fixes[:5])
    before = {a.id: (a.detect_rev, a.severity) for a in alerts(rig.engine, manifest_id=mid)}
    send_fixes(rig, truck, trip.fixes[5:10])
    after = {a.id: (a.detect_rev, a.severity) for a in alerts(rig.engine, manifest_id=mid)}
    assert set(after) == set(before)


def test_a_restarted_gateway_continues_from_the_stored_tracker(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    first = detector(rig)
    trip = _deviating(now)
    cut = next(i for i, f in enumerate(trip.fixes) if f.t > trip.fixes[0].t + timedelta(minutes=9))
    send_fixes(rig, truck, trip.fixes[:cut])
    (ongoing,) = alerts(rig.engine, manifest_id=mid)
    assert ongoing.ended_at is None
    rig.ingestor.consumers.remove(first)
    second = AlertDetector(make_session_factory(rig.engine), transport=rig.transport)
    rig.ingestor.consumers.append(second)  # a new process: empty caches, state from the DB
    send_fixes(rig, truck, trip.fixes[cut:])
    (done,) = alerts(rig.engine, manifest_id=mid)
    assert done.id == ongoing.id
    assert done.ended_at is not None
    tracker = leg_tracker(rig.engine, mid)
    assert tracker.rebuilds == 0


def test_a_seal_opened_off_site_during_a_stop_is_dumping(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(_start(now)).drive(5_000).park(240, left_m=150.0)
    send_fixes(rig, truck, trip.fixes)
    send_lock(rig, truck, trip.t, "unsealed", trip.position(150.0))
    trip.park(300, left_m=150.0).drive(LENGTH_M)
    send_fixes(rig, truck, trip.fixes[-60:])
    found = {a.kind: a for a in alerts(rig.engine, manifest_id=mid)}
    assert {"seal_opened_off_site", "suspected_illegal_dumping"} <= set(found)
    dumping = found["suspected_illegal_dumping"]
    assert dumping.severity == "critical"
    assert dumping.evidence["seal_events"]
    assert dumping.evidence["fixes"]
    assert dumping.lat is not None
    kinds = [json.loads(m.payload)["kind"] for m in rig.transport.published]
    assert "suspected_illegal_dumping" in kinds


def test_unsealing_at_the_destination_is_quiet(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(_start(now)).drive(LENGTH_M).park(120)
    send_fixes(rig, truck, trip.fixes)
    send_lock(rig, truck, trip.t, "unsealed", trip.position())
    assert alerts(rig.engine, manifest_id=mid) == []


def test_lock_events_bound_to_no_leg_arm_the_movement_watch(
    rig: Rig, world: World, truck: Vehicle, engine: Engine
) -> None:
    now = utcnow()
    detector(rig)
    start = now - timedelta(minutes=30)
    send_lock(rig, truck, start, "sealed", None)
    trip = Path(start + timedelta(seconds=5)).drive(4_000)
    send_fixes(rig, truck, trip.fixes)
    (moved,) = alerts(engine, kind="unmanifested_movement")
    assert moved.vehicle == truck.plate
    assert moved.manifest_id is None
    assert moved.severity == "high"
    assert moved.evidence["max_distance_m"] > 1_000
    idle = Path(now - timedelta(minutes=5)).park(200)  # the other truck: never sealed
    assert idle.fixes
    assert len(alerts(engine, kind="unmanifested_movement")) == 1


def test_two_gateways_sharing_a_leg_raise_one_alert(
    rig: Rig, world: World, truck: Vehicle, engine: Engine
) -> None:
    now = utcnow()
    mid = picked_up(world, now)
    other = make_rig(engine)
    detector(rig)
    detector(other)
    trip = _deviating(now)
    messages = [trip.fixes[i : i + 5] for i in range(0, len(trip.fixes), 5)]
    for n, fixes in enumerate(messages):  # the broker spreads one device over both
        payload = encode_telemetry(truck.device_id, next(truck.seqs), fixes, truck.key)
        (rig if n % 2 else other).send((telemetry_topic(truck.device_id), payload))
    threads = [threading.Thread(target=r.pump, kwargs={"steps": 500}) for r in (rig, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    (alert,) = alerts(engine, manifest_id=mid)
    assert alert.kind == "route_deviation"
    assert alert.ended_at is not None
    tracker = leg_tracker(engine, mid)
    assert tracker.fixes == len(trip.fixes)


def test_fixes_stored_while_detection_was_cut_off_are_replayed(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    """A gateway killed between the ingest commit and detection leaves fixes stored and
    acknowledged but never fed; the next update of the leg must replay them."""
    now = utcnow()
    mid = picked_up(world, now)
    found = detector(rig)
    trip = _deviating(now)
    cut = len(Path(_start(now)).drive(4_000).fixes) - 2  # just before the truck leaves the road
    back = cut + 40
    send_fixes(rig, truck, trip.fixes[:cut])
    rig.ingestor.consumers.remove(found)  # the process dies after committing this batch
    send_fixes(rig, truck, trip.fixes[cut:back])
    assert alerts(rig.engine, manifest_id=mid) == []
    restarted = detector(rig)
    send_fixes(rig, truck, trip.fixes[back:])
    (alert,) = alerts(rig.engine, manifest_id=mid)
    assert alert.kind == "route_deviation"
    assert trip.fixes[cut].t <= alert.at < trip.fixes[back].t
    assert restarted.errors == 0
    tracker = leg_tracker(rig.engine, mid)
    assert tracker.fixes == len(trip.fixes)


def test_a_seal_event_stored_while_detection_was_cut_off_is_replayed(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    """A batch of only e-lock events, stored and acknowledged but never fed (the process
    died between the ingest commit and detection), is fed by the leg's next update."""
    now = utcnow()
    mid = picked_up(world, now)
    found = detector(rig)
    trip = Path(_start(now)).drive(5_000).park(240, left_m=150.0)
    send_fixes(rig, truck, trip.fixes)
    rig.ingestor.consumers.remove(found)  # the process dies after committing the seal event
    send_lock(rig, truck, trip.t, "unsealed", trip.position(150.0))
    restarted = detector(rig)
    trip.park(300, left_m=150.0).drive(LENGTH_M)
    send_fixes(rig, truck, trip.fixes[-60:])
    kinds = {a.kind for a in alerts(rig.engine, manifest_id=mid)}
    assert {"seal_opened_off_site", "suspected_illegal_dumping"} <= kinds
    assert restarted.errors == 0
    tracker = leg_tracker(rig.engine, mid)
    assert tracker.locks == 1


def test_a_seal_event_fed_once_is_not_fed_again(rig: Rig, world: World, truck: Vehicle) -> None:
    """The lock count matches after ordinary incremental updates: no needless replays."""
    now = utcnow()
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(_start(now)).drive(3_000)
    send_fixes(rig, truck, trip.fixes)
    send_lock(rig, truck, trip.t, "sealed", trip.position())
    sent = len(trip.fixes)
    trip.drive(6_000)
    send_fixes(rig, truck, trip.fixes[sent:])
    tracker = leg_tracker(rig.engine, mid)
    assert (tracker.locks, tracker.rebuilds) == (1, 0)


def test_a_seal_event_bound_to_no_leg_cut_off_from_detection_still_arms_the_watch(
    rig: Rig, truck: Vehicle, engine: Engine
) -> None:
    """The movement watch reads the vehicle's stored records, so a sealing stored but
    never fed (the process died after the ingest commit) still arms it."""
    now = utcnow()
    found = detector(rig)
    start = now - timedelta(minutes=30)
    rig.ingestor.consumers.remove(found)
    send_lock(rig, truck, start, "sealed", None)
    restarted = detector(rig)
    send_fixes(rig, truck, Path(start + timedelta(seconds=5)).drive(4_000).fixes)
    (moved,) = alerts(engine, kind="unmanifested_movement")
    assert moved.vehicle == truck.plate
    assert restarted.errors == 0


def test_detection_running_behind_ingestion_replays_nothing(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    """The gateway's detection thread takes commits after ingestion stored later ones:
    records newer than an update's own are not mistaken for lost ones."""
    now = utcnow()
    mid = picked_up(world, now)
    found = detector(rig)
    trip = Path(_start(now)).drive(6_000)
    first, second = len(trip.fixes) // 3, 2 * len(trip.fixes) // 3
    send_fixes(rig, truck, trip.fixes[:first])
    rig.ingestor.consumers.remove(found)
    handed: list[list[TrackUpdate]] = []
    rig.ingestor.consumers.append(lambda updates: handed.append(list(updates)))
    send_fixes(rig, truck, trip.fixes[first:second])
    send_lock(rig, truck, trip.fixes[second - 1].t + timedelta(seconds=1), "sealed", None)
    send_fixes(rig, truck, trip.fixes[second:])
    assert len(handed) == 3
    for updates in handed:  # now, in commit order, as the detection thread would
        found(updates)
    tracker = leg_tracker(rig.engine, mid)
    assert (tracker.fixes, tracker.locks, tracker.rebuilds) == (len(trip.fixes), 1, 0)


def test_the_sweep_replays_a_leg_silent_only_to_its_tracker(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    """Fixes stored but never fed (the process died with them handed to detection) and no
    update after them: the sweep, finding the leg silent, replays it instead of raising
    signal_lost on a track that did arrive."""
    now = utcnow()
    mid = picked_up(world, now)
    found = detector(rig)
    trip = Path(_start(now)).drive(6_000)
    half = len(trip.fixes) // 2
    send_fixes(rig, truck, trip.fixes[:half])
    rig.ingestor.consumers.remove(found)
    send_fixes(rig, truck, trip.fixes[half:])
    later = trip.fixes[-1].t + timedelta(seconds=ThresholdBook().for_region("").signal_lost_s + 60)
    sweep(session_factory=make_session_factory(rig.engine), now=later, book=ThresholdBook())
    assert [a.kind for a in alerts(rig.engine, manifest_id=mid)] == []
    tracker = leg_tracker(rig.engine, mid)
    assert (tracker.fixes, tracker.rebuilds) == (len(trip.fixes), 1)
    assert tracker.last_t == trip.fixes[-1].t
