"""``FakeTransport``: the in-memory ``Transport`` that tests drive (shipped with the code).

Re-exported by ``gateway.transport``; import it from there.
"""

from __future__ import annotations

import queue

from gateway._transport_types import InboundMessage, PublishedMessage, QueueReader


class FakeTransport(QueueReader):
    """An in-memory ``Transport`` for tests: inject messages, then look at acks and publishes."""

    def __init__(self) -> None:
        self._queue = queue.Queue()
        self._epoch = 1
        self._next_mid = 0
        self._connected = False
        self._delivered: dict[tuple[int, int], InboundMessage] = {}
        self.acked: list[InboundMessage] = []
        self.published: list[PublishedMessage] = []

    @property
    def connected(self) -> bool:
        """Whether ``start`` was called (and ``stop`` not since)."""
        return self._connected

    def start(self) -> None:
        """Mark the fake connected."""
        self._connected = True

    def stop(self) -> None:
        """Mark the fake disconnected."""
        self._connected = False

    def inject(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, dup: bool = False
    ) -> InboundMessage:
        """Deliver a message as if the broker had sent it; returns it."""
        self._next_mid = self._next_mid % 65535 + 1
        mid = self._next_mid
        msg = InboundMessage(topic, payload, qos, retain, mid, dup=dup, epoch=self._epoch)
        if qos > 0:
            self._delivered[(msg.epoch, msg.mid)] = msg
        self._queue.put(msg)
        return msg

    @property
    def unacked(self) -> list[InboundMessage]:
        """QoS 1+ messages delivered on the current connection and not acknowledged."""
        return list(self._delivered.values())

    def reconnect(self) -> list[InboundMessage]:
        """Simulate a dropped connection: unacked messages come again (dup) on a new one."""
        old = self.unacked
        self._delivered.clear()
        self._epoch += 1
        return [self.inject(m.topic, m.payload, qos=m.qos, retain=m.retain, dup=True) for m in old]

    def ack(self, msg: InboundMessage) -> bool:
        """Record the acknowledgement; False for a stale, unknown or repeated one."""
        if msg.qos == 0:
            return True
        if not self._connected or self._delivered.pop((msg.epoch, msg.mid), None) is None:
            return False
        self.acked.append(msg)
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Record the message in ``published``."""
        self.published.append(PublishedMessage(topic, bytes(payload), qos, retain))
