"""PahoTransport against real brokers: the embedded one, its amqtt fallback, and Mosquitto.

"embedded" is ``EmbeddedBroker()`` as ``embedded://`` starts it: Mosquitto as a child
process when installed. "amqtt" forces the fallback used when Mosquitto is absent;
what amqtt cannot do is marked (``AMQTT_*``: an xfail or a skip naming the limitation,
documented in ``gateway/_amqtt.py``). With ``WASTE_TEST_MQTT_URL`` set, the
"mosquitto" cases use that broker instead of starting one (and skip the restart
test). Every test uses its own client ids and topic prefix, so tests may share a broker.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import BrokerConfig, EmbeddedBackend, EmbeddedBroker, MqttVersion
from gateway.topics import Channel, device_filter, status_topic, telemetry_topic
from gateway.transport import InboundMessage, PahoTransport, TransportError
from tests.support.brokers import (
    Mosquitto,
    broker_url_for_tests,
    mosquitto_path,
    unique_name,
)

pytestmark = pytest.mark.broker

AMQTT_LOSES_INFLIGHT = (
    "amqtt fallback only: amqtt 0.12 forgets a QoS 1 message whose PUBACK has not arrived "
    "when the connection ends (and after 5 s): no redelivery to the resumed session"
)
AMQTT_NO_SHARES = "amqtt fallback only: no shared subscriptions ($share/... matches nothing)"


@dataclass
class Broker:
    """A broker under test, and this test's own topic prefix."""

    kind: str  # embedded (Mosquitto child) | amqtt (the fallback) | mosquitto | external
    config: BrokerConfig
    prefix: str
    restart: Callable[[], None] | None

    def settings(self, **changes: Any) -> BrokerConfig:
        """Settings for a gateway with a fresh client id."""
        return replace(self.config, **{"client_id": unique_name("gw"), **changes})

    def transport(self, settings: BrokerConfig | None = None) -> PahoTransport:
        """A transport subscribed to this test's device topics."""
        filters = [f"{self.prefix}/{device_filter(c)}" for c in Channel]
        return PahoTransport(settings or self.settings(), topics=filters, connect_timeout=5)

    def topic(self, device_id: str = "DEV-0001", channel: str = "telemetry") -> str:
        """A device topic under this test's prefix."""
        base = telemetry_topic(device_id) if channel == "telemetry" else status_topic(device_id)
        return f"{self.prefix}/{base}"


@pytest.fixture(params=["embedded", "amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """Each test on the embedded broker, its amqtt fallback, and Mosquitto (or the external one)."""
    prefix = unique_name("it")
    if request.param in ("embedded", "amqtt"):
        backend = EmbeddedBackend.AMQTT if request.param == "amqtt" else EmbeddedBackend.AUTO
        if backend is EmbeddedBackend.AUTO and mosquitto_path() is None:
            pytest.skip("mosquitto is not installed: embedded:// is amqtt, tested as 'amqtt'")
        holder = [EmbeddedBroker(backend=backend)]
        port = holder[0].start()

        def restart_embedded() -> None:
            holder[0].stop()
            holder[0] = EmbeddedBroker(port, backend=backend)
            holder[0].start()

        try:
            yield Broker(request.param, holder[0].config(), prefix, restart_embedded)
        finally:
            holder[0].stop()
        return
    if url := broker_url_for_tests():
        yield Broker("external", BrokerConfig.from_url(url), prefix, None)
        return
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed and WASTE_TEST_MQTT_URL is not set")
    mosquitto = Mosquitto(tmp_path)
    mosquitto.start()
    try:
        yield Broker("mosquitto", BrokerConfig.from_url(mosquitto.url), prefix, mosquitto.restart)
    finally:
        mosquitto.stop()


class Device:
    """A bare paho client standing in for a vehicle device (MQTT 3.1.1, clean session)."""

    def __init__(self, broker: Broker, *, will: str | None = None) -> None:
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("dev"))
        if will:
            self.client.will_set(will, b'{"online": false}', qos=1, retain=True)
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_message = lambda _c, _u, m: self.inbox.put(m)
        self.client.connect(broker.config.host, broker.config.port, keepalive=5)
        self.client.loop_start()
        assert connected.wait(5), "device did not connect"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()

    def die(self) -> None:
        """Vanish without DISCONNECT, as a device losing power."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert sock is not None
        sock.close()


@pytest.fixture
def device(broker: Broker) -> Iterator[Device]:
    """A connected device."""
    dev = Device(broker)
    yield dev
    dev.close()


def drain(transport: PahoTransport, want: int, timeout: float = 3.0) -> list[InboundMessage]:
    """Up to ``want`` messages, waiting at most ``timeout`` seconds in all."""
    got: list[InboundMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and (left := deadline - time.monotonic()) > 0:
        got += transport.messages(timeout=left, limit=want - len(got))
    return got


def test_qos1_message_arrives_as_inbound_message(broker: Broker, device: Device) -> None:
    settings = broker.settings()
    with broker.transport(settings) as gw:
        assert gw.connected
        device.publish(broker.topic(), b'{"seq": 1}')
        msg = gw.get(timeout=5)
        assert msg is not None
        assert (msg.topic, msg.payload) == (broker.topic(), b'{"seq": 1}')
        assert (msg.qos, msg.retain) == (1, False)
        assert msg.mid > 0
        assert msg.received_at.tzinfo is not None
        assert gw.ack(msg) is True
        assert gw.ack(msg) is False  # one PUBACK per message, never a second one
    with broker.transport(settings) as again:
        assert again.get(timeout=1.0) is None  # acknowledged: not redelivered


@pytest.mark.parametrize("end", ["abort", "stop"])
def test_unacked_message_is_redelivered_to_the_session(
    broker: Broker, device: Device, end: str, request: pytest.FixtureRequest
) -> None:
    if broker.kind == "amqtt":
        request.applymarker(
            pytest.mark.xfail(reason=AMQTT_LOSES_INFLIGHT, raises=AssertionError, strict=True)
        )
    settings = broker.settings()
    first = broker.transport(settings)
    first.start()
    device.publish(broker.topic(), b"in-flight")
    got = first.get(timeout=5)
    assert got is not None
    assert got.payload == b"in-flight"
    getattr(first, end)()  # crash (or stop) before the commit: no PUBACK
    device.publish(broker.topic(), b"while-away")

    with broker.transport(settings) as second:
        redelivered = drain(second, 2)
        assert sorted(m.payload for m in redelivered) == [b"in-flight", b"while-away"]
        assert all(second.ack(m) for m in redelivered)
    with broker.transport(settings) as third:
        assert third.get(timeout=1.0) is None


def test_retained_status_and_will_message(broker: Broker) -> None:
    status = broker.topic(channel="status")
    dev = Device(broker, will=status)
    dev.publish(status, b'{"online": true}', retain=True)
    with broker.transport() as gw:
        retained = gw.get(timeout=5)
        assert retained is not None
        assert (retained.topic, retained.payload, retained.retain) == (
            status,
            b'{"online": true}',
            True,
        )
        gw.ack(retained)
        dev.die()
        will = gw.get(timeout=5)
        assert will is not None
        assert (will.topic, will.payload) == (status, b'{"online": false}')
        gw.ack(will)
    with broker.transport() as late:
        kept = late.get(timeout=5)
        assert kept is not None
        assert (kept.payload, kept.retain) == (b'{"online": false}', True)
        late.ack(kept)
    cleaner = Device(broker)
    cleaner.publish(status, b"", retain=True)  # clear the retained message
    cleaner.close()


def test_shared_subscription_splits_messages(broker: Broker, device: Device) -> None:
    if broker.kind == "amqtt":
        pytest.skip(AMQTT_NO_SHARES)
    group = unique_name("g")
    gw1 = broker.transport(broker.settings(share_group=group))
    gw2 = broker.transport(broker.settings(share_group=group))
    with gw1, gw2:
        assert gw1.subscriptions[0].startswith(f"$share/{group}/")
        sent = [f"m{i}".encode() for i in range(20)]
        for payload in sent:
            device.publish(broker.topic(), payload)
        got1: list[bytes] = []
        got2: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(got1) + len(got2) < len(sent) and time.monotonic() < deadline:
            for gw, got in ((gw1, got1), (gw2, got2)):
                for m in gw.messages(timeout=0.1):
                    assert gw.ack(m)
                    got.append(m.payload)
        assert sorted(got1 + got2) == sorted(sent)
        assert got1, "both members of the group get a share"
        assert got2, "both members of the group get a share"


def test_statuses_reach_every_member_of_a_share_group_retained_ones_too(
    broker: Broker, device: Device
) -> None:
    if broker.kind == "amqtt":
        pytest.skip(AMQTT_NO_SHARES)
    status = broker.topic(channel="status")
    device.publish(status, b'{"online": true}', retain=True)  # before any gateway is there
    group = unique_name("g")
    gw1 = broker.transport(broker.settings(share_group=group))
    gw2 = broker.transport(broker.settings(share_group=group))
    with gw1, gw2:
        assert f"{broker.prefix}/waste/v1/devices/+/status" in gw1.subscriptions  # unshared
        for gw in (gw1, gw2):  # a shared subscription would not be sent the retained one
            kept = gw.get(timeout=5)
            assert kept is not None
            assert (kept.topic, kept.payload, kept.retain) == (status, b'{"online": true}', True)
            assert gw.ack(kept)
        device.publish(status, b'{"online": false}', retain=True)
        for gw in (gw1, gw2):  # unshared: every gateway gets every status
            live = gw.get(timeout=5)
            assert live is not None
            assert (live.payload, live.retain) == (b'{"online": false}', False)
            assert gw.ack(live)
    device.publish(status, b"", retain=True)  # clear the retained message


def test_reconnects_and_resubscribes_after_broker_restart(broker: Broker, device: Device) -> None:
    if broker.restart is None:
        pytest.skip("cannot restart the external broker of WASTE_TEST_MQTT_URL")
    with broker.transport() as gw:
        device.publish(broker.topic(), b"before")
        before = gw.get(timeout=5)
        assert before is not None
        device.close()
        broker.restart()  # sessions are in memory: this one is gone
        deadline = time.monotonic() + 8
        while gw.epoch < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gw.wait_ready(max(0.0, deadline - time.monotonic())), "no reconnect"
        assert gw.epoch == 2
        assert gw.ack(before) is False  # its connection is gone; never PUBACK on the new one
        assert gw.stale_acks == 1
        again = Device(broker)
        again.publish(broker.topic(), b"after")
        after = gw.get(timeout=5)
        assert after is not None
        assert after.payload == b"after"
        assert gw.ack(after)
        again.close()


def test_gateway_publishes_alerts(broker: Broker, device: Device) -> None:
    alerts = f"{broker.prefix}/waste/v1/alerts/seal_tamper"
    device.client.subscribe(alerts, qos=1)
    time.sleep(0.3)
    with broker.transport() as gw:
        gw.publish(alerts, b'{"id": "a1"}')
        got = device.inbox.get(timeout=5)
    assert (got.topic, got.payload, got.qos) == (alerts, b'{"id": "a1"}', 1)


ACCEPTED_311 = bytes([0x20, 2, 0, 0])
REFUSED_PROTOCOL_311 = bytes([0x20, 2, 0, 1])  # what a 3.1.1-only broker answers to MQTT 5
NOT_AUTHORIZED_5 = bytes([0x20, 3, 0, 0x87, 0])  # reason 135, no properties


class _FakeBroker:
    """Answers CONNECT with a fixed CONNACK per protocol level (4 or 5); records the levels."""

    def __init__(self, answers: dict[int, bytes]) -> None:
        self.answers = answers
        self.levels: list[int] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = conn.recv(4096)
                # fixed header (2 bytes for short packets), then "\0\x04MQTT" and the level
                level = data[8]
                self.levels.append(level)
                answer = self.answers[level]
                conn.sendall(answer)
                if answer == ACCEPTED_311:
                    sub = conn.recv(4096)
                    pid, count = sub[2:4], sub.count(b"waste/v1/")
                    conn.sendall(bytes([0x90, 2 + count]) + pid + b"\x01" * count)
                    time.sleep(0.3)

    def close(self) -> None:
        self.server.close()
        self.thread.join(2)


def test_falls_back_to_311_when_mqtt5_is_refused() -> None:
    fake = _FakeBroker({5: REFUSED_PROTOCOL_311, 4: ACCEPTED_311})
    try:
        gw = PahoTransport(BrokerConfig(port=fake.port, client_id="gw-fb"), connect_timeout=3)
        gw.start()
        assert gw.protocol is MqttVersion.V311
        assert fake.levels[:2] == [5, 4]
        gw.abort()
    finally:
        fake.close()


def test_refused_connection_raises() -> None:
    fake = _FakeBroker({5: NOT_AUTHORIZED_5, 4: ACCEPTED_311})
    try:
        gw = PahoTransport(BrokerConfig(port=fake.port, client_id="gw-no"), connect_timeout=3)
        with pytest.raises(TransportError, match="refused"):
            gw.start()
        assert not gw.connected
    finally:
        fake.close()
