"""Decoding and verification of device payloads (PROTOCOL.md §4), pure.

``decode`` turns one MQTT message into a frozen ``TelemetryMessage``,
``LockMessage`` or ``StatusMessage``, or a ``Rejection``; it never raises.
Checks run in this order, the first failure deciding the reason:

    oversized          payload over 64 KiB (65536 bytes), before any parsing
    bad_topic          not waste/v1/devices/{valid id}/{telemetry|lock|status}
    not_json           invalid UTF-8, not JSON, NaN/Infinity literals, nesting too deep
    malformed          (parsing) duplicate keys, integers beyond 2^53;
                       (envelope) members other than exactly device_id, seq, fixes|lock,
                       sig; seq not an integer in [0, 2^53); device_id or sig not strings
    impossible_value   (parsing) a number that overflows to infinity, e.g. 1e999
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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.topics import Channel, DeviceTopic, parse_device_topic
from waste.clock import ensure_utc, format_utc, parse_utc
from waste.errors import Invalid

MAX_PAYLOAD_BYTES = 65536
MAX_FIXES = 500
MAX_LOCK_ID_CHARS = 64
MAX_SPEED_KMH = 250.0
MAX_SAFE_INT = 2**53 - 1
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_TELEMETRY_KEYS = frozenset({"device_id", "seq", "fixes", "sig"})
_LOCK_KEYS = frozenset({"device_id", "seq", "lock", "sig"})
_FIX_KEYS = frozenset({"t", "lat", "lon", "speed_kmh", "heading", "hdop"})
_FIX_REQUIRED = frozenset({"t", "lat", "lon"})
_LOCK_EVENT_KEYS = frozenset({"t", "lock_id", "event", "lat", "lon"})
_LOCK_EVENT_REQUIRED = frozenset({"t", "lock_id", "event"})
_STATUS_KEYS = frozenset({"online", "t"})


class RejectReason(StrEnum):
    """Why a device message was rejected (the module docstring says when)."""

    OVERSIZED = "oversized"
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    MALFORMED = "malformed"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    LOOKUP_FAILED = "lookup_failed"
    BAD_SIGNATURE = "bad_signature"
    UNBOUND_DEVICE = "unbound_device"
    BAD_TIMESTAMP = "bad_timestamp"
    ANCIENT_TIMESTAMP = "ancient_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    IMPOSSIBLE_VALUE = "impossible_value"
    INTERNAL_ERROR = "internal_error"


class LockEventKind(StrEnum):
    """What an e-lock reports."""

    SEALED = "sealed"
    UNSEALED = "unsealed"
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"


_EVENTS = frozenset(kind.value for kind in LockEventKind)


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A registered device as decoding needs it: its raw Ed25519 key and its vehicle."""

    device_id: str
    public_key: bytes
    vehicle_id: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 raw bytes")


@dataclass(frozen=True, slots=True)
class Fix:
    """One position fix; ``t`` is aware UTC, speed in km/h, heading in degrees from north."""

    t: datetime
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading: float | None = None
    hdop: float | None = None


@dataclass(frozen=True, slots=True)
class LockEvent:
    """One e-lock event, with the position where it happened when the lock knows it."""

    t: datetime
    lock_id: str
    event: LockEventKind
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """A verified telemetry batch; ``raw_sha256`` is hex SHA-256 of the payload bytes."""

    device_id: str
    seq: int
    fixes: tuple[Fix, ...]
    raw_sha256: str
    vehicle_id: str


@dataclass(frozen=True, slots=True)
class LockMessage:
    """A verified e-lock event; ``raw_sha256`` is hex SHA-256 of the payload bytes."""

    device_id: str
    seq: int
    lock: LockEvent
    raw_sha256: str
    vehicle_id: str


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A device's (unsigned) online/offline status, with its own time when given."""

    device_id: str
    online: bool
    t: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that was not accepted, and why; ``device_id`` is the topic's, if any."""

    reason: RejectReason
    detail: str
    device_id: str | None

    @property
    def retryable(self) -> bool:
        """Whether the message itself may be fine and worth redelivering later."""
        return self.reason is RejectReason.LOOKUP_FAILED


Decoded = TelemetryMessage | LockMessage | StatusMessage


class _RejectError(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _fail(reason: RejectReason, detail: str) -> NoReturn:
    raise _RejectError(reason, detail)


def _show(value: object) -> str:
    """A short repr of attacker-controlled input for a rejection detail."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- strict JSON -------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                _fail(RejectReason.MALFORMED, f"duplicate key {_show(key)}")
            seen.add(key)
    return obj


def _constant(name: str) -> NoReturn:
    _fail(RejectReason.NOT_JSON, f"{name} is not a JSON value")


def _int(text: str) -> int:
    # 17+ digits are all beyond 2^53; checking length first also avoids int()'s digit limit.
    if len(text.lstrip("-")) > 16 or abs(value := int(text)) > MAX_SAFE_INT:
        _fail(RejectReason.MALFORMED, f"integer {_show(text)} is beyond 2^53")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _fail(RejectReason.IMPOSSIBLE_VALUE, f"number {_show(text)} is not finite")
    return value


def _parse_json(raw: bytes) -> object:
    """Parse strict JSON (UTF-8, no duplicate keys, no NaN, integers within 2^53)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(RejectReason.NOT_JSON, f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        _fail(RejectReason.NOT_JSON, f"not JSON: {exc.msg} at line {exc.lineno} col {exc.colno}")
    except RecursionError:
        _fail(RejectReason.NOT_JSON, "JSON nested too deeply")


# --- canonical form and signatures --------------------------------------------


def signing_input(obj: Mapping[str, Any]) -> bytes:
    """The bytes a device signs: RFC 8785 JCS of ``obj`` without its ``sig`` member."""
    return rfc8785.dumps({k: v for k, v in obj.items() if k != "sig"})


def _verify(obj: dict[str, Any], public_key: bytes) -> None:
    sig_text = obj["sig"]
    try:
        sig = base64.b64decode(sig_text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        _fail(RejectReason.BAD_SIGNATURE, "sig is not standard base64 with padding")
    if len(sig) != 64 or base64.b64encode(sig).decode("ascii") != sig_text:
        _fail(RejectReason.BAD_SIGNATURE, "sig is not the base64 of 64 bytes")
    try:
        message = signing_input(obj)
    except rfc8785.CanonicalizationError as exc:
        _fail(RejectReason.MALFORMED, f"not representable in RFC 8785: {exc}")
    except RecursionError:
        _fail(RejectReason.MALFORMED, "JSON nested too deeply")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    except InvalidSignature:
        _fail(RejectReason.BAD_SIGNATURE, "signature does not verify with the device's key")


# --- shapes ------------------------------------------------------------------


def _members(
    obj: object, allowed: frozenset[str], required: frozenset[str], where: str
) -> dict[str, Any]:
    if not isinstance(obj, dict):
        _fail(RejectReason.MALFORMED, f"{where} must be a JSON object")
    missing, extra = required - obj.keys(), obj.keys() - allowed
    if missing:
        _fail(RejectReason.MALFORMED, f"{where} lacks {', '.join(sorted(missing))}")
    if extra:
        _fail(RejectReason.MALFORMED, f"{where} has unknown member {_show(min(extra))}")
    return obj


def _seq(value: object) -> int:
    # JSON has one number type: 42 and 42.0 are the same value, and the same in JCS.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INT:
        _fail(RejectReason.MALFORMED, "seq must be an integer in [0, 2^53 - 1]")
    return value


def _time(value: object, where: str, now: datetime) -> datetime:
    if not isinstance(value, str):
        _fail(RejectReason.MALFORMED, f"{where} must be a string")
    try:
        t = parse_utc(value, field=where)
    except Invalid as exc:
        _fail(RejectReason.BAD_TIMESTAMP, exc.detail)
    if t < EARLIEST:
        _fail(RejectReason.ANCIENT_TIMESTAMP, f"{where} {value} is before {format_utc(EARLIEST)}")
    if t > now + FUTURE_TOLERANCE:
        _fail(RejectReason.FUTURE_TIMESTAMP, f"{where} {value} is > 5 min after {format_utc(now)}")
    return t


def _num(value: object, low: float, high: float, where: str, *, open_high: bool = False) -> float:
    """``value`` as a float if it is a number in [low, high] (or [low, high))."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        _fail(RejectReason.MALFORMED, f"{where} must be a number")
    if not (low <= value < high if open_high else low <= value <= high):
        span = f"[{low:g}, {high:g}{')' if open_high else ']'}"
        _fail(RejectReason.IMPOSSIBLE_VALUE, f"{where} = {value!r} is outside {span}")
    return float(value)


def _opt(
    value: object, low: float, high: float, where: str, *, open_high: bool = False
) -> float | None:
    return None if value is None else _num(value, low, high, where, open_high=open_high)


def _fix(obj: object, where: str, now: datetime) -> Fix:
    fix = _members(obj, _FIX_KEYS, _FIX_REQUIRED, where)
    return Fix(
        t=_time(fix["t"], f"{where}.t", now),
        lat=_num(fix["lat"], -90, 90, f"{where}.lat"),
        lon=_num(fix["lon"], -180, 180, f"{where}.lon"),
        speed_kmh=_opt(fix.get("speed_kmh"), 0, MAX_SPEED_KMH, f"{where}.speed_kmh"),
        heading=_opt(fix.get("heading"), 0, 360, f"{where}.heading", open_high=True),
        hdop=_opt(fix.get("hdop"), 0, math.inf, f"{where}.hdop"),
    )


def _fixes(value: object, now: datetime) -> tuple[Fix, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_FIXES:
        _fail(RejectReason.MALFORMED, f"fixes must be a list of 1-{MAX_FIXES} fixes")
    return tuple(_fix(f, f"fixes[{i}]", now) for i, f in enumerate(value))


def _lock(obj: object, now: datetime) -> LockEvent:
    lock = _members(obj, _LOCK_EVENT_KEYS, _LOCK_EVENT_REQUIRED, "lock")
    lock_id, event = lock["lock_id"], lock["event"]
    if not isinstance(lock_id, str) or not 0 < len(lock_id) <= MAX_LOCK_ID_CHARS:
        _fail(RejectReason.MALFORMED, f"lock.lock_id must be 1-{MAX_LOCK_ID_CHARS} characters")
    if not lock_id.isprintable():
        _fail(RejectReason.MALFORMED, "lock.lock_id has non-printable characters")
    if not isinstance(event, str) or event not in _EVENTS:
        _fail(RejectReason.MALFORMED, f"lock.event must be one of {', '.join(LockEventKind)}")
    if (lock.get("lat") is None) != (lock.get("lon") is None):
        _fail(RejectReason.MALFORMED, "lock.lat and lock.lon come together or not at all")
    return LockEvent(
        t=_time(lock["t"], "lock.t", now),
        lock_id=lock_id,
        event=LockEventKind(event),
        lat=_opt(lock.get("lat"), -90, 90, "lock.lat"),
        lon=_opt(lock.get("lon"), -180, 180, "lock.lon"),
    )


# --- decode ------------------------------------------------------------------


def _lookup(device_id: str, lookup_device: Callable[[str], DeviceKey | None]) -> DeviceKey:
    try:
        key = lookup_device(device_id)
    except Exception as exc:  # the registry's failure is not the message's fault
        _fail(RejectReason.LOOKUP_FAILED, f"lookup failed: {type(exc).__name__}: {exc}"[:200])
    if key is None:
        _fail(RejectReason.UNKNOWN_DEVICE, f"no registered device {device_id}")
    if not isinstance(key, DeviceKey) or key.device_id != device_id:
        _fail(RejectReason.LOOKUP_FAILED, "lookup_device returned no DeviceKey of this device")
    return key


def _decode_status(
    device_id: str, raw: bytes, lookup_device: Callable[[str], DeviceKey | None], now: datetime
) -> StatusMessage:
    obj = _members(_parse_json(raw), _STATUS_KEYS, frozenset({"online"}), "status")
    if not isinstance(obj["online"], bool):
        _fail(RejectReason.MALFORMED, "online must be true or false")
    _lookup(device_id, lookup_device)
    t = _time(obj["t"], "t", now) if "t" in obj else None
    return StatusMessage(device_id=device_id, online=obj["online"], t=t)


def _decode(
    parsed: DeviceTopic,
    raw: bytes,
    lookup_device: Callable[[str], DeviceKey | None],
    now: datetime,
) -> Decoded:
    if parsed.channel is Channel.STATUS:
        return _decode_status(parsed.device_id, raw, lookup_device, now)
    keys = _TELEMETRY_KEYS if parsed.channel is Channel.TELEMETRY else _LOCK_KEYS
    msg = _members(_parse_json(raw), keys, keys, "payload")
    seq = _seq(msg["seq"])
    if not isinstance(msg["device_id"], str) or not isinstance(msg["sig"], str):
        _fail(RejectReason.MALFORMED, "device_id and sig must be strings")
    if msg["device_id"] != parsed.device_id:
        _fail(
            RejectReason.TOPIC_MISMATCH, f"device_id {_show(msg['device_id'])} is not the topic's"
        )
    key = _lookup(parsed.device_id, lookup_device)
    _verify(msg, key.public_key)
    if key.vehicle_id is None:
        _fail(RejectReason.UNBOUND_DEVICE, f"device {key.device_id} is bound to no vehicle")
    digest = hashlib.sha256(raw).hexdigest()
    if parsed.channel is Channel.TELEMETRY:
        fixes = _fixes(msg["fixes"], now)
        return TelemetryMessage(key.device_id, seq, fixes, digest, key.vehicle_id)
    return LockMessage(key.device_id, seq, _lock(msg["lock"], now), digest, key.vehicle_id)


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
            _fail(RejectReason.NOT_JSON, f"payload is {type(raw).__name__}, not bytes")
        raw = bytes(raw)
        if len(raw) > MAX_PAYLOAD_BYTES:
            _fail(RejectReason.OVERSIZED, f"{len(raw)} bytes is over {MAX_PAYLOAD_BYTES}")
        if parsed is None:
            _fail(RejectReason.BAD_TOPIC, f"not a device topic: {_show(topic)}")
        return _decode(parsed, raw, lookup_device, ensure_utc(now))
    except _RejectError as rej:
        return Rejection(rej.reason, rej.detail, device_id)
    except Exception as exc:  # decode must never stop ingestion
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return Rejection(RejectReason.INTERNAL_ERROR, detail, device_id)
