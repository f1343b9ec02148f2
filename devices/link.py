"""A device's connection to its broker: the small ``Link`` interface, paho's, and a fake.

The client sees three kinds of ``LinkEvent``: the link came up, went down, or the
broker acknowledged a message (by the handle ``publish`` returned). A link keeps
the messages handed to it and not yet acknowledged while it lives, and sends them
again when it reconnects (paho does so for QoS 1); a new link (after a restart)
knows nothing, and the client hands it everything unacknowledged again.

Paho's callbacks only put events on a queue: the client's own thread does the work.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from gateway.broker import BrokerConfig

__all__ = [
    "Acked",
    "Connected",
    "Disconnected",
    "FakeLink",
    "Link",
    "LinkError",
    "LinkEvent",
    "PahoLink",
    "Sent",
    "Will",
]

log = logging.getLogger(__name__)


class LinkError(RuntimeError):
    """A message could not be handed to the link."""


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes when the device vanishes."""

    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Connected:
    """The link is up (a new connection)."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The link went down; it reconnects by itself."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Acked:
    """The broker acknowledged the message ``publish`` returned ``handle`` for."""

    handle: int


LinkEvent = Connected | Disconnected | Acked


class Link(Protocol):
    """What the device client needs from an MQTT connection."""

    @property
    def connected(self) -> bool:
        """Whether the link is up right now."""
        ...

    def start(self, will: Will) -> None:
        """Connect in the background (and keep reconnecting), with this will."""
        ...

    def stop(self) -> None:
        """Disconnect cleanly (the broker does not publish the will)."""
        ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Hand a QoS 1 message to the link; a handle that a later ``Acked`` names."""
        ...

    def poll(self, timeout: float) -> list[LinkEvent]:
        """Events since the last poll; waits up to ``timeout`` seconds for the first."""
        ...


class _EventQueue:
    def __init__(self) -> None:
        self._events: queue.Queue[LinkEvent] = queue.Queue()

    def _put(self, event: LinkEvent) -> None:
        self._events.put(event)

    def poll(self, timeout: float) -> list[LinkEvent]:
        """Events since the last poll; waits up to ``timeout`` seconds for the first."""
        try:
            events = [
                self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
            ]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events


class PahoLink(_EventQueue):
    """A paho-mqtt 2 link: MQTT 3.1.1, QoS 1, clean session, reconnecting with backoff.

    MQTT 3.1.1 because every broker speaks it (the embedded one speaks nothing else),
    and a device needs nothing of MQTT 5. The client id is the device id.
    """

    def __init__(
        self,
        config: BrokerConfig,
        *,
        client_id: str,
        keepalive: int = 30,
        reconnect_delay: tuple[float, float] = (1.0, 30.0),
        max_inflight: int = 20,
    ) -> None:
        super().__init__()
        self.config = config
        self.client_id = client_id
        self.keepalive = keepalive
        self.reconnect_delay = reconnect_delay
        self.max_inflight = max_inflight
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()

    @property
    def connected(self) -> bool:
        """Whether the link is up right now."""
        return self._connected.is_set()

    def start(self, will: Will) -> None:
        """Connect in the background; paho retries until the broker answers."""
        if self._client is not None:
            raise RuntimeError("link already started")
        c = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(self.max_inflight)
        low, high = self.reconnect_delay
        client.reconnect_delay_set(min_delay=low, max_delay=high)  # type: ignore[arg-type]
        if c.username is not None:
            client.username_pw_set(c.username, c.password)
        if c.tls:
            ctx = ssl.create_default_context(cafile=c.ca_file)
            if c.tls_insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if c.cert_file is not None:
                ctx.load_cert_chain(c.cert_file, c.key_file)
            client.tls_set_context(ctx)
        client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.connect_async(c.host, c.port, self.keepalive)
        self._client = client
        client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly and stop paho's thread."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (the will fires)."""
        client, self._client = self._client, None
        if client is not None:
            self._drop(client)

    def suspend(self) -> None:
        """Lose the broker as a dead radio would: drop the connection without DISCONNECT
        (the will fires) and stay away until ``resume``; unacknowledged messages stay."""
        client = self._client
        if client is None:
            return
        self._drop(client)
        self._put(Disconnected("suspended"))

    def _drop(self, client: mqtt.Client) -> None:
        """Stop the network loop and close the socket without DISCONNECT (the will fires)."""
        client.loop_stop()
        if (sock := client.socket()) is not None:
            sock.close()
        self._connected.clear()

    def resume(self) -> None:
        """Come back after ``suspend``: reconnect in the background."""
        client = self._client
        if client is None:
            return
        client.loop_start()  # paho finds its socket dead and reconnects with backoff

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Hand a QoS 1 message to paho, which keeps it until PUBACK (across reconnects)."""
        client = self._client
        if client is None:
            raise LinkError("link not started")
        info = client.publish(topic, payload, qos=1, retain=retain)
        # Not connected: paho keeps a QoS 1 message and sends it when it reconnects.
        kept = (MQTTErrorCode.MQTT_ERR_NO_CONN, MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if info.rc is not MQTTErrorCode.MQTT_ERR_SUCCESS and info.rc not in kept:
            raise LinkError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("%s refused device %s: %s", self.config.redacted(), self.client_id, rc)
            return
        self._connected.set()
        self._put(Connected())

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connected.clear()
        self._put(Disconnected(str(rc)))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._put(Acked(mid))


@dataclass(frozen=True, slots=True)
class Sent:
    """A message as ``FakeLink`` delivered it to its pretend broker."""

    handle: int
    topic: str
    payload: bytes
    retain: bool
    dup: bool


class FakeLink(_EventQueue):
    """An in-memory ``Link`` for tests: bring it up or down, acknowledge what it delivered.

    Like paho, it keeps unacknowledged messages while it lives and delivers them again
    (``dup``) when it comes back up; messages handed while down wait for the next up.
    With ``auto_ack`` its broker acknowledges everything delivered at each ``poll``.
    """

    def __init__(self, *, up: bool = True, auto_ack: bool = False) -> None:
        super().__init__()
        self.auto_ack = auto_ack
        self.will: Will | None = None
        self.delivered: list[Sent] = []
        self.stopped = False
        self._up_on_start = up
        self._up = False
        self._next = 0
        self._unacked: dict[int, Sent] = {}
        self._queued: list[Sent] = []

    @property
    def connected(self) -> bool:
        """Whether the pretend connection is up."""
        return self._up

    def start(self, will: Will) -> None:
        """Remember the will; come up if created ``up``."""
        self.will = will
        if self._up_on_start:
            self.up()

    def stop(self) -> None:
        """Go down for good."""
        self._up = False
        self.stopped = True

    def up(self) -> None:
        """Connect: deliver what waited, then unacknowledged messages again."""
        if self._up:
            return
        self._up = True
        for sent in list(self._unacked.values()):
            self.delivered.append(
                Sent(sent.handle, sent.topic, sent.payload, sent.retain, dup=True)
            )
        waiting, self._queued = self._queued, []
        for sent in waiting:
            self._deliver(sent)
        self._put(Connected())

    def down(self) -> None:
        """Lose the connection (the device's messages stay with the link)."""
        if self._up:
            self._up = False
            self._put(Disconnected("fake"))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Deliver now if up, else on the next ``up``; the handle."""
        if self.stopped:
            raise LinkError("link stopped")
        self._next = self._next % 65535 + 1
        sent = Sent(self._next, topic, bytes(payload), retain, dup=False)
        if self._up:
            self._deliver(sent)
        else:
            self._queued.append(sent)
        return sent.handle

    def _deliver(self, sent: Sent) -> None:
        self.delivered.append(sent)
        self._unacked[sent.handle] = sent

    def poll(self, timeout: float) -> list[LinkEvent]:
        """Events since the last poll (acknowledging everything first if ``auto_ack``)."""
        if self.auto_ack:
            self.ack()
        return super().poll(timeout)

    @property
    def unacked(self) -> list[Sent]:
        """Delivered and not acknowledged, in order."""
        return list(self._unacked.values())

    def ack(self, count: int | None = None) -> int:
        """Acknowledge the oldest ``count`` (default all) delivered messages; how many."""
        if not self._up:
            return 0
        handles = list(self._unacked)[:count]
        for handle in handles:
            del self._unacked[handle]
            self._put(Acked(handle))
        return len(handles)
