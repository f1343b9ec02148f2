"""Device-side payload encoding and signing (PROTOCOL.md §4).

Payloads are written as RFC 8785 canonical JSON, ``sig`` included: compact,
deterministic, and exactly what ``gateway.payloads.decode`` accepts.
Encoders raise ``ValueError`` for what the server would reject as malformed
or oversized (so a store-and-forward client knows to send fewer fixes); value
ranges and timestamps are the server's to judge.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.payloads import (
    MAX_FIXES,
    MAX_PAYLOAD_BYTES,
    MAX_SAFE_INT,
    Fix,
    LockEvent,
    LockEventKind,
    signing_input,
)
from gateway.topics import is_valid_device_id
from waste.clock import format_utc

__all__ = [
    "encode_lock",
    "encode_status",
    "encode_telemetry",
    "fix_to_wire",
    "lock_to_wire",
    "public_key_bytes",
    "sign",
]


def fix_to_wire(fix: Fix) -> dict[str, Any]:
    """The JSON object of a fix (optional members left out when None)."""
    wire: dict[str, Any] = {"t": format_utc(fix.t), "lat": fix.lat, "lon": fix.lon}
    for name in ("speed_kmh", "heading", "hdop"):
        value = getattr(fix, name)
        if value is not None:
            wire[name] = value
    return wire


def lock_to_wire(lock: LockEvent) -> dict[str, Any]:
    """The JSON object of an e-lock event (position left out when unknown)."""
    wire: dict[str, Any] = {
        "t": format_utc(lock.t),
        "lock_id": lock.lock_id,
        "event": LockEventKind(lock.event).value,
    }
    if (lock.lat is None) != (lock.lon is None):
        raise ValueError("a lock event has both lat and lon, or neither")
    if lock.lat is not None:
        wire["lat"], wire["lon"] = lock.lat, lock.lon
    return wire


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key that the server registers for this device."""
    return private_key.public_key().public_bytes_raw()


def sign(obj: Mapping[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """``obj`` plus its ``sig`` member, as canonical JSON bytes."""
    sig = private_key.sign(signing_input(obj))
    signed = {k: v for k, v in obj.items() if k != "sig"}
    signed["sig"] = base64.b64encode(sig).decode("ascii")
    payload = rfc8785.dumps(signed)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload would be {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    return payload


def _envelope(device_id: str, seq: int) -> dict[str, Any]:
    if not is_valid_device_id(device_id):
        raise ValueError(f"not a valid device id: {device_id[:80]!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INT:
        raise ValueError("seq is an integer in [0, 2^53 - 1]")
    return {"device_id": device_id, "seq": seq}


def encode_telemetry(
    device_id: str, seq: int, fixes: Sequence[Fix], private_key: Ed25519PrivateKey
) -> bytes:
    """A signed telemetry payload carrying ``fixes`` (1 to MAX_FIXES of them)."""
    if not 0 < len(fixes) <= MAX_FIXES:
        raise ValueError(f"a telemetry message carries 1-{MAX_FIXES} fixes, not {len(fixes)}")
    obj = _envelope(device_id, seq)
    obj["fixes"] = [fix_to_wire(fix) for fix in fixes]
    return sign(obj, private_key)


def encode_lock(device_id: str, seq: int, lock: LockEvent, private_key: Ed25519PrivateKey) -> bytes:
    """A signed e-lock payload carrying ``lock``."""
    obj = _envelope(device_id, seq)
    obj["lock"] = lock_to_wire(lock)
    return sign(obj, private_key)


def encode_status(online: bool, *, t: datetime | None = None) -> bytes:
    """The (unsigned) retained status or will payload ``{"online": ...}``."""
    obj: dict[str, Any] = {"online": bool(online)}
    if t is not None:
        obj["t"] = format_utc(t)
    return rfc8785.dumps(obj)
