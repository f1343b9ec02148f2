"""Decoding device payloads in tests: a lookup of one device, and a decode that checks its promise.

``gateway.payloads.decode`` promises never to raise: every input becomes a decoded
message or a ``Rejection`` with a documented reason, never ``internal_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.payloads import (
    DeviceKey,
    LockMessage,
    Rejection,
    RejectReason,
    StatusMessage,
    TelemetryMessage,
    decode,
)

Decoded = TelemetryMessage | LockMessage | StatusMessage | Rejection
Lookup = Callable[[str], DeviceKey | None]


def only(device: DeviceKey) -> Lookup:
    """A ``lookup_device`` that knows ``device`` and no other."""

    def lookup(device_id: str) -> DeviceKey | None:
        return device if device_id == device.device_id else None

    return lookup


def decode_checked(topic: str, raw: bytes, lookup: Lookup, now: datetime) -> Decoded:
    """Decode, and check the answer is one of the promised kinds and no internal error."""
    result = decode(topic, raw, lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage | LockMessage | StatusMessage | Rejection)
    if isinstance(result, Rejection):
        assert result.reason is not RejectReason.INTERNAL_ERROR, result
    return result
