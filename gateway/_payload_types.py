"""The values of device payload decoding: limits, reasons, verified messages (pure).

Re-exported by ``gateway.payloads``, which documents them; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from waste.ledger.canonical import MAX_SAFE_INTEGER

MAX_PAYLOAD_BYTES = 65536
MAX_FIXES = 500
MAX_LOCK_ID_CHARS = 64
MAX_SPEED_KMH = 250.0
MAX_SAFE_INT = MAX_SAFE_INTEGER
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


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
