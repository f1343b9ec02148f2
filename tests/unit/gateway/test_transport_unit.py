"""BrokerConfig URL parsing, subscriptions, and the FakeTransport double."""

from __future__ import annotations

import dataclasses

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.broker import BrokerConfig, EmbeddedBackend, EmbeddedBroker, MqttVersion
from gateway.transport import (
    FakeTransport,
    InboundMessage,
    PahoTransport,
    PublishedMessage,
    Transport,
    device_subscriptions,
)

TOPIC = "waste/v1/devices/DEV-0001/telemetry"


def test_plain_url_defaults() -> None:
    cfg = BrokerConfig.from_url("mqtt://broker.example")
    assert (cfg.host, cfg.port, cfg.tls, cfg.embedded) == ("broker.example", 1883, False, False)
    assert cfg.protocol is MqttVersion.V5
    assert (cfg.username, cfg.password, cfg.share_group) == (None, None, None)
    assert (cfg.client_id, cfg.keepalive, cfg.session_expiry) == ("waste-gateway", 30, 604800)


def test_credentials_and_query_parameters() -> None:
    cfg = BrokerConfig.from_url(
        "mqtt://gw%40site:p%3Ass@10.0.0.5:1884"
        "?client_id=gw-2&keepalive=15&protocol=3.1.1&share_group=gw&session_expiry=60"
    )
    assert (cfg.username, cfg.password) == ("gw@site", "p:ss")
    assert (cfg.host, cfg.port, cfg.client_id, cfg.keepalive) == ("10.0.0.5", 1884, "gw-2", 15)
    assert (cfg.protocol, cfg.share_group, cfg.session_expiry) == (MqttVersion.V311, "gw", 60)


def test_tls_url() -> None:
    cfg = BrokerConfig.from_url("mqtts://h?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&insecure=true")
    assert (cfg.port, cfg.tls, cfg.tls_insecure) == (8883, True, True)
    assert (cfg.ca_file, cfg.cert_file, cfg.key_file) == ("/etc/ca.pem", "/c.pem", "/k.pem")
    assert BrokerConfig.from_url("MQTTS://h:9999").port == 9999


def test_ipv6_host() -> None:
    cfg = BrokerConfig.from_url("mqtt://[::1]:1883")
    assert (cfg.host, cfg.port) == ("::1", 1883)


def test_embedded_url() -> None:
    cfg = BrokerConfig.from_url("embedded://")
    assert (cfg.embedded, cfg.port, cfg.host) == (True, 0, "127.0.0.1")
    assert (cfg.protocol, cfg.embedded_backend) == (MqttVersion.V5, EmbeddedBackend.AUTO)
    assert BrokerConfig.from_url("embedded://127.0.0.1:1884?client_id=x").port == 1884
    assert cfg.with_port(4242).port == 4242
    amqtt = BrokerConfig.from_url("embedded://?broker=amqtt&share_group=g&protocol=3.1.1")
    assert (amqtt.embedded_backend, amqtt.share_group) == (EmbeddedBackend.AMQTT, "g")
    assert amqtt.protocol is MqttVersion.V311


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "mqtt://, mqtts:// or embedded://"),
        ("http://h", "mqtt://, mqtts:// or embedded://"),
        ("broker:1883", "mqtt://, mqtts:// or embedded://"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "out of range"),
        ("mqtt://h:abc", "bad broker URL"),
        ("mqtt://h/path", "no path"),
        ("mqtt://h#frag", "no path or fragment"),
        ("mqtt://h?bogus=1", "unknown broker URL parameter"),
        ("mqtt://h?keepalive=1&keepalive=2", "repeated"),
        ("mqtt://h?keepalive", "bad broker URL"),
        ("mqtt://h?keepalive=soon", "keepalive must be an integer"),
        ("mqtt://h?keepalive=0", "keepalive must be 1-65535"),
        ("mqtt://h?session_expiry=-1", "session_expiry"),
        ("mqtt://h?protocol=4", "protocol must be 5 or 3.1.1"),
        ("mqtt://h?client_id=", "client id"),
        ("mqtt://h?client_id=a%20b", "client id"),
        ("mqtt://h?share_group=a/b", "share name"),
        ("mqtt://:pw@h", "password needs a username"),
        ("mqtt://h?ca=/ca.pem", "need an mqtts:// URL"),
        ("mqtt://h?insecure=true", "need an mqtts:// URL"),
        ("mqtts://h?insecure=maybe", "insecure must be true or false"),
        ("mqtts://h?cert=/c.pem", "both cert and key"),
        ("embedded://?broker=emqx", "broker must be auto, mosquitto or amqtt"),
        ("mqtt://h?broker=amqtt", "for embedded:// only"),
        ("embedded://u:p@", "no credentials"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        BrokerConfig.from_url(url)


def test_password_stays_out_of_errors_repr_and_logs() -> None:
    with pytest.raises(ValueError) as err:
        BrokerConfig.from_url("mqtt://gw:s3cret@h:99999")
    assert "s3cret" not in str(err.value)
    cfg = BrokerConfig.from_url("mqtt://gw:s3cret@h")
    assert "s3cret" not in repr(cfg)
    assert cfg.redacted() == "mqtt://gw:***@h:1883?client_id=waste-gateway"


def test_config_is_frozen() -> None:
    cfg = BrokerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]


def test_device_subscriptions_plain_and_shared() -> None:
    assert device_subscriptions(BrokerConfig()) == [
        "waste/v1/devices/+/telemetry",
        "waste/v1/devices/+/lock",
        "waste/v1/devices/+/status",
    ]
    cfg = BrokerConfig(share_group="gw")
    assert device_subscriptions(cfg, ["p/a/+", "p/+/status"]) == ["$share/gw/p/a/+", "p/+/status"]
    assert device_subscriptions(cfg) == [
        "$share/gw/waste/v1/devices/+/telemetry",
        "$share/gw/waste/v1/devices/+/lock",
        "waste/v1/devices/+/status",  # unshared: only so are retained statuses sent
    ]


def test_paho_transport_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="start the embedded broker first"):
        PahoTransport(BrokerConfig.from_url("embedded://"))
    with pytest.raises(ValueError, match="queue_size"):
        PahoTransport(BrokerConfig(), queue_size=0)
    idle: Transport = PahoTransport(BrokerConfig())
    assert not idle.connected
    assert idle.ack(InboundMessage(TOPIC, b"x", mid=1)) is False  # never started: no PUBACK
    assert idle.ack(InboundMessage(TOPIC, b"x", qos=0)) is True


def test_embedded_broker_config_needs_a_started_broker() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        EmbeddedBroker().config()


def test_inbound_message_is_frozen() -> None:
    msg = InboundMessage(TOPIC, b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.payload = b"y"  # type: ignore[misc]
    assert msg.received_at.utcoffset() is not None


@pytest.fixture
def fake() -> FakeTransport:
    """A started fake."""
    transport = FakeTransport()
    transport.start()
    return transport


def test_fake_delivers_injected_messages_in_order(fake: FakeTransport) -> None:
    sent = [fake.inject(TOPIC, f"m{i}".encode()) for i in range(5)]
    assert fake.get(0) == sent[0]
    assert fake.messages(timeout=0, limit=3) == sent[1:4]
    assert fake.messages(timeout=0) == sent[4:]
    assert fake.messages(timeout=0) == []
    assert fake.get(0) is None
    assert len({m.mid for m in sent}) == 5


def test_fake_records_acks_once(fake: FakeTransport) -> None:
    msg = fake.inject(TOPIC, b"x")
    assert fake.unacked == [msg]
    assert fake.ack(msg) is True
    assert fake.ack(msg) is False
    assert fake.acked == [msg]
    assert fake.unacked == []
    qos0 = fake.inject(TOPIC, b"y", qos=0)
    assert fake.ack(qos0) is True
    assert fake.acked == [msg]


def test_fake_refuses_acks_while_disconnected(fake: FakeTransport) -> None:
    msg = fake.inject(TOPIC, b"x")
    fake.stop()
    assert not fake.connected
    assert fake.ack(msg) is False
    fake.start()
    assert fake.ack(msg) is True


def test_fake_reconnect_redelivers_unacked_and_refuses_stale_acks(fake: FakeTransport) -> None:
    done, pending = fake.inject(TOPIC, b"done"), fake.inject(TOPIC, b"pending")
    assert fake.messages(timeout=0) == [done, pending]
    assert fake.ack(done)
    again = fake.reconnect()
    assert [(m.payload, m.dup) for m in again] == [(b"pending", True)]
    assert fake.ack(pending) is False  # the old connection's packet id means nothing now
    assert fake.get(0) == again[0]
    assert fake.ack(again[0]) is True
    assert fake.acked == [done, again[0]]


def test_fake_records_publishes(fake: FakeTransport) -> None:
    fake.publish("waste/v1/alerts/seal_tamper", b"{}")
    fake.publish("t", b"r", qos=0, retain=True)
    assert fake.published == [
        PublishedMessage("waste/v1/alerts/seal_tamper", b"{}", 1, False),
        PublishedMessage("t", b"r", 0, True),
    ]


class _StubClient:
    """Stands in for paho's client under PahoTransport's callbacks: records PUBACKs."""

    def __init__(self) -> None:
        self.pubacks: list[int] = []

    def subscribe(self, *_: object) -> None:
        """Accept the SUBSCRIBE."""

    def ack(self, mid: int, qos: int) -> MQTTErrorCode:
        """Record the PUBACK."""
        self.pubacks.append(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _deliver(gw: PahoTransport, stub: _StubClient, mid: int, payload: bytes) -> InboundMessage:
    packet = mqtt.MQTTMessage(mid=mid, topic=TOPIC.encode())
    packet.payload, packet.qos = payload, 1
    gw._on_message(stub, None, packet)  # type: ignore[arg-type]
    msg = gw.get(0)
    assert msg is not None
    return msg


def _connect(gw: PahoTransport, stub: _StubClient) -> None:
    flags = mqtt.ConnectFlags(session_present=True)
    gw._on_connect(stub, None, flags, ReasonCode(PacketTypes.CONNACK, "Success"), None)  # type: ignore[arg-type]


def test_paho_acks_only_on_the_connection_a_message_came_on() -> None:
    gw, stub = PahoTransport(BrokerConfig()), _StubClient()
    gw._client = stub  # type: ignore[assignment]
    _connect(gw, stub)
    first = _deliver(gw, stub, 5, b"a")
    assert (first.epoch, first.payload) == (1, b"a")
    assert gw.ack(first) is True
    reused = _deliver(gw, stub, 5, b"b")  # the broker may reuse an acknowledged packet id
    assert gw.ack(first) is False  # a repeated ack must not acknowledge the new message
    assert stub.pubacks == [5]
    gw._on_disconnect(stub, None, None, ReasonCode(PacketTypes.DISCONNECT), None)  # type: ignore[arg-type]
    assert gw.ack(reused) is False  # connection gone: the broker redelivers it
    _connect(gw, stub)
    assert gw.epoch == 2
    assert gw.ack(reused) is False  # never PUBACK an old id on the new connection
    again = _deliver(gw, stub, 9, b"b")
    assert gw.ack(again) is True
    assert stub.pubacks == [5, 9]
    assert gw.stale_acks == 3
