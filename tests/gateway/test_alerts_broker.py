"""A real gateway on a real broker: a device's e-lock opened off site comes out as an alert."""

from __future__ import annotations

import json
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from devices.signing import encode_lock, encode_telemetry
from gateway.payloads import LockEvent, LockEventKind
from gateway.topics import lock_topic, telemetry_topic
from tests.support.alert_trips import Path, alerts, ms, picked_up
from tests.support.brokers import broker_url_for_tests, free_port
from tests.support.brokers import unique_name as unique
from tests.support.gateways import RunningGateway
from tests.support.telemetry import Vehicle, wait_for
from tests.support.world import build_world
from waste.clock import utcnow
from waste.config import Settings

pytestmark = pytest.mark.broker


def _client(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("alerts"))
    client.connect(host, port, keepalive=10)
    client.loop_start()
    return client


def test_an_alert_is_published_on_its_kind_topic(
    client: TestClient, admin_headers: dict[str, str], engine: Engine, settings: Settings
) -> None:
    world = build_world(client, admin_headers, haulers=1, sites=1)
    truck = Vehicle.of(world.haulers[0])
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=20)
    own = f"client_id={unique('gw')}"
    url = broker_url_for_tests()
    mqtt_url = (
        f"{url}?{own}&share_group={unique('g')}"
        if url
        else f"embedded://127.0.0.1:{free_port()}?{own}"
    )
    running = RunningGateway(settings, engine, mqtt_url)
    gateway = running.gateway
    received: list[tuple[str, dict[str, object]]] = []
    try:
        sub = _client(gateway.broker.host, gateway.broker.port)
        sub.on_message = lambda _c, _u, m: received.append((m.topic, json.loads(m.payload)))
        sub.subscribe("waste/v1/alerts/#", qos=1)
        trip = Path(now - timedelta(minutes=18)).drive(3_000)
        dev = _client(gateway.broker.host, gateway.broker.port)
        fixes = encode_telemetry(truck.device_id, next(truck.seqs), trip.fixes[:50], truck.key)
        dev.publish(telemetry_topic(truck.device_id), fixes, qos=1).wait_for_publish(5)
        lat, lon = trip.position()
        lock = LockEvent(ms(trip.t), f"SEAL-{truck.device_id}", LockEventKind.UNSEALED, lat, lon)
        payload = encode_lock(truck.device_id, next(truck.seqs), lock, truck.key)
        dev.publish(lock_topic(truck.device_id), payload, qos=1).wait_for_publish(5)
        wait_for(lambda: any(p.get("manifest_id") == mid for _, p in received), timeout=20)
        (stored,) = alerts(engine, manifest_id=mid)
        topic, body = next((t, p) for t, p in received if p.get("manifest_id") == mid)
        assert topic == "waste/v1/alerts/seal_opened_off_site"
        assert body["id"] == stored.id
        assert body["severity"] == "critical"
        dev.disconnect()
        sub.disconnect()
    finally:
        running.close()
    assert not running.thread.is_alive()
