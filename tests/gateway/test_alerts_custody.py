"""Alerts from custody events (in the append transaction) and from the periodic sweep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.support.alert_trips import (
    LENGTH_M,
    Path,
    alerts,
    detector,
    leg_tracker,
    picked_up,
    receipt,
    send_fixes,
    send_lock,
)
from tests.support.telemetry import Rig, Vehicle
from tests.support.world import World
from waste.alerts.thresholds import ThresholdBook
from waste.alerts.worker import AlertWorker
from waste.clock import utcnow
from waste.db import make_session_factory


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _worker(rig: Rig) -> AlertWorker:
    return AlertWorker(make_session_factory(rig.engine), rig.transport, book=ThresholdBook())


def _delivered(rig: Rig, world: World, truck: Vehicle, now: datetime, *, stop: bool) -> str:
    """A trip to the destination (with an off-site stop if ``stop``), not yet received."""
    mid = picked_up(world, now)
    detector(rig)
    trip = Path(now - timedelta(minutes=48)).drive(5_000)
    if stop:
        trip.park(300, left_m=30.0)
    send_fixes(rig, truck, trip.drive(LENGTH_M).park(120).fixes)
    return mid


def test_mass_lost_at_receipt_makes_the_stop_dumping_retroactively(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=True)
    assert alerts(rig.engine, manifest_id=mid) == []  # a 5-minute stop alone is no alert
    world.sites[0].receive(mid, receipt(truck, 600.0), at=now - timedelta(minutes=2))
    found = {a.kind: a for a in alerts(rig.engine, manifest_id=mid)}
    assert set(found) == {"quantity_discrepancy", "suspected_illegal_dumping"}
    lost = found["quantity_discrepancy"]
    assert lost.severity == "high"
    assert lost.evidence["loss_kg"] == 195.0
    dumping = found["suspected_illegal_dumping"]
    assert dumping.evidence["reasons"] == ["mass_lost"]
    assert dumping.at < now - timedelta(minutes=20) < dumping.raised_at
    assert dumping.evidence["episode"]["kind"] == "stop"
    assert dumping.evidence["fixes"]
    assert dumping.publish_pending  # raised by the API: the gateway's worker publishes it
    _, sent = _worker(rig).run_once()
    assert sent == 2
    kinds = {json.loads(m.payload)["kind"] for m in rig.transport.published}
    assert kinds == {"quantity_discrepancy", "suspected_illegal_dumping"}


def test_mass_within_tolerance_raises_nothing(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=True)
    world.sites[0].receive(mid, receipt(truck, 760.0), at=now - timedelta(minutes=2))  # 4.4%
    assert alerts(rig.engine, manifest_id=mid) == []


def test_a_different_seal_at_the_gate_is_tamper(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=False)
    data = receipt(truck, seal_id="SEAL-FORGED")
    world.sites[0].receive(mid, data, at=now - timedelta(minutes=2))
    (tamper,) = alerts(rig.engine, manifest_id=mid)
    assert (tamper.kind, tamper.severity) == ("seal_tamper", "critical")
    assert tamper.evidence["found_seal_id"] == "SEAL-FORGED"


def test_an_unlicensed_code_at_receipt(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=False)
    data = receipt(truck, waste_codes=["900-000-18"])
    world.sites[0].receive(mid, data, at=now - timedelta(minutes=2))
    (unlicensed,) = alerts(rig.engine, manifest_id=mid)
    assert unlicensed.kind == "unlicensed_receipt"
    assert unlicensed.severity == "high"
    assert unlicensed.evidence["unlicensed_codes"] == ["900-000-18"]
    assert unlicensed.site_id == world.sites[0].party_id


def test_a_clean_receipt_raises_nothing(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=False)
    world.sites[0].receive(mid, receipt(truck), at=now - timedelta(minutes=2))
    assert alerts(rig.engine, manifest_id=mid) == []
    assert _worker(rig).run_once(force_sweep=True) == ([], 0)


def test_the_sweep_raises_overdue_and_the_late_receipt_ends_it(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    window = {"from": _ts(now - timedelta(minutes=58)), "to": _ts(now + timedelta(hours=4))}
    mid = picked_up(world, now, pickup_window=window, deliver_by=_ts(now - timedelta(minutes=10)))
    send_fixes(rig, truck, Path(now - timedelta(minutes=8)).drive(2_000).fixes)
    swept, sent = _worker(rig).run_once(force_sweep=True)
    (overdue,) = alerts(rig.engine, manifest_id=mid, kind="overdue_delivery")
    assert overdue.id in swept
    assert sent >= 1
    assert overdue.ended_at is None
    assert _worker(rig).run_once(force_sweep=True)[0] == []  # raised once
    world.sites[0].receive(mid, receipt(truck), at=now - timedelta(minutes=1))
    (ended,) = alerts(rig.engine, manifest_id=mid, kind="overdue_delivery")
    assert ended.id == overdue.id
    assert ended.ended_at is not None


def test_the_sweep_leaves_a_manifest_in_time_alone(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=5)
    send_fixes(rig, truck, Path(now - timedelta(minutes=4)).drive(2_000).fixes)
    assert _worker(rig).run_once(force_sweep=True)[0] == []
    assert alerts(rig.engine, manifest_id=mid) == []


def test_the_sweep_raises_signal_lost_for_a_silent_leg(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=40)
    detector(rig)
    send_fixes(rig, truck, Path(now - timedelta(minutes=38)).drive(3_000).fixes)
    swept, _ = _worker(rig).run_once(force_sweep=True)
    (lost,) = alerts(rig.engine, manifest_id=mid)
    assert lost.kind == "signal_lost"
    assert lost.evidence["ongoing"]
    assert lost.id in swept
    resumed = Path(now - timedelta(minutes=1), progress=3_200).drive(4_000).fixes
    send_fixes(rig, truck, resumed)
    (judged,) = alerts(rig.engine, manifest_id=mid)
    assert judged.id == lost.id
    assert judged.ended_at is not None
    assert not judged.evidence["ongoing"]
    assert judged.severity == "high"


def test_a_will_message_during_a_leg_is_signal_lost(rig: Rig, world: World, truck: Vehicle) -> None:
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=10)
    detector(rig)
    send_fixes(rig, truck, Path(now - timedelta(minutes=9)).drive(1_000).fixes)
    worker = AlertWorker(
        make_session_factory(rig.engine),
        rig.transport,
        book=ThresholdBook(),
        clock=lambda: now + timedelta(minutes=2),
    )
    assert worker.run_once(force_sweep=True)[0] == []
    rig.send(truck.status(False))
    rig.pump()
    assert alerts(rig.engine, manifest_id=mid) == []  # the ingest itself does not judge a will
    assert worker.run_once(force_sweep=True)[0] != []
    (lost,) = alerts(rig.engine, manifest_id=mid)
    assert lost.kind == "signal_lost"
    assert lost.evidence["cause"] == "device_offline"


def test_a_pickup_posted_late_retracts_the_movement_alert(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = world.producer.file(world.filing(), at=now - timedelta(minutes=45))["manifest_id"]
    detector(rig)
    start = now - timedelta(minutes=40)
    send_lock(rig, truck, start, "sealed", None)
    send_fixes(rig, truck, Path(start + timedelta(seconds=5)).drive(4_000).fixes)
    (moved,) = alerts(rig.engine, kind="unmanifested_movement")
    assert not moved.evidence.get("retracted")
    world.haulers[0].client.pick_up(
        mid, world.pickup(), cosigners=[world.producer.key], at=start - timedelta(seconds=30)
    )
    (gone,) = alerts(rig.engine, kind="unmanifested_movement")
    assert gone.evidence["retracted"]
    assert gone.severity == "low"
    assert alerts(rig.engine, manifest_id=mid) == []  # the leg itself: an honest start


def test_a_receipt_dated_before_fixes_already_fed_is_replayed_by_the_sweep(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = _delivered(rig, world, truck, now, stop=True)  # fixes until about 20 min ago
    received_at = now - timedelta(minutes=25)  # the gate signed earlier than the last fixes
    world.sites[0].receive(mid, receipt(truck, 600.0), at=received_at)
    tracker = leg_tracker(rig.engine, mid)
    assert tracker.replay_due
    (dumping,) = alerts(rig.engine, manifest_id=mid, kind="suspected_illegal_dumping")
    _worker(rig).run_once(force_sweep=True)
    tracker = leg_tracker(rig.engine, mid)
    assert not tracker.replay_due
    assert tracker.rebuilds == 1
    assert tracker.last_t is not None
    assert tracker.last_t < received_at  # the fixes after the receipt left the leg
    (again,) = alerts(rig.engine, manifest_id=mid, kind="suspected_illegal_dumping")
    assert again.id == dumping.id
    assert not again.evidence.get("retracted")
