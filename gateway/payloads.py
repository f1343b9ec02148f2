"""Decoding and verification of device payloads (PROTOCOL.md §4), pure.

The JSON reader is ``waste.ledger.canonical.loads_strict``, its refusals sorted into
the reasons below. ``decode`` turns one MQTT message into a frozen ``TelemetryMessage``,
``LockMessage`` or ``StatusMessage``, or a ``Rejection``; it never raises.
Checks run in this order, the first failure deciding the reason:

    oversized          payload over 64 KiB (65536 bytes), before any parsing
    bad_topic          not waste/v1/devices/{valid id}/{telemetry|lock|status}
    not_json           invalid UTF-8, not JSON, NaN/Infinity literals, nesting too deep
    malformed          (parsing) duplicate keys, integers beyond 2^53, lone surrogates;
                       (envelope) members other than exactly device_id, seq, fixes|lock,
                       sig; seq not an integer in [0, 2^53); device_id or sig not strings
    impossible_value   (parsing) a fraction or exponent beyond ±(2^53 - 1), e.g. 1e999
    topic_mismatch     payload ``device_id`` differs from the topic's
    unknown_device     ``lookup_device`` returned None
    lookup_failed      ``lookup_device`` raised (``Rejection.retryable``: the device may exist)
    bad_signature      ``sig`` not b64 of 64 bytes, or not Ed25519 over JCS(payload - sig)
    unbound_device     a genuinely signed message from a device bound to no vehicle

then for each fix (or the lock event), member by member:

    malformed          not an object, missing or unknown members, wrong types, ``fixes``
                       empty or over MAX_FIXES (500), unknown ``event``, bad ``lock_id``
    bad_timestamp      ``t`` not ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` or not a real instant
    ancient_timestamp  ``t`` before 2000-01-01T00:00:00Z
    future_timestamp   ``t`` more than 5 minutes after ``now``
    impossible_value   lat outside [-90, 90], lon outside [-180, 180], speed_kmh outside
                       [0, 250], heading outside [0, 360), hdop < 0

``internal_error`` means a bug here; it is returned rather than raised.
Optional members (speed_kmh, heading, hdop; the lock's lat and lon, which come
together) may be absent or null. ``lock_id`` is 1-64 printable characters.

Status messages are not signed (the will is fixed at connect time): they are
``{"online": bool}`` with an optional ``"t"``, from a known device.
Duplicate ``(device_id, seq)`` detection belongs to storage, not here.

This module is the public API (``__all__``); the values live in ``_payload_types``,
the checks in ``_payload_checks``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from gateway._payload_checks import (
    LOCK_KEYS,
    STATUS_KEYS,
    TELEMETRY_KEYS,
    RejectError,
    fail,
    fixes,
    instant,
    lock_event,
    members,
    parse_json,
    seq_number,
    show,
    signing_input,
    verify,
)
from gateway._payload_types import (
    EARLIEST,
    FUTURE_TOLERANCE,
    MAX_FIXES,
    MAX_LOCK_ID_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_SAFE_INT,
    MAX_SPEED_KMH,
    Decoded,
    DeviceKey,
    Fix,
    LockEvent,
    LockEventKind,
    LockMessage,
    Rejection,
    RejectReason,
    StatusMessage,
    TelemetryMessage,
)
from gateway.topics import Channel, DeviceTopic, parse_device_topic
from waste.clock import ensure_utc

__all__ = [
    "EARLIEST",
    "FUTURE_TOLERANCE",
    "MAX_FIXES",
    "MAX_LOCK_ID_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_SAFE_INT",
    "MAX_SPEED_KMH",
    "Decoded",
    "DeviceKey",
    "Fix",
    "LockEvent",
    "LockEventKind",
    "LockMessage",
    "RejectReason",
    "Rejection",
    "StatusMessage",
    "TelemetryMessage",
    "decode",
    "signing_input",
]


def _lookup(device_id: str, lookup_device: Callable[[str], DeviceKey | None]) -> DeviceKey:
    try:
        key = lookup_device(device_id)
    except Exception as exc:  # the registry's failure is not the message's fault
        fail(RejectReason.LOOKUP_FAILED, f"lookup failed: {type(exc).__name__}: {exc}"[:200])
    if key is None:
        fail(RejectReason.UNKNOWN_DEVICE, f"no registered device {device_id}")
    if not isinstance(key, DeviceKey) or key.device_id != device_id:
        fail(RejectReason.LOOKUP_FAILED, "lookup_device returned no DeviceKey of this device")
    return key


def _decode_status(
    device_id: str, raw: bytes, lookup_device: Callable[[str], DeviceKey | None], now: datetime
) -> StatusMessage:
    obj = members(parse_json(raw), STATUS_KEYS, frozenset({"online"}), "status")
    if not isinstance(obj["online"], bool):
        fail(RejectReason.MALFORMED, "online must be true or false")
    _lookup(device_id, lookup_device)
    t = instant(obj["t"], "t", now) if "t" in obj else None
    return StatusMessage(device_id=device_id, online=obj["online"], t=t)


def _decode(
    parsed: DeviceTopic,
    raw: bytes,
    lookup_device: Callable[[str], DeviceKey | None],
    now: datetime,
) -> Decoded:
    if parsed.channel is Channel.STATUS:
        return _decode_status(parsed.device_id, raw, lookup_device, now)
    keys = TELEMETRY_KEYS if parsed.channel is Channel.TELEMETRY else LOCK_KEYS
    msg = members(parse_json(raw), keys, keys, "payload")
    seq = seq_number(msg["seq"])
    if not isinstance(msg["device_id"], str) or not isinstance(msg["sig"], str):
        fail(RejectReason.MALFORMED, "device_id and sig must be strings")
    if msg["device_id"] != parsed.device_id:
        fail(RejectReason.TOPIC_MISMATCH, f"device_id {show(msg['device_id'])} is not the topic's")
    key = _lookup(parsed.device_id, lookup_device)
    verify(msg, key.public_key)
    if key.vehicle_id is None:
        fail(RejectReason.UNBOUND_DEVICE, f"device {key.device_id} is bound to no vehicle")
    digest = hashlib.sha256(raw).hexdigest()
    if parsed.channel is Channel.TELEMETRY:
        batch = fixes(msg["fixes"], now)
        return TelemetryMessage(key.device_id, seq, batch, digest, key.vehicle_id)
    return LockMessage(key.device_id, seq, lock_event(msg["lock"], now), digest, key.vehicle_id)


def decode(
    topic: str,
    raw: bytes,
    *,
    lookup_device: Callable[[str], DeviceKey | None],
    now: datetime,
) -> Decoded | Rejection:
    """Decode and verify one device message; never raises (see the module docstring)."""
    device_id = None
    try:
        parsed = parse_device_topic(topic) if isinstance(topic, str) else None
        device_id = parsed.device_id if parsed else None
        if not isinstance(raw, bytes | bytearray | memoryview):
            fail(RejectReason.NOT_JSON, f"payload is {type(raw).__name__}, not bytes")
        raw = bytes(raw)
        if len(raw) > MAX_PAYLOAD_BYTES:
            fail(RejectReason.OVERSIZED, f"{len(raw)} bytes is over {MAX_PAYLOAD_BYTES}")
        if parsed is None:
            fail(RejectReason.BAD_TOPIC, f"not a device topic: {show(topic)}")
        return _decode(parsed, raw, lookup_device, ensure_utc(now))
    except RejectError as rej:
        return Rejection(rej.reason, rej.detail, device_id)
    except Exception as exc:  # decode must never stop ingestion
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return Rejection(RejectReason.INTERNAL_ERROR, detail, device_id)
