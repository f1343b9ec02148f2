"""The values the ingest logic gets from a broker connection, and the ``Transport`` protocol.

Re-exported by ``gateway.transport``, which documents them; import them from there.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class TransportError(RuntimeError):
    """The broker refused the connection, or a publish could not be queued."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message received from the broker, as the ingest logic sees it."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    mid: int = 0
    received_at: datetime = field(default_factory=_utcnow)
    dup: bool = False
    epoch: int = 0  # the connection it arrived on; acks only count on that connection


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    """A message handed to ``FakeTransport.publish``."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Transport(Protocol):
    """What the ingest logic needs from a broker connection."""

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up right now."""
        ...

    def start(self) -> None:
        """Connect (and keep reconnecting) in the background."""
        ...

    def stop(self) -> None:
        """Disconnect cleanly; unacknowledged messages stay with the broker."""
        ...

    def get(self, timeout: float | None = None) -> InboundMessage | None:
        """The next message, or None after ``timeout`` seconds."""
        ...

    def messages(self, timeout: float, limit: int = 500) -> list[InboundMessage]:
        """A batch: waits up to ``timeout`` for the first message, then takes what is queued."""
        ...

    def ack(self, msg: InboundMessage) -> bool:
        """Acknowledge ``msg`` to the broker; False if its connection is gone (it comes again)."""
        ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue a message for the broker."""
        ...


class QueueReader:
    """``get`` and ``messages`` over a queue of inbound messages."""

    _queue: queue.Queue[InboundMessage]

    def get(self, timeout: float | None = None) -> InboundMessage | None:
        """The next message, or None after ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def messages(self, timeout: float, limit: int = 500) -> list[InboundMessage]:
        """A batch: waits up to ``timeout`` for the first message, then takes what is queued."""
        first = self.get(timeout)
        batch = [] if first is None else [first]
        while first is not None and len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch
