"""``PahoTransport``: the paho-mqtt 2 ``Transport`` (see ``gateway.transport``).

Re-exported by ``gateway.transport``; import it from there.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway._transport_types import InboundMessage, QueueReader, TransportError
from gateway.broker import BrokerConfig, MqttVersion
from gateway.topics import Channel, device_filter, shared

log = logging.getLogger("gateway.transport")  # the public module's name, as before the split

_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason "Unsupported protocol version" (3.1.1 code 1)


def device_subscriptions(settings: BrokerConfig, filters: Sequence[str] | None = None) -> list[str]:
    """The gateway's subscriptions: every device channel, shared when a group is set.

    A filter of the status channel (last level ``status``) is never shared: a broker
    sends retained messages to a new subscription only if it is not shared (MQTT 5
    §4.8.2), and the statuses are retained. Every gateway then gets every status; the
    presence store keeps one row of each state change (``waste/telemetry/service.py``).
    """
    plain = list(filters) if filters is not None else [device_filter(c) for c in Channel]
    group = settings.share_group
    if group is None:
        return plain
    return [f if f.rsplit("/", 1)[-1] == Channel.STATUS else shared(f, group) for f in plain]


class PahoTransport(QueueReader):
    """The paho-mqtt 2 ``Transport``: persistent session, QoS 1, manual acks, auto reconnect.

    Paho's callbacks run on its network thread and only turn packets into frozen
    ``InboundMessage`` values put on a bounded queue (plus connection bookkeeping
    and the non-blocking re-SUBSCRIBE after each CONNACK). When the queue is full
    the network thread waits: backpressure, never a dropped message. Under MQTT 5
    the CONNECT's Receive Maximum equals the queue size, so a compliant broker
    never has more unacknowledged messages out than the queue holds.
    """

    def __init__(
        self,
        settings: BrokerConfig,
        *,
        topics: Sequence[str] | None = None,
        queue_size: int = 1000,
        connect_timeout: float = 10.0,
    ) -> None:
        if settings.embedded and settings.port == 0:
            raise ValueError("start the embedded broker first, then pass settings.with_port(port)")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.settings = settings
        self.subscriptions = device_subscriptions(settings, topics)
        self.protocol = settings.protocol
        self.stale_acks = 0
        self._queue = queue.Queue(maxsize=queue_size)
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._epoch = 0
        self._connected = False
        self._unacked: dict[int, InboundMessage] = {}  # by packet id, this connection
        self._stopping = threading.Event()
        self._connack = threading.Event()
        self._ready = threading.Event()
        self._refusal: str | None = None
        self._client: mqtt.Client | None = None

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up and its subscriptions granted right now
        (so ``/healthz`` says ready only once messages can arrive)."""
        with self._lock:
            return self._connected and self._ready.is_set()

    @property
    def epoch(self) -> int:
        """How many connections this transport has made (the current one's number)."""
        with self._lock:
            return self._epoch

    def wait_ready(self, timeout: float) -> bool:
        """Wait until connected and subscribed; False on timeout."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Connect in the background and wait up to ``connect_timeout`` for the subscription.

        Falls back to MQTT 3.1.1 when the broker answers CONNACK "unsupported protocol
        version" (amqtt instead chokes on MQTT 5 CONNECT properties: use 3.1.1 for it).
        Raises ``TransportError`` when the broker refuses the connection or subscription;
        if it is unreachable, returns and keeps retrying with backoff.
        """
        if self._client is not None:
            raise RuntimeError("transport already started")
        self._stopping.clear()
        while True:
            self._refusal = None
            self._connack.clear()
            self._client = client = self._make_client()
            client.loop_start()
            if not self._connack.wait(self._connect_timeout):
                log.warning(
                    "no CONNACK from %s yet; retrying in the background (a 3.1.1-only broker"
                    " that hangs on MQTT 5, such as amqtt, needs ?protocol=3.1.1)",
                    self._where,
                )
                return
            if self._refusal is None:
                self._ready.wait(self._connect_timeout)
            if self._refusal is None:
                return
            refusal = self._refusal
            self._shutdown(clean=False)
            if refusal.startswith(f"{_UNSUPPORTED_PROTOCOL}:") and self.protocol is MqttVersion.V5:
                log.warning("%s refused MQTT 5; falling back to MQTT 3.1.1", self._where)
                self.protocol = MqttVersion.V311
                self._stopping.clear()
                continue
            raise TransportError(f"{self._where} refused the gateway: {refusal}")

    def stop(self) -> None:
        """Disconnect cleanly; the broker keeps the session and unacknowledged messages."""
        self._shutdown(clean=True)

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (tests and drills)."""
        self._shutdown(clean=False)

    def ack(self, msg: InboundMessage) -> bool:
        """PUBACK ``msg`` on the connection it came on, once; False (and no packet) otherwise."""
        if msg.qos == 0:
            return True
        with self._lock:
            client = self._client
            current = self._connected and msg.epoch == self._epoch
            # Equality, not just the id: a repeated ack must not PUBACK a reused packet id.
            if client is None or not current or self._unacked.get(msg.mid) != msg:
                self.stale_acks += 1
                return False
            del self._unacked[msg.mid]
            rc = client.ack(msg.mid, msg.qos)
        return rc is MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue a message; QoS 1+ messages wait in memory across reconnects."""
        client = self._client
        if client is None:
            raise TransportError("transport not started")
        rc = client.publish(topic, payload, qos=qos, retain=retain).rc
        if rc is not MQTTErrorCode.MQTT_ERR_SUCCESS and not (
            rc is MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0
        ):
            raise TransportError(f"publish to {topic!r} failed: {mqtt.error_string(rc)}")

    def __enter__(self) -> PahoTransport:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _where(self) -> str:
        return self.settings.redacted()

    def _make_client(self) -> mqtt.Client:
        s, v5 = self.settings, self.protocol is MqttVersion.V5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set_context(self._ssl_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry
            props.ReceiveMaximum = min(self._queue.maxsize, 65535)
        # clean_start=False also on the first connect: resume what a previous process left.
        client.connect_async(s.host, s.port, s.keepalive, clean_start=False, properties=props)
        return client

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.settings
        ctx = ssl.create_default_context(cafile=s.ca_file)
        if s.tls_insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.cert_file is not None:
            ctx.load_cert_chain(s.cert_file, s.key_file)
        return ctx

    def _shutdown(self, *, clean: bool) -> None:
        self._stopping.set()
        client, self._client = self._client, None
        with self._lock:
            self._connected = False
        self._ready.clear()
        if client is None:
            return
        if clean:
            client.disconnect()
        client.loop_stop()
        if not clean and (sock := client.socket()) is not None:
            sock.close()
        while self.get(0) is not None:
            pass  # unacked: the broker has them and redelivers to the session

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            log.error("%s refused the connection: %s", self._where, rc)
            self._refusal = f"{rc.value}: {rc}"
            self._connack.set()
            return
        with self._lock:
            self._epoch += 1
            self._connected = True
            self._unacked.clear()
        log.info("connected to %s (session present: %s)", self._where, flags.session_present)
        # Subscribing again is idempotent and restores subscriptions of a lost session.
        if self.protocol is MqttVersion.V5:
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(t, opts) for t in self.subscriptions])
        else:
            client.subscribe([(t, 1) for t in self.subscriptions])
        self._connack.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        if refused := [str(c) for c in codes if c.is_failure]:
            log.error("%s refused subscriptions %s: %s", self._where, self.subscriptions, refused)
            self._refusal = f"subscription refused: {refused}"
        self._ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self._connected = False
        self._ready.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from %s (%s); reconnecting", self._where, rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        msg = InboundMessage(
            topic=m.topic,
            payload=bytes(m.payload),
            qos=m.qos,
            retain=bool(m.retain),
            mid=m.mid,
            dup=bool(m.dup),
            epoch=self._epoch,  # written only on this (paho's network) thread
        )
        if msg.qos > 0:
            with self._lock:
                self._unacked[msg.mid] = msg
        while not self._stopping.is_set():
            try:
                self._queue.put(msg, timeout=0.2)
                return
            except queue.Full:
                continue
