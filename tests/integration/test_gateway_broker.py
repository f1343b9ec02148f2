"""The whole path on a real broker: device publishes → gateway verifies and stores → PUBACK.

Runs on the embedded broker (which the gateway starts itself, as for ``embedded://``:
Mosquitto as its child process when installed), on its amqtt fallback, and on Mosquitto
on a free port, or on the broker named by ``WASTE_TEST_MQTT_URL`` (with this test's own
client id and share group).
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from gateway.broker import EmbeddedBackend, MqttVersion
from gateway.service import Gateway
from gateway.transport import PahoTransport
from tests.support.brokers import free_port, mosquitto_path
from tests.support.brokers import unique_name as unique
from tests.support.gateways import gateway_mqtt_url  # noqa: F401 (fixture)
from tests.support.telemetry import Rig, Vehicle, http_get, make_rig, minutes_ago, wait_for
from tests.support.world import build_world
from waste.config import Settings
from waste.telemetry.models import DeadLetter, DeviceMessage, DevicePresence, TelemetryFix

pytestmark = pytest.mark.broker


def publisher(host: str, port: int) -> mqtt.Client:
    """A device-side MQTT 3.1.1 client, connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("dev"))
    client.connect(host, port, keepalive=10)
    client.loop_start()
    return client


def test_published_messages_are_stored_once_and_acknowledged(
    mqtt_url: str,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
) -> None:
    world = build_world(client, admin_headers, haulers=2, sites=1)
    trucks = [Vehicle.of(h) for h in world.haulers]
    gw_settings = settings.model_copy(
        update={
            "mqtt_url": mqtt_url,
            "gateway_metrics_port": free_port(),
            "gateway_batch_interval_s": 0.05,
        }
    )
    gateway = Gateway(gw_settings, engine=engine)
    stop = threading.Event()
    gateway.start()
    assert gateway.transport is not None
    if gateway.embedded is not None:  # the broker it runs, and what it speaks to it
        amqtt = gateway.embedded.backend is EmbeddedBackend.AMQTT
        assert amqtt == ("broker=amqtt" in mqtt_url or mosquitto_path() is None)
        assert gateway.transport.protocol is (MqttVersion.V311 if amqtt else MqttVersion.V5)
        assert gateway.broker.share_group is None  # default: a plain subscription
    runner = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    runner.start()
    rig: Rig = make_rig(engine)  # only for counting rows
    try:
        # A shared test broker may carry other tests' traffic too (device ids can collide
        # across test processes): every check below is about this test's own payloads.
        dev = publisher(gateway.broker.host, gateway.broker.port)
        sent: set[bytes] = set()
        online_at = minutes_ago(0)
        for truck in trucks:
            for i in range(10):
                topic, payload = truck.telemetry(minutes_ago(10 - i), minutes_ago(9.5 - i))
                dev.publish(topic, payload, qos=1).wait_for_publish(5)
                sent.add(payload)
            dev.publish(topic, payload, qos=1).wait_for_publish(5)  # a duplicate
            lock = truck.lock(minutes_ago(1))
            dev.publish(*lock, qos=1).wait_for_publish(5)
            sent.add(lock[1])
            dev.publish(*truck.status(True, online_at), qos=1).wait_for_publish(5)
        garbage = b"\xff garbage " + unique("x").encode()
        dev.publish(topic, garbage, qos=1).wait_for_publish(5)
        wait_for(lambda: rig.count(DeviceMessage) == len(sent))
        wait_for(lambda: rig.count(DeadLetter, payload=garbage) == 1)
        for truck in trucks:
            wait_for(
                lambda t=truck: rig.count(DevicePresence, device_id=t.device_id, t=online_at) == 1
            )
        assert rig.count(TelemetryFix) == 2 * (len(sent) - len(trucks))
        port = gw_settings.gateway_metrics_port
        assert http_get(port, "/healthz") == (200, "ok\n")
        status, metrics = http_get(port, "/metrics")
        assert status == 200
        assert 'waste_gateway_messages_accepted_total{channel="telemetry"} 20.0' in metrics
        assert "waste_gateway_messages_duplicate_total 2.0" in metrics
        dev.disconnect()
        dev.loop_stop()
    finally:
        stop.set()
        runner.join(timeout=10)
        transport = gateway.transport
        gateway.close()
    assert not runner.is_alive()
    assert transport is not None
    assert transport.stale_acks == 0
    assert gateway.metrics.registry.get_sample_value("waste_gateway_acks_refused_total") == 0
    if not gateway.broker.embedded:  # the broker outlives the gateway: nothing comes back
        with PahoTransport(gateway.broker, connect_timeout=5) as again:
            time.sleep(1.0)
            assert not [m for m in again.messages(0.1, limit=1000) if m.payload in sent]
