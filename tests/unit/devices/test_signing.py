"""The device-side encoders: canonical bytes, size limits, status payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.signing import encode_status, encode_telemetry, fix_to_wire, public_key_bytes
from gateway.payloads import MAX_FIXES, MAX_PAYLOAD_BYTES, Fix

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
T = datetime(2026, 11, 23, 8, 0, 0, 250_000, tzinfo=UTC)


def test_wire_fix_leaves_out_unknowns_and_keeps_milliseconds() -> None:
    assert fix_to_wire(Fix(T, 1.5, -2.0)) == {
        "t": "2026-11-23T08:00:00.250Z",
        "lat": 1.5,
        "lon": -2.0,
    }


def test_payload_is_canonical_json() -> None:
    raw = encode_telemetry("DEV-1", 3, [Fix(T, 1.5, -2.0, heading=90.0)], KEY)
    assert raw.startswith(b'{"device_id":"DEV-1","fixes":[{"heading":90,"lat":1.5,"lon":-2,')
    assert list(json.loads(raw)) == ["device_id", "fixes", "seq", "sig"]


def test_a_batch_over_64_kib_is_refused_before_sending() -> None:
    wide = Fix(
        T,
        -12.345678901234567,
        -123.45678901234567,
        123.45678901234567,
        359.12345678901234,
        12.345678901234567,
    )
    with pytest.raises(ValueError, match=f"over {MAX_PAYLOAD_BYTES}"):
        encode_telemetry("DEV-1", 1, [wide] * MAX_FIXES, KEY)


def test_status_payloads() -> None:
    assert encode_status(True) == b'{"online":true}'
    assert encode_status(False, t=T) == b'{"online":false,"t":"2026-11-23T08:00:00.250Z"}'


def test_public_key_is_raw_32_bytes() -> None:
    assert len(public_key_bytes(KEY)) == 32
