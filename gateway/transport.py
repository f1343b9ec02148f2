"""The MQTT adapter of the gateway: a small ``Transport`` protocol and its implementations.

The ingest logic sees only frozen ``InboundMessage`` values, never paho's types. It
acknowledges a QoS 1 message (PUBACK) only after committing what the message
carried, so a crash between receipt and commit leaves the message unacknowledged
in the broker's persistent session, which redelivers it when the gateway comes
back (ingest drops the copy it already stored by ``(device_id, seq)``).

A packet id only means something on the connection it arrived on: after a
reconnect the broker re-sends unacknowledged messages, possibly under other ids,
and may reuse an old id for a different message. Paho's ``ack(mid, qos)`` simply
sends a PUBACK on whatever connection is current, so ``PahoTransport`` stamps each
message with the connection it came on (``epoch``) and refuses acknowledgements
of an earlier connection, and acknowledges each id at most once. Paho drops
PUBACKs still queued for a dead socket when it reconnects.

Subscriptions (``device_subscriptions``): telemetry and e-lock events in the MQTT 5
shared-subscription group when one is set, the retained status topic always unshared.

The code lives in private modules: ``_transport_types`` (the values and the
protocol), ``_paho`` (``PahoTransport``), ``_fake_transport`` (``FakeTransport``).
"""

from __future__ import annotations

from gateway._fake_transport import FakeTransport
from gateway._paho import PahoTransport, device_subscriptions
from gateway._transport_types import InboundMessage, PublishedMessage, Transport, TransportError
from gateway.broker import BrokerConfig, MqttVersion

__all__ = [
    "BrokerConfig",
    "FakeTransport",
    "InboundMessage",
    "MqttVersion",
    "PahoTransport",
    "PublishedMessage",
    "Transport",
    "TransportError",
    "device_subscriptions",
]
