"""The gateway is SIGKILLed at random (seeded) moments of a sustained stream and restarted.

This test's own Mosquitto, a ``waste gateway`` subprocess with a stable client id
(its persistent session keeps what it had not acknowledged), three vehicles on
open legs of filed and picked-up manifests, streaming with the reference device
client. The same tracks are first driven by three vehicles with the gateway
undisturbed (the reference), then by three others while the gateway is killed
several times, each time started again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.payloads import Fix
from tests.faults.legs import (
    THRESHOLDS,
    AlertShape,
    close_and_read,
    expected_root,
    open_legs,
)
from tests.faults.streams import (
    Detour,
    StoreCheck,
    Streamer,
    check_stored_exactly_once,
    drive,
    settle,
)
from tests.support.brokers import Mosquitto, unique_name
from tests.support.fault_devices import Device, open_devices
from tests.support.faults import ServiceProcess, broker_log_lines, gateway_process
from tests.support.reliability import Recorder
from tests.support.world import World, build_world
from waste.clock import utcnow
from waste.telemetry.sealing import LegCheck

pytestmark = [pytest.mark.faults, pytest.mark.broker, pytest.mark.postgres]

SEED = 20261101
KILLS = 3
FIXES_PER_DEVICE = 300


@dataclass
class Phase:
    """One stream of three vehicles on their open legs, and what came of it."""

    devices: list[Device]
    manifests: list[str]
    check: StoreCheck | None = None
    duplicates: float = 0.0
    legs: list[LegCheck] = field(default_factory=list)
    alerts: list[AlertShape] = field(default_factory=list)


def _stream(
    phase: Phase,
    tracks: list[list[Fix]],
    rng: random.Random,
    gateway: ServiceProcess,
    engine: Engine,
    kill_points: list[float],
) -> None:
    """Stream ``tracks`` (one per device), killing and restarting the gateway at the points."""
    streamer = Streamer(
        phase.devices,
        {d.device_id: t for d, t in zip(phase.devices, tracks, strict=True)},
        rng,
        tick_s=0.02,
        per_tick=(1, 2),
    )
    for device in phase.devices:
        device.client.start_background()
    streamer.start()
    for point in kill_points:
        streamer.wait_progress(point)
        phase.duplicates += gateway.metric("waste_gateway_messages_duplicate_total")
        gateway.kill()
        time.sleep(rng.uniform(0.0, 0.5))
        gateway.start()
    streamer.finish()
    for device in phase.devices:
        assert device.client.wait_delivered(30), f"{device.device_id} still has a backlog"
    settle(engine, phase.devices)
    phase.check = check_stored_exactly_once(engine, phase.devices)


def _close_and_judge(phase: Phase, world: World, first: int, engine: Engine) -> None:
    """Close the legs (the site receives), wait for their seals, read seals and alerts."""
    haulers = range(first, first + len(phase.manifests))
    phase.legs, phase.alerts = close_and_read(world, phase.manifests, haulers, engine)


def test_gateway_killed_at_random_moments_stores_every_message_once(
    mosquitto: Mosquitto,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    """Six vehicles on open legs drive the same seeded tracks (an off-route detour and
    a long stop included): three while the gateway runs undisturbed, then three while
    it is SIGKILLed three times at seeded moments and restarted with the same client id
    (no flush, no acknowledgement, no shutdown code). In the disturbed run every message
    sent is stored exactly once (byte for byte, seqs without a gap, every fix once),
    nothing is dead-lettered; once the legs close each is sealed with the Merkle root of
    the fixes the devices recorded (`verify_leg` agreeing with the stored rows); and the
    alerts raised (kind, dedupe key, fix time, end, severity, retraction) are the same
    as in the undisturbed run."""
    rng = random.Random(SEED)
    world = build_world(client, admin_headers, haulers=6, sites=1)
    client_id = unique_name("gw")
    gateway = gateway_process(
        tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        mqtt_url=f"{mosquitto.url}?session_expiry=600",
        client_id=client_id,
        leg_seal_grace_s="0.5",
        alert_thresholds=THRESHOLDS,
    )
    filed_at = utcnow().replace(microsecond=0) - timedelta(minutes=45)
    start = filed_at + timedelta(minutes=7)
    detours = [Detour(30, 60, offset_deg=0.004), Detour(90, 190)]  # off route; a long stop
    tracks = [drive(rng, start, FIXES_PER_DEVICE, detours=detours) for _ in range(3)]
    kill_points = sorted(rng.uniform(0.1, 0.85) for _ in range(KILLS))
    phases = []
    gateway.start()
    try:
        for first in (0, 3):
            haulers = range(first, first + 3)
            devices = open_devices([world.haulers[i] for i in haulers], mosquitto.url, tmp_path)
            phase = Phase(devices, open_legs(world, haulers, filed_at))
            phases.append(phase)
            try:
                _stream(phase, tracks, rng, gateway, engine, kill_points if first else [])
            finally:
                for device in devices:
                    device.client.close()
            _close_and_judge(phase, world, first, engine)
        phases[1].duplicates += gateway.metric("waste_gateway_messages_duplicate_total")
    finally:
        code = gateway.stop()
    undisturbed, killed = phases
    assert undisturbed.check is not None
    assert killed.check is not None
    redelivery = f"Sending PUBLISH to {client_id} (d1"
    redelivered = [ln for ln in broker_log_lines(mosquitto.log)[0] if redelivery in ln]
    live = [a for a in undisturbed.alerts if not a[-1]]
    reliability(
        **killed.check.figures(),
        duplicates_suppressed_at_least=int(killed.duplicates),
        broker_redeliveries_to_gateway=len(redelivered),
        gateway_kills=gateway.kills,
        legs_sealed=len(killed.legs),
        legs_matching_undisturbed_root=sum(
            leg.sealed_root == expected_root(d.device_id, d.recorded)
            for leg, d in zip(killed.legs, killed.devices, strict=True)
        ),
        alerts_undisturbed=len(undisturbed.alerts),
        alerts_after_kills=len(killed.alerts),
        alert_kinds=sorted({a[1] for a in live}),
        alerts_same=undisturbed.alerts == killed.alerts,
        seed=SEED,
    )
    assert not undisturbed.check.problems, undisturbed.check.problems
    assert not killed.check.problems, killed.check.problems
    assert gateway.kills == KILLS
    for leg, reference, device in zip(killed.legs, undisturbed.legs, killed.devices, strict=True):
        assert leg.ok, leg
        assert leg.sealed_root == expected_root(device.device_id, device.recorded)
        assert leg.sealed_root == reference.sealed_root
        assert leg.recomputed.count == len(device.recorded)
    assert live, "the undisturbed run raised no alert: nothing to compare"
    assert killed.alerts == undisturbed.alerts
    assert code == 0
