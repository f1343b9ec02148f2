"""A device offline for an hour comes back with its backlog, after its live fixes.

Time is compressed: the fixes' own timestamps span 70 minutes (one every 10 s);
the messages are published within seconds. Two vehicles on open legs drive the
same seeded track (an off-route detour and a long stop, both inside the hour the
second one is offline): the reference publishes in fix-time order; the other
publishes its first 5 minutes, then nothing for "an hour", then, as a JT/T 808
terminal does after a blind area, its live fixes first and the hour's backlog
after them (formed while offline, so with lower seqs than the live ones).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from devices.signing import encode_telemetry
from gateway.payloads import Fix
from gateway.topics import telemetry_topic
from tests.faults.legs import (
    THRESHOLDS,
    close_and_read,
    expected_root,
    open_legs,
    raised_at,
    tracker_rebuilds,
)
from tests.faults.streams import Detour, check_messages, drive
from tests.support.brokers import Mosquitto, unique_name
from tests.support.faults import gateway_process
from tests.support.reliability import Recorder
from tests.support.telemetry import wait_for
from tests.support.world import Hauler, build_world
from waste.alerts.rules import SIGNAL_LOST
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.telemetry.queries import track
from waste.uow import UnitOfWork

pytestmark = [pytest.mark.faults, pytest.mark.broker, pytest.mark.postgres]

SEED = 20261105
STEP_S = 10
FIXES = 420  # 70 minutes
PER_MESSAGE = 10
ONLINE = 30  # the first 5 minutes go out live
BACK = 390  # offline from fix 30 to fix 389: one hour


def _messages(hauler: Hauler, fixes: list[Fix]) -> list[tuple[int, str, bytes]]:
    """(seq, topic, payload) of ``PER_MESSAGE`` fixes each, seq from 1 in fix-time order."""
    out = []
    for n, i in enumerate(range(0, len(fixes), PER_MESSAGE), start=1):
        payload = encode_telemetry(
            hauler.device_id, n, fixes[i : i + PER_MESSAGE], hauler.device_key
        )
        out.append((n, telemetry_topic(hauler.device_id), payload))
    return out


def _publish(device: mqtt.Client, messages: list[tuple[int, str, bytes]]) -> None:
    for _, topic, payload in messages:
        device.publish(topic, payload, qos=1).wait_for_publish(5)


def test_device_offline_for_an_hour_backlog_judged_on_fix_time(
    mosquitto: Mosquitto,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    """A device offline for an hour (compressed) publishes its live fixes and then the
    hour's backlog, older fixes with lower seqs arriving last. Every message is stored
    exactly once; the device's stored track read back in fix-time order is exactly the
    track it recorded; its leg is sealed with the Merkle root of the fixes in fix-time
    order, the same root as the reference vehicle that published in order; and alert
    detection judges the backlog on fix time: the detour and the stop inside the
    offline hour raise the same alerts (kind, key, fix time, end, severity) as the
    reference's, dated inside the hour though raised after the device came back. An
    alert raised on the one-hour gap the live fixes showed (`signal_lost`) is retracted
    once the backlog fills it; the reference, in order, never saw a gap."""
    rng = random.Random(SEED)
    world = build_world(client, admin_headers, haulers=2, sites=1)
    reference, offline = world.haulers
    filed_at = utcnow().replace(microsecond=0) - timedelta(minutes=80)
    manifests = open_legs(world, range(2), filed_at)
    start = filed_at + timedelta(minutes=7)
    detours = [Detour(120, 12, offset_deg=0.003), Detour(200, 30)]  # inside the hour
    fixes = drive(rng, start, FIXES, step_s=STEP_S, speed_ms=3.0, detours=detours)
    gateway = gateway_process(
        tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        mqtt_url=mosquitto.url,
        client_id=unique_name("gw"),
        leg_seal_grace_s="0.5",
        alert_thresholds=THRESHOLDS,
    )
    gateway.start()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("devices"))
    device.connect("127.0.0.1", mosquitto.port, keepalive=10)
    device.loop_start()
    sent = {h.device_id: _messages(h, fixes) for h in (reference, offline)}
    stored = make_session_factory(engine)

    def fixes_stored(device_id: str) -> int:
        with UnitOfWork(stored) as uow:
            return len(track(uow=uow, device_id=device_id))

    try:
        _publish(device, sent[reference.device_id])
        mine = sent[offline.device_id]
        first, backlog, live = (
            mine[: ONLINE // PER_MESSAGE],
            mine[ONLINE // PER_MESSAGE : BACK // PER_MESSAGE],
            mine[BACK // PER_MESSAGE :],
        )
        _publish(device, first)
        wait_for(lambda: fixes_stored(offline.device_id) == ONLINE, timeout=20)
        came_back = utcnow()
        _publish(device, live)  # the present first ...
        wait_for(lambda: fixes_stored(offline.device_id) == ONLINE + len(live) * PER_MESSAGE)
        _publish(device, backlog)  # ... then the hour it missed
        wait_for(lambda: fixes_stored(offline.device_id) == FIXES, timeout=30)
        wait_for(lambda: fixes_stored(reference.device_id) == FIXES, timeout=30)
        time.sleep(0.5)
        check = check_messages(
            engine,
            {(dev, seq): p for dev, msgs in sent.items() for seq, _, p in msgs},
            {reference.device_id: fixes, offline.device_id: fixes},
        )
        with UnitOfWork(stored) as uow:
            read_back = [s.fix for s in track(uow=uow, device_id=offline.device_id)]
        legs, alerts = close_and_read(world, manifests, range(2), engine)
        offline_alerts = raised_at(engine, manifests[1])
        rebuilds = tracker_rebuilds(engine, manifests[1])
        duplicates = gateway.metric("waste_gateway_messages_duplicate_total")
    finally:
        device.disconnect()
        device.loop_stop()
        code = gateway.stop()
    ref_alerts = [a[1:] for a in alerts if a[0] == 0 and not a[-1]]
    off_alerts = [a[1:] for a in alerts if a[0] == 1 and not a[-1]]
    retracted = [a[1:] for a in alerts if a[-1]]
    hour = (fixes[ONLINE].t, fixes[BACK - 1].t)
    reliability(
        **check.figures(),
        duplicates_suppressed=int(duplicates),
        offline_minutes=round((hour[1] - hour[0]).total_seconds() / 60),
        backlog_messages=len(backlog),
        backlog_fixes=len(backlog) * PER_MESSAGE,
        live_messages_before_backlog=len(live),
        track_in_fix_time_order=read_back == fixes,
        seal_root_as_reference=legs[1].sealed_root == legs[0].sealed_root,
        alerts_reference=len(ref_alerts),
        alerts_offline_device=len(off_alerts),
        alert_kinds=sorted({a[0] for a in off_alerts}),
        alerts_same=ref_alerts == off_alerts,
        retracted_once_backlog_came=[a[0] for a in retracted],
        leg_replays=rebuilds,
        seed=SEED,
    )
    assert not check.problems, check.problems
    assert read_back == fixes
    assert all(leg.ok for leg in legs), legs
    assert legs[1].sealed_root == legs[0].sealed_root == expected_root("", fixes)
    assert ref_alerts, "the reference raised no alert: nothing to compare"
    assert off_alerts == ref_alerts
    for kind, at, raised in offline_alerts:
        if kind != SIGNAL_LOST:
            assert hour[0] <= at <= hour[1], (kind, at)  # dated by the fixes ...
            assert raised >= came_back  # ... though known only once the backlog came
    # The live fixes, arriving first, may show an hour without fixes: a signal_lost alert
    # that the backlog then disproves, so it is retracted (the only retraction allowed).
    for kind, _key, at, ended, _severity, _retracted in retracted:
        assert kind == SIGNAL_LOST
        assert at <= hour[0]
        assert ended is not None
        assert ended >= hour[1]
    assert code == 0
