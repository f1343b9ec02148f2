"""Every rejection reason, the accepted shapes, and the canonical-form vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.signing import encode_lock, encode_status, encode_telemetry, sign
from gateway.payloads import (
    MAX_FIXES,
    MAX_PAYLOAD_BYTES,
    DeviceKey,
    Fix,
    LockEvent,
    LockEventKind,
    LockMessage,
    Rejection,
    RejectReason,
    StatusMessage,
    TelemetryMessage,
    decode,
    signing_input,
)

TOPIC = "waste/v1/devices/DEV-0001/telemetry"
LOCK_TOPIC = "waste/v1/devices/DEV-0001/lock"
STATUS_TOPIC = "waste/v1/devices/DEV-0001/status"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
Lookup = Callable[[str], DeviceKey | None]
Keys = tuple[Ed25519PrivateKey, Ed25519PrivateKey]


def fix(**changes: Any) -> dict[str, Any]:
    """The sample fix of PROTOCOL.md §4, with ``changes`` (None removes a member)."""
    wire: dict[str, Any] = {
        "t": "2026-11-23T08:00:00Z",
        "lat": 29.3061,
        "lon": 120.0752,
        "speed_kmh": 41.5,
        "heading": 87,
        "hdop": 0.9,
    }
    wire.update(changes)
    return {k: v for k, v in wire.items() if v is not None}


def lock(**changes: Any) -> dict[str, Any]:
    """The sample e-lock event of PROTOCOL.md §4, with ``changes``."""
    wire: dict[str, Any] = {
        "t": "2026-11-23T08:05:00Z",
        "lock_id": "SEAL-7781",
        "event": "sealed",
        "lat": 29.3061,
        "lon": 120.0752,
    }
    wire.update(changes)
    return {k: v for k, v in wire.items() if v is not None}


def telemetry(k: Ed25519PrivateKey, *fixes: dict[str, Any], **envelope: Any) -> bytes:
    """A telemetry payload of DEV-0001 signed with ``k`` (fixes default to the sample)."""
    obj: dict[str, Any] = {"device_id": "DEV-0001", "seq": 42, "fixes": list(fixes) or [fix()]}
    obj.update(envelope)
    return sign(obj, k)


def lock_payload(k: Ed25519PrivateKey, event: dict[str, Any]) -> bytes:
    """An e-lock payload of DEV-0001 signed with ``k``."""
    return sign({"device_id": "DEV-0001", "seq": 43, "lock": event}, k)


def unsigned(obj: dict[str, Any]) -> bytes:
    """``obj`` as JSON with a syntactically valid but wrong signature."""
    return json.dumps({**obj, "sig": base64.b64encode(bytes(64)).decode()}).encode()


def reject(raw: bytes, lookup: Lookup, now: datetime, topic: str = TOPIC) -> Rejection:
    """Decode, insisting on a rejection."""
    result = decode(topic, raw, lookup_device=lookup, now=now)
    assert isinstance(result, Rejection), result
    return result


def build_then_reject(*cases: tuple[str, str, Callable[[Keys], bytes]]) -> list[Any]:
    """Parametrize (topic, build) pairs under the given ids."""
    return [pytest.param(topic, build, id=name) for name, topic, build in cases]


WRONG_SIG_LEN = base64.b64encode(bytes(63)).decode()

CASES: dict[RejectReason, list[Any]] = {
    RejectReason.OVERSIZED: build_then_reject(
        ("1MiB", TOPIC, lambda ks: b"{" * (1 << 20)),
        ("65537 bytes", TOPIC, lambda ks: telemetry(ks[0]).ljust(MAX_PAYLOAD_BYTES + 1)),
    ),
    RejectReason.BAD_TOPIC: build_then_reject(
        ("alerts", "waste/v1/alerts/seal_tamper", lambda ks: telemetry(ks[0])),
        ("channel", "waste/v1/devices/DEV-0001/gps", lambda ks: telemetry(ks[0])),
        ("wildcard id", "waste/v1/devices/+/telemetry", lambda ks: telemetry(ks[0])),
        ("v2", "waste/v2/devices/DEV-0001/telemetry", lambda ks: telemetry(ks[0])),
    ),
    RejectReason.NOT_JSON: build_then_reject(
        ("empty", TOPIC, lambda ks: b""),
        ("garbage", TOPIC, lambda ks: bytes(range(256))),
        ("invalid utf-8", TOPIC, lambda ks: b'{"device_id": "DEV-\xff"}'),
        ("utf-8 surrogate", TOPIC, lambda ks: b'{"x": "\xed\xa0\x80"}'),
        ("bom", TOPIC, lambda ks: b"\xef\xbb\xbf" + telemetry(ks[0])),
        ("NaN", TOPIC, lambda ks: telemetry(ks[0]).replace(b'"hdop":0.9', b'"hdop":NaN')),
        ("Infinity", TOPIC, lambda ks: b'{"lat": -Infinity}'),
        ("truncated", TOPIC, lambda ks: telemetry(ks[0])[:-1]),
        ("deep", TOPIC, lambda ks: b"[" * 30_000 + b"]" * 30_000),
        ("deep object", TOPIC, lambda ks: b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        ("status garbage", STATUS_TOPIC, lambda ks: b"online"),
    ),
    RejectReason.MALFORMED: build_then_reject(
        ("duplicate key", TOPIC, lambda ks: b'{"seq": 1, "seq": 2}'),
        (
            "duplicate key after signing",
            TOPIC,
            lambda ks: telemetry(ks[0]).replace(b'"seq":42', b'"seq":42,"seq":42'),
        ),
        ("int beyond 2^53", TOPIC, lambda ks: _seq(telemetry(ks[0]), b"9007199254740992")),
        ("negative int beyond", TOPIC, lambda ks: _seq(telemetry(ks[0]), b"-9007199254740992")),
        ("5000-digit int", TOPIC, lambda ks: _seq(telemetry(ks[0]), b"9" * 5000)),
        ("escaped lone surrogate", TOPIC, lambda ks: b'{"device_id": "\\ud800"}'),
        ("array", TOPIC, lambda ks: b"[1, 2]"),
        ("missing sig", TOPIC, lambda ks: _json({"device_id": "DEV-0001", "seq": 1, "fixes": []})),
        ("extra member", TOPIC, lambda ks: telemetry(ks[0], vehicle="X")),
        ("lock on telemetry", TOPIC, lambda ks: lock_payload(ks[0], lock())),
        ("negative seq", TOPIC, lambda ks: telemetry(ks[0], seq=-1)),
        ("bool seq", TOPIC, lambda ks: telemetry(ks[0], seq=True)),
        ("fractional seq", TOPIC, lambda ks: telemetry(ks[0], seq=1.5)),
        (
            "sig not string",
            TOPIC,
            lambda ks: _json({"device_id": "DEV-0001", "seq": 1, "fixes": [fix()], "sig": 7}),
        ),
        (
            "empty fixes",
            TOPIC,
            lambda ks: sign({"device_id": "DEV-0001", "seq": 1, "fixes": []}, ks[0]),
        ),
        ("too many fixes", TOPIC, lambda ks: telemetry(ks[0], *[fix()] * (MAX_FIXES + 1))),
        ("fixes not a list", TOPIC, lambda ks: telemetry(ks[0], fixes={"0": fix()})),
        ("fix not object", TOPIC, lambda ks: telemetry(ks[0], [29.3, 120.0])),  # type: ignore[arg-type]
        ("fix missing lat", TOPIC, lambda ks: telemetry(ks[0], fix(lat=None))),
        ("fix extra member", TOPIC, lambda ks: telemetry(ks[0], fix(alt=12))),
        ("lat as string", TOPIC, lambda ks: telemetry(ks[0], fix(lat="29.3061"))),
        ("speed as bool", TOPIC, lambda ks: telemetry(ks[0], fix(speed_kmh=True))),
        ("t as number", TOPIC, lambda ks: telemetry(ks[0], fix(t=1795420800))),
        ("unknown event", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(event="opened"))),
        ("empty lock_id", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(lock_id=""))),
        ("control char lock_id", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(lock_id="A\nB"))),
        ("long lock_id", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(lock_id="S" * 65))),
        ("lat without lon", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(lon=None))),
        ("status extra", STATUS_TOPIC, lambda ks: b'{"online": true, "device_id": "DEV-0001"}'),
        ("status not bool", STATUS_TOPIC, lambda ks: b'{"online": 1}'),
        ("status t number", STATUS_TOPIC, lambda ks: b'{"online": false, "t": 0}'),
    ),
    RejectReason.TOPIC_MISMATCH: build_then_reject(
        (
            "other device's topic",
            "waste/v1/devices/DEV-0002/telemetry",
            lambda ks: telemetry(ks[0]),
        ),
        ("unknown id in payload", TOPIC, lambda ks: telemetry(ks[0], device_id="DEV-0009")),
    ),
    RejectReason.UNKNOWN_DEVICE: build_then_reject(
        (
            "unregistered",
            "waste/v1/devices/DEV-9/telemetry",
            lambda ks: telemetry(ks[0], device_id="DEV-9"),
        ),
        ("status", "waste/v1/devices/DEV-9/status", lambda ks: encode_status(True)),
    ),
    RejectReason.BAD_SIGNATURE: build_then_reject(
        ("another device's key", TOPIC, lambda ks: telemetry(ks[1])),
        (
            "zero signature",
            TOPIC,
            lambda ks: unsigned({"device_id": "DEV-0001", "seq": 1, "fixes": [fix()]}),
        ),
        ("altered lat", TOPIC, lambda ks: telemetry(ks[0]).replace(b"29.3061", b"29.3062")),
        ("altered seq", TOPIC, lambda ks: telemetry(ks[0]).replace(b'"seq":42', b'"seq":43')),
        ("not base64", TOPIC, lambda ks: telemetry(ks[0]).replace(b'"sig":"', b'"sig":"*')),
        ("urlsafe base64", TOPIC, lambda ks: _urlsafe(ks[0])),
        ("63-byte sig", TOPIC, lambda ks: _with_sig(telemetry(ks[0]), WRONG_SIG_LEN)),
        (
            "unpadded",
            TOPIC,
            lambda ks: _with_sig(telemetry(ks[0]), _sig(telemetry(ks[0])).rstrip("=")),
        ),
        ("lock by other key", LOCK_TOPIC, lambda ks: lock_payload(ks[1], lock())),
    ),
    RejectReason.UNBOUND_DEVICE: build_then_reject(
        ("no vehicle", "waste/v1/devices/DEV-LOOSE/telemetry", lambda ks: _loose()),
    ),
    RejectReason.IMPOSSIBLE_VALUE: build_then_reject(
        ("lat 91", TOPIC, lambda ks: telemetry(ks[0], fix(lat=91))),
        ("lat -90.0001", TOPIC, lambda ks: telemetry(ks[0], fix(lat=-90.0001))),
        ("lon 180.5", TOPIC, lambda ks: telemetry(ks[0], fix(lon=180.5))),
        ("lon -181", TOPIC, lambda ks: telemetry(ks[0], fix(lon=-181))),
        ("speed -1", TOPIC, lambda ks: telemetry(ks[0], fix(speed_kmh=-1))),
        ("speed 250.1", TOPIC, lambda ks: telemetry(ks[0], fix(speed_kmh=250.1))),
        ("heading 360", TOPIC, lambda ks: telemetry(ks[0], fix(heading=360))),
        ("heading -1", TOPIC, lambda ks: telemetry(ks[0], fix(heading=-1))),
        ("hdop -0.1", TOPIC, lambda ks: telemetry(ks[0], fix(hdop=-0.1))),
        ("1e999", TOPIC, lambda ks: telemetry(ks[0]).replace(b'"hdop":0.9', b'"hdop":1e999')),
        ("1e20", TOPIC, lambda ks: telemetry(ks[0]).replace(b'"hdop":0.9', b'"hdop":1e20')),
        ("second fix", TOPIC, lambda ks: telemetry(ks[0], fix(), fix(lat=-95))),
        ("lock lat", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(lat=100))),
    ),
    RejectReason.FUTURE_TIMESTAMP: build_then_reject(
        ("5min 1s ahead", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T08:06:01Z"))),
        ("5min 1ms ahead", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T08:06:00.001Z"))),
        ("lock", LOCK_TOPIC, lambda ks: lock_payload(ks[0], lock(t="2027-01-01T00:00:00Z"))),
        (
            "status",
            STATUS_TOPIC,
            lambda ks: encode_status(True, t=datetime(2030, 1, 1, tzinfo=UTC)),
        ),
    ),
    RejectReason.ANCIENT_TIMESTAMP: build_then_reject(
        ("epoch", TOPIC, lambda ks: telemetry(ks[0], fix(t="1970-01-01T00:00:00Z"))),
        ("1999", TOPIC, lambda ks: telemetry(ks[0], fix(t="1999-12-31T23:59:59.999Z"))),
        ("year 1", TOPIC, lambda ks: telemetry(ks[0], fix(t="0001-01-01T00:00:00Z"))),
    ),
    RejectReason.BAD_TIMESTAMP: build_then_reject(
        ("offset", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T16:00:00+08:00"))),
        ("no zone", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T08:00:00"))),
        ("space", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23 08:00:00Z"))),
        ("lower z", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T08:00:00z"))),
        ("micros", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T08:00:00.000001Z"))),
        ("feb 30", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-02-30T08:00:00Z"))),
        ("hour 24", TOPIC, lambda ks: telemetry(ks[0], fix(t="2026-11-23T24:00:00Z"))),
        ("epoch number string", TOPIC, lambda ks: telemetry(ks[0], fix(t="1795420800"))),
    ),
}


def _sig(raw: bytes) -> str:
    sig: str = json.loads(raw)["sig"]
    return sig


def _with_sig(raw: bytes, sig: str) -> bytes:
    return raw.replace(_sig(raw).encode(), sig.encode())


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _seq(raw: bytes, digits: bytes) -> bytes:
    return raw.replace(b'"seq":42', b'"seq":' + digits)


def _urlsafe(k: Ed25519PrivateKey) -> bytes:
    # Find a payload whose signature has a '+' or '/', so the urlsafe form really differs.
    for seq in range(200):
        raw = telemetry(k, seq=seq)
        if set(_sig(raw)) & {"+", "/"}:
            return _with_sig(raw, _sig(raw).replace("+", "-").replace("/", "_"))
    raise AssertionError("no signature with + or /")


def _loose() -> bytes:
    return sign(
        {"device_id": "DEV-LOOSE", "seq": 1, "fixes": [fix()]},
        Ed25519PrivateKey.from_private_bytes(bytes(32)),
    )


ALL_CASES = [
    pytest.param(reason, *case.values, id=f"{reason}-{case.id}")
    for reason, cases in CASES.items()
    for case in cases
]


@pytest.mark.parametrize(("reason", "topic", "build"), ALL_CASES)
def test_each_reason_then_a_valid_message(
    reason: RejectReason,
    topic: str,
    build: Callable[[Keys], bytes],
    key: Ed25519PrivateKey,
    other_key: Ed25519PrivateKey,
    lookup: Lookup,
    now: datetime,
) -> None:
    rejection = reject(build((key, other_key)), lookup, now, topic)
    assert rejection.reason is reason, rejection
    assert rejection.detail
    assert len(rejection.detail) < 300
    assert not rejection.retryable
    after = decode(TOPIC, telemetry(key), lookup_device=lookup, now=now)
    assert isinstance(after, TelemetryMessage)


def test_every_reason_has_a_case() -> None:
    covered = set(CASES) | {RejectReason.LOOKUP_FAILED, RejectReason.INTERNAL_ERROR}
    assert covered == set(RejectReason)


def test_rejection_names_the_topic_device(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    assert reject(b"x", lookup, now).device_id == "DEV-0001"
    assert reject(b"x", lookup, now, "waste/v1/alerts/x").device_id is None


def test_lookup_failure_is_retryable(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    def broken(device_id: str) -> DeviceKey | None:
        raise ConnectionError("database is down")

    rejection = reject(telemetry(key), broken, now)
    assert rejection.reason is RejectReason.LOOKUP_FAILED
    assert rejection.retryable
    assert "database is down" in rejection.detail
    assert isinstance(
        decode(TOPIC, telemetry(key), lookup_device=lookup, now=now), TelemetryMessage
    )


def test_lookup_returning_another_device_is_a_lookup_failure(
    key: Ed25519PrivateKey, registry: dict[str, DeviceKey], now: datetime
) -> None:
    rejection = reject(telemetry(key), lambda _: registry["DEV-0002"], now)
    assert rejection.reason is RejectReason.LOOKUP_FAILED


def test_device_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 raw bytes"):
        DeviceKey("DEV-0001", b"\x00" * 31, "veh-1")


def test_unexpected_failures_become_internal_errors(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    result = decode(TOPIC, telemetry(key), lookup_device=lookup, now="not a time")  # type: ignore[arg-type]
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.INTERNAL_ERROR
    assert isinstance(
        decode(TOPIC, telemetry(key), lookup_device=lookup, now=now), TelemetryMessage
    )


def test_non_bytes_payload_is_rejected(lookup: Lookup, now: datetime) -> None:
    result = decode(TOPIC, "{}", lookup_device=lookup, now=now)  # type: ignore[arg-type]
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.NOT_JSON


# --- what is accepted -------------------------------------------------------------


def test_protocol_sample_telemetry(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    raw = telemetry(key)
    result = decode(TOPIC, raw, lookup_device=lookup, now=now)
    assert result == TelemetryMessage(
        device_id="DEV-0001",
        seq=42,
        fixes=(Fix(T0, 29.3061, 120.0752, 41.5, 87.0, 0.9),),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        vehicle_id="veh-1",
    )


def test_protocol_sample_lock(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    result = decode(LOCK_TOPIC, lock_payload(key, lock()), lookup_device=lookup, now=now)
    assert isinstance(result, LockMessage)
    assert result.seq == 43
    assert result.lock == LockEvent(
        T0 + timedelta(minutes=5), "SEAL-7781", LockEventKind.SEALED, 29.3061, 120.0752
    )


@pytest.mark.parametrize("event", list(LockEventKind))
def test_every_lock_event_kind_without_position(
    event: LockEventKind, key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    raw = lock_payload(key, lock(event=event.value, lat=None, lon=None))
    result = decode(LOCK_TOPIC, raw, lookup_device=lookup, now=now)
    assert isinstance(result, LockMessage)
    assert result.lock.event is event
    assert result.lock.lat is None
    assert result.lock.lon is None


def test_optional_members_absent_or_null(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    bare = {"t": "2026-11-23T08:00:00.250Z", "lat": -90, "lon": 180}
    nulls = {**bare, "speed_kmh": None, "heading": None, "hdop": None}
    result = decode(TOPIC, telemetry(key, bare, nulls), lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage)
    expected = Fix(T0 + timedelta(milliseconds=250), -90.0, 180.0)
    assert result.fixes == (expected, expected)


def test_boundaries_are_accepted(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    edge = fix(t="2026-11-23T08:06:00Z", speed_kmh=250, heading=359.999, hdop=0, lat=90, lon=-180)
    oldest = fix(t="2000-01-01T00:00:00Z", speed_kmh=0, heading=0)
    result = decode(TOPIC, telemetry(key, edge, oldest), lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage)
    assert len(result.fixes) == 2


def test_max_fixes_and_64kib_are_accepted(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    raw = telemetry(key, *[fix(speed_kmh=None, hdop=None)] * MAX_FIXES)
    assert len(raw) <= MAX_PAYLOAD_BYTES
    padded = raw + b" " * (MAX_PAYLOAD_BYTES - len(raw))  # JSON whitespace is not signed
    result = decode(TOPIC, padded, lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage)
    assert len(result.fixes) == MAX_FIXES


def test_integral_float_seq_is_the_same_number(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    raw = telemetry(key).replace(b'"seq":42', b'"seq":42.0')  # JCS of 42.0 is "42": same sig
    result = decode(TOPIC, raw, lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage)
    assert result.seq == 42


def test_member_order_and_whitespace_do_not_matter(
    key: Ed25519PrivateKey, lookup: Lookup, now: datetime
) -> None:
    obj = json.loads(telemetry(key))
    pretty = json.dumps(dict(reversed(list(obj.items()))), indent=2).encode()
    assert isinstance(decode(TOPIC, pretty, lookup_device=lookup, now=now), TelemetryMessage)


def test_max_safe_seq(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    result = decode(TOPIC, telemetry(key, seq=2**53 - 1), lookup_device=lookup, now=now)
    assert isinstance(result, TelemetryMessage)


@pytest.mark.parametrize(
    ("raw", "online", "t"),
    [
        (b'{"online": true}', True, None),
        (b'{"online":false}', False, None),
        (b'{"online": true, "t": "2026-11-23T08:00:00Z"}', True, T0),
    ],
)
def test_status(
    raw: bytes, online: bool, t: datetime | None, lookup: Lookup, now: datetime
) -> None:
    result = decode(STATUS_TOPIC, raw, lookup_device=lookup, now=now)
    assert result == StatusMessage("DEV-0001", online, t)


def test_status_of_an_unbound_device_is_accepted(lookup: Lookup, now: datetime) -> None:
    result = decode(
        "waste/v1/devices/DEV-LOOSE/status", b'{"online":false}', lookup_device=lookup, now=now
    )
    assert result == StatusMessage("DEV-LOOSE", False)


def test_encoders_round_trip(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    fixes = [
        Fix(T0, 29.3061, 120.0752, 41.5, 87.0, 0.9),
        Fix(T0 + timedelta(seconds=5), -1e-7, 0.0),
    ]
    result = decode(
        TOPIC, encode_telemetry("DEV-0001", 7, fixes, key), lookup_device=lookup, now=now
    )
    assert isinstance(result, TelemetryMessage)
    assert result.fixes == tuple(fixes)
    event = LockEvent(T0, "锁-7781", LockEventKind.TAMPER)
    result2 = decode(
        LOCK_TOPIC, encode_lock("DEV-0001", 8, event, key), lookup_device=lookup, now=now
    )
    assert isinstance(result2, LockMessage)
    assert result2.lock == event
    assert encode_status(False) == b'{"online":false}'


def test_encoders_refuse_what_the_server_would_reject(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="device id"):
        encode_telemetry("DEV/1", 1, [Fix(T0, 0.0, 0.0)], key)
    with pytest.raises(ValueError, match="seq"):
        encode_telemetry("DEV-1", -1, [Fix(T0, 0.0, 0.0)], key)
    with pytest.raises(ValueError, match="fixes"):
        encode_telemetry("DEV-1", 1, [], key)
    with pytest.raises(ValueError, match="fixes"):
        encode_telemetry("DEV-1", 1, [Fix(T0, 0.0, 0.0)] * (MAX_FIXES + 1), key)
    with pytest.raises(ValueError, match="both lat and lon"):
        encode_lock("DEV-1", 1, LockEvent(T0, "S", LockEventKind.SEALED, lat=1.0), key)
    with pytest.raises(ValueError):
        encode_telemetry("DEV-1", 1, [Fix(T0, float("nan"), 0.0)], key)


# --- vectors ------------------------------------------------------------------------


def test_rfc8785_appendix_vector() -> None:
    """RFC 8785 §3.2.4's sample, and its numbers section's (§3.2.2.3) tricky cases."""
    parsed = json.loads(
        r'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        r' "string": "\u20ac$\u000F\u000aA\u0027\u0042\u0022\u005c\\\"\/",'
        r' "literals": [null, true, false]}'
    )
    assert rfc8785.dumps(parsed) == (
        b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        b'"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    samples = {
        "5e-324": 5e-324,
        "1.7976931348623157e+308": 1.7976931348623157e308,
        "9007199254740992": 9007199254740992.0,
        "295147905179352830000": 295147905179352830000.0,
        "9.999999999999997e+22": 9.999999999999997e22,
        "1e+23": 1e23,
        "0.000001": 0.000001,
        "9.999999999999997e-7": 9.999999999999997e-7,
        "1e+21": 1e21,
        "999999999999999900000": 999999999999999900000.0,
        "29.3061": 29.3061,
        "120.0752": 120.0752,
        "0": -0.0,
    }
    for text, value in samples.items():
        assert rfc8785.dumps(value) == text.encode()


def test_signing_input_of_the_protocol_sample() -> None:
    """Written out by hand from RFC 8785: sorted keys, no spaces, shortest numbers."""
    obj = json.loads(telemetry(Ed25519PrivateKey.from_private_bytes(bytes(32))))
    assert signing_input(obj) == (
        b'{"device_id":"DEV-0001","fixes":[{"hdop":0.9,"heading":87,"lat":29.3061,'
        b'"lon":120.0752,"speed_kmh":41.5,"t":"2026-11-23T08:00:00Z"}],"seq":42}'
    )


def test_golden_payload(key: Ed25519PrivateKey, lookup: Lookup, now: datetime) -> None:
    """A fixed vector for other implementers: RFC 8032 test-1 key, the PROTOCOL.md sample."""
    public = key.public_key().public_bytes_raw()
    assert public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    golden = (
        b'{"device_id":"DEV-0001","fixes":[{"hdop":0.9,"heading":87,"lat":29.3061,'
        b'"lon":120.0752,"speed_kmh":41.5,"t":"2026-11-23T08:00:00Z"}],"seq":42,'
        b'"sig":"cSqdOM8z+9zY9is3xs+5QrwhVGMDQCrJQIsWrn6Enr+svQSNP6lJCagZszN6CUlTL6xIxJlzDPnRDk6NvpNNCQ=="}'
    )
    assert telemetry(key) == golden  # Ed25519 is deterministic
    assert isinstance(decode(TOPIC, golden, lookup_device=lookup, now=now), TelemetryMessage)
