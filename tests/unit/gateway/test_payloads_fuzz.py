"""Hypothesis: ``decode`` never raises, and encode → decode is the identity."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.signing import encode_lock, encode_telemetry, public_key_bytes, sign
from gateway.payloads import (
    EARLIEST,
    FUTURE_TOLERANCE,
    MAX_SPEED_KMH,
    DeviceKey,
    Fix,
    LockEvent,
    LockEventKind,
    LockMessage,
    Rejection,
    TelemetryMessage,
    decode,
)
from tests.support.payloads import Decoded, decode_checked, only

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DEVICE = DeviceKey("DEV-0001", public_key_bytes(KEY), "veh-1")
NOW = datetime(2026, 11, 23, 8, 1, tzinfo=UTC)
TOPICS = [f"waste/v1/devices/DEV-0001/{c}" for c in ("telemetry", "lock", "status")]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


lookup = only(DEVICE)  # only DEV-0001 exists


def check(topic: str, raw: bytes) -> Decoded:
    """Decode and check the result is one of the promised types with sane values."""
    result = decode_checked(topic, raw, lookup, NOW)
    if isinstance(result, TelemetryMessage):
        for f in result.fixes:
            assert -90 <= f.lat <= 90
            assert -180 <= f.lon <= 180
            assert f.speed_kmh is None or 0 <= f.speed_kmh <= MAX_SPEED_KMH
            assert f.heading is None or 0 <= f.heading < 360
            assert f.hdop is None or (f.hdop >= 0 and math.isfinite(f.hdop))
            assert EARLIEST <= f.t <= NOW + FUTURE_TOLERANCE
    return result


@FUZZ
@given(topic=st.sampled_from([*TOPICS, "waste/v1/alerts/x", ""]), raw=st.binary(max_size=600))
def test_random_bytes(topic: str, raw: bytes) -> None:
    assert isinstance(check(topic, raw), Rejection)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-23T08:00:00Z", "sealed", "DEV-0001", "AAAA=="])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["device_id", "seq", "fixes", "lock", "sig", "t", "lat", "lon", "x"])
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@FUZZ
@given(topic=st.sampled_from(TOPICS), value=json_values)
def test_random_json(topic: str, value: Any) -> None:
    check(topic, json.dumps(value).encode())  # json.dumps writes NaN/Infinity literals


fix_members = st.fixed_dictionaries(
    {},
    optional={
        "t": st.sampled_from(["2026-11-23T08:00:00Z", "1999-01-01T00:00:00Z", "x"]) | json_scalars,
        "lat": st.floats(-100, 100) | json_scalars,
        "lon": st.floats(-200, 200) | json_scalars,
        "speed_kmh": st.floats(-10, 300) | st.none(),
        "heading": st.floats(-10, 400) | st.none(),
        "hdop": st.floats(-1, 50) | st.none(),
        "extra": json_scalars,
    },
)


@FUZZ
@given(fixes=st.lists(fix_members | json_values, max_size=4), seq=json_scalars)
def test_signed_random_fixes(fixes: list[Any], seq: Any) -> None:
    """Signed genuinely, so decoding gets past the signature into the fixes."""
    obj = {"device_id": "DEV-0001", "seq": seq, "fixes": fixes}
    try:
        raw = sign(obj, KEY)
    except ValueError:  # not representable in JCS (NaN, big ints): nothing to sign
        return
    check(TOPICS[0], raw)


@FUZZ
@given(event=st.dictionaries(st.sampled_from(["t", "lock_id", "event", "lat", "lon", "z"]),
                             json_values, max_size=6))  # fmt: skip
def test_signed_random_lock_events(event: dict[str, Any]) -> None:
    try:
        raw = sign({"device_id": "DEV-0001", "seq": 1, "lock": event}, KEY)
    except ValueError:
        return
    check(TOPICS[1], raw)


@FUZZ
@given(raw=st.binary(min_size=1, max_size=40), at=st.integers(min_value=0))
def test_corrupted_valid_payload(raw: bytes, at: int) -> None:
    valid = encode_telemetry("DEV-0001", 1, [Fix(NOW, 1.0, 2.0)], KEY)
    at %= len(valid)
    corrupted = valid[:at] + raw + valid[at + len(raw) :]
    result = check(TOPICS[0], corrupted)
    if corrupted != valid:
        assert isinstance(result, Rejection)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2026, 11, 23, 8, 6),
    timezones=st.just(UTC),
).map(lambda t: t.replace(microsecond=t.microsecond - t.microsecond % 1000))
fixes = st.builds(
    Fix,
    t=instants,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed_kmh=st.none() | st.floats(0, MAX_SPEED_KMH),
    heading=st.none() | st.floats(0, 360, exclude_max=True),
    hdop=st.none() | st.floats(0, 1e6),
)


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(0, 2**53 - 1), batch=st.lists(fixes, min_size=1, max_size=20))
def test_telemetry_round_trip(seq: int, batch: list[Fix]) -> None:
    result = decode(
        TOPICS[0], encode_telemetry("DEV-0001", seq, batch, KEY), lookup_device=lookup, now=NOW
    )
    assert isinstance(result, TelemetryMessage), result
    assert result.seq == seq
    assert result.fixes == tuple(batch)


@settings(max_examples=100, deadline=None)
@given(
    t=instants,
    lock_id=st.text(min_size=1, max_size=64).filter(str.isprintable),
    event=st.sampled_from(LockEventKind),
    where=st.none() | st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
)
def test_lock_round_trip(
    t: datetime, lock_id: str, event: LockEventKind, where: tuple[float, float] | None
) -> None:
    lat, lon = where if where else (None, None)
    sent = LockEvent(t, lock_id, event, lat, lon)
    result = decode(TOPICS[1], encode_lock("DEV-0001", 5, sent, KEY), lookup_device=lookup, now=NOW)
    assert isinstance(result, LockMessage), result
    assert result.lock == sent


def test_future_bound_is_inclusive() -> None:
    edge = NOW + FUTURE_TOLERANCE
    for t, accepted in ((edge, True), (edge + timedelta(milliseconds=1), False)):
        raw = encode_telemetry("DEV-0001", 1, [Fix(t, 0.0, 0.0)], KEY)
        result = decode(TOPICS[0], raw, lookup_device=lookup, now=NOW)
        assert isinstance(result, TelemetryMessage) is accepted
