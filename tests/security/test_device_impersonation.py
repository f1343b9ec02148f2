"""A device that speaks for another: on its topic, or with its identity but its own key.

Two lines of defence. First the broker: with the ACL of the README's section "A
Mosquitto for devices and gateways" (``docs/mosquitto/acl``, which this test runs
in a real Mosquitto, as ``tests/integration/test_mosquitto_acl.py`` does), a
device may publish on its own three topics only, so a message on another
device's topic never reaches the gateway. Second the
gateway, for whatever gets through (a broker without the ACL, a stolen broker
password): a payload whose ``device_id`` is not the topic's is rejected as
``topic_mismatch``, one in the other device's name but signed with another key
as ``bad_signature``; each is counted, dead-lettered, and stores nothing.
Status messages are not signed (PROTOCOL.md §4): only the broker ACL
authenticates them, which is why the ACL is required in production.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine

from devices.signing import encode_lock, encode_telemetry
from gateway.payloads import Fix, LockEvent, LockEventKind
from gateway.topics import lock_topic, status_topic, telemetry_topic
from tests.support.reliability import ROOT, Recorder
from tests.support.telemetry import Vehicle, make_rig, minutes_ago
from tests.support.world import build_world
from waste.telemetry.models import DeadLetter, TelemetryFix, TelemetryLockEvent

ACL = ROOT / "docs" / "mosquitto" / "acl"


def test_the_gateway_rejects_and_counts_messages_in_another_devices_name(
    client: TestClient, admin_headers: dict[str, str], engine: Engine, reliability: Recorder
) -> None:
    """Device B publishes (1) its own signed telemetry on A's topic, (2) telemetry and
    (3) an "unsealed" lock event in A's name signed with B's key. The gateway rejects them
    as topic_mismatch, bad_signature, bad_signature; counts them by reason; dead-letters
    them under A's topic; stores no fix or lock event for A's vehicle; and A's own message
    right after is stored."""
    world = build_world(client, admin_headers)
    victim, attacker = Vehicle.of(world.haulers[0]), Vehicle.of(world.haulers[1])
    rig = make_rig(engine)
    t = minutes_ago(1)
    attacks = [
        (telemetry_topic(victim.device_id), attacker.telemetry(t)[1], "topic_mismatch"),
        (
            telemetry_topic(victim.device_id),
            encode_telemetry(victim.device_id, 7, [Fix(t, 29.0, 120.0)], attacker.key),
            "bad_signature",
        ),
        (
            lock_topic(victim.device_id),
            encode_lock(
                victim.device_id,
                8,
                LockEvent(t, f"SEAL-{victim.device_id}", LockEventKind.UNSEALED, 29.0, 120.0),
                attacker.key,
            ),
            "bad_signature",
        ),
    ]
    for topic, payload, _ in attacks:
        rig.send((topic, payload))
    rig.send(victim.telemetry(t))
    rig.pump()
    letters = rig.rows(DeadLetter, DeadLetter.id)
    assert [(d.topic, d.reason, d.device_id) for d in letters] == [
        (topic, reason, victim.device_id) for topic, _, reason in attacks
    ]
    registry = rig.ingestor.metrics.registry
    counted = {
        reason: registry.get_sample_value(
            "waste_gateway_messages_rejected_total", {"reason": reason}
        )
        for reason in ("topic_mismatch", "bad_signature")
    }
    assert counted == {"topic_mismatch": 1.0, "bad_signature": 2.0}
    fixes = rig.rows(TelemetryFix, TelemetryFix.t)
    assert [(f.vehicle, f.lat) for f in fixes] == [(victim.plate, victim.fixes(t)[0].lat)]
    assert rig.count(TelemetryLockEvent) == 0
    assert len(rig.transport.acked) == len(attacks) + 1
    reliability(attacks=len(attacks), rejected=len(letters), stored_for_victim=0, counted=counted)


# --- the broker ACL, in a real Mosquitto ---------------------------------------------------------


@dataclass
class AclBroker:
    """A Mosquitto with passwords and the documented ACL."""

    port: int
    passwords: dict[str, str]


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[AclBroker]:
    """Mosquitto with ``allow_anonymous false``, a password file and the documented ACL."""
    from gateway._mosquitto import MosquittoProcess, find_mosquitto

    if find_mosquitto() is None:
        pytest.skip("needs the mosquitto executable (apt-get install mosquitto)")
    passwords = {"gateway": "gw-secret", "DEV-A": "a-secret", "DEV-B": "b-secret"}
    password_file = tmp_path / "passwd"
    password_file.touch(mode=0o600)
    for user, password in passwords.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(password_file), user, password],
            check=True,
            capture_output=True,
        )
    acl_file = tmp_path / "acl"
    acl_file.write_text(ACL.read_text("utf-8"))
    broker = MosquittoProcess(
        tmp_path / "broker",
        anonymous=False,
        settings=[f"password_file {password_file}", f"acl_file {acl_file}"],
    )
    broker.start()
    try:
        yield AclBroker(broker.port, passwords)
    finally:
        broker.stop()


class Client:
    """A paho MQTT 5 client that records what it receives and its PUBACK/SUBACK codes."""

    def __init__(self, broker: AclBroker, user: str | None, password: str | None = None):
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, int] = {}
        self.connack: int | None = None
        self._acked = threading.Condition()
        self._connected = threading.Event()
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{user or 'anon'}-acl-test",
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.mqtt.username_pw_set(user, password or broker.passwords[user])
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        self.mqtt.on_publish = self._on_ack
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.connect("127.0.0.1", broker.port)
        self.mqtt.loop_start()
        assert self._connected.wait(5), "no CONNACK"

    def _on_connect(self, *args: Any) -> None:
        reason: ReasonCode = args[3]
        self.connack = reason.value
        self._connected.set()

    def _on_ack(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties) -> None:
        with self._acked:
            self.acks[mid] = reason.value
            self._acked.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        with self._acked:
            self.acks[mid] = reasons[0].value
            self._acked.notify_all()

    def _wait(self, mid: int) -> int:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.acks, 5), f"no ack for {mid}"
            return self.acks[mid]

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; return the PUBACK reason code."""
        return self._wait(self.mqtt.publish(topic, payload, qos=1).mid)

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; return the SUBACK reason code."""
        return self._wait(self.mqtt.subscribe(topic, qos=1)[1])

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87


@pytest.mark.broker
def test_the_documented_acl_stops_a_device_on_another_devices_topics(
    acl_broker: AclBroker, reliability: Recorder
) -> None:
    """In Mosquitto with the documented ACL: device A's messages on its own telemetry, lock
    and status topics reach the gateway; on device B's they are refused (PUBACK "not
    authorized") and never delivered — the status spoof included, which the gateway could
    not tell apart. A device cannot publish alerts, receives nothing of other devices'
    topics even when subscribed, and an anonymous or wrong-password client cannot
    connect."""
    gateway = Client(acl_broker, "gateway")
    for channel in ("telemetry", "lock"):
        assert gateway.subscribe(f"$share/waste-gateway/waste/v1/devices/+/{channel}") < 128
    assert gateway.subscribe("waste/v1/devices/+/status") < 128
    device = Client(acl_broker, "DEV-A")
    try:
        refused = {
            topic: device.publish(topic, b"{}")
            for topic in (
                telemetry_topic("DEV-B"),
                lock_topic("DEV-B"),
                status_topic("DEV-B"),
                "waste/v1/alerts/seal_opened_off_site",
            )
        }
        allowed = {
            topic: device.publish(topic, b'{"fence": true}')
            for topic in (status_topic("DEV-A"), lock_topic("DEV-A"), telemetry_topic("DEV-A"))
        }
        assert set(refused.values()) == {NOT_AUTHORIZED}, refused
        assert set(allowed.values()) == {0}, allowed
        delivered = [gateway.received.get(timeout=5)[0] for _ in allowed]
        assert delivered == list(allowed)  # in order: nothing refused slipped in between
        assert gateway.received.empty()
        # Eavesdropping: the broker grants the subscription but delivers nothing to it.
        device.subscribe("waste/v1/devices/+/telemetry")
        other = Client(acl_broker, "DEV-B")
        assert other.publish(telemetry_topic("DEV-B"), b"B's own") == 0
        assert gateway.received.get(timeout=5) == (telemetry_topic("DEV-B"), b"B's own")
        # Routed to every subscriber before the gateway got it; A's next PUBACK comes after
        # anything the broker had queued for A, so nothing received by then means nothing.
        assert device.publish(status_topic("DEV-A"), b'{"online": true}') == 0
        assert device.received.empty()
        other.close()
    finally:
        device.close()
        gateway.close()
    anonymous = Client(acl_broker, None)
    wrong = Client(acl_broker, "DEV-B", "not-the-password")
    assert anonymous.connack == wrong.connack == NOT_AUTHORIZED
    anonymous.close()
    wrong.close()
    reliability(refused=len(refused), delivered=len(allowed), anonymous_connack=NOT_AUTHORIZED)
