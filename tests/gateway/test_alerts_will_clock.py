"""A device's will is judged on the sweep's clock, also when that clock is a replay's."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.support.alert_trips import Path, alerts, detector, picked_up, send_fixes
from tests.support.telemetry import Rig, Vehicle
from tests.support.world import World
from waste.alerts.thresholds import ThresholdBook
from waste.alerts.worker import AlertWorker
from waste.clock import utcnow
from waste.db import make_session_factory


class _Clock:
    """A settable sweep clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _replayed_leg(rig: Rig, world: World, truck: Vehicle) -> tuple[str, datetime]:
    """A leg of a day ago replayed now: its fixes arrive now (wall), dated a day ago."""
    sim = utcnow() - timedelta(days=1)
    mid = picked_up(world, sim, minutes_ago=10)
    detector(rig)
    fixes = Path(sim - timedelta(minutes=9)).drive(1_000).fixes
    send_fixes(rig, truck, fixes)
    return mid, max(f.t for f in fixes)


def test_a_will_in_a_compressed_replay_is_judged_on_the_sweep_clock(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    mid, last = _replayed_leg(rig, world, truck)
    clock = _Clock(last + timedelta(seconds=30))
    worker = AlertWorker(
        make_session_factory(rig.engine), rig.transport, book=ThresholdBook(), clock=clock
    )
    rig.send(truck.status(False))  # the will arrives now, on the wall clock
    rig.pump()
    assert worker.run_once(force_sweep=True)[0] == []  # 30 s after the last fix: in grace
    clock.now = last + timedelta(seconds=61)
    assert worker.run_once(force_sweep=True)[0] != []
    (lost,) = alerts(rig.engine, manifest_id=mid)
    assert lost.kind == "signal_lost"
    assert lost.evidence["cause"] == "device_offline"
    assert lost.at == last


def test_a_device_back_within_the_grace_is_not_lost(rig: Rig, world: World, truck: Vehicle) -> None:
    mid, last = _replayed_leg(rig, world, truck)
    clock = _Clock(last + timedelta(seconds=30))
    worker = AlertWorker(
        make_session_factory(rig.engine), rig.transport, book=ThresholdBook(), clock=clock
    )
    rig.send(truck.status(False))
    rig.pump()
    assert worker.run_once(force_sweep=True)[0] == []
    rig.send(truck.status(True, t=last + timedelta(seconds=40)))
    rig.pump()
    clock.now = last + timedelta(seconds=120)
    assert worker.run_once(force_sweep=True)[0] == []
    assert alerts(rig.engine, manifest_id=mid) == []
