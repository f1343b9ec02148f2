"""Fuzzing the MQTT payload decoder (``gateway.payloads.decode``, PROTOCOL.md §4).

``decode`` promises never to raise: every input becomes a decoded message or a
``Rejection`` with a documented reason (``internal_error`` would be a bug, and
fails these tests). The unit tests in ``tests/unit/gateway/test_payloads_fuzz.py``
cover small inputs; these add whole-size inputs up to the 64 KiB limit, mutations
of genuinely signed payloads, and bounds on the work done (counted in calls, see
``tests/fuzz/_work.py``), so that no input up to the limit can stall ingestion.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.signing import encode_lock, encode_telemetry, public_key_bytes, sign
from gateway.payloads import (
    MAX_FIXES,
    MAX_PAYLOAD_BYTES,
    DeviceKey,
    Fix,
    LockEvent,
    LockEventKind,
    Rejection,
    RejectReason,
    StatusMessage,
    TelemetryMessage,
    decode,
)
from tests.fuzz._work import LARGE, MAX_GROWTH, count_calls, growth, tile
from tests.support.payloads import Decoded, decode_checked, only
from tests.support.reliability import Recorder

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
DEVICE = DeviceKey("DEV-FUZZ", public_key_bytes(KEY), "veh-fuzz")
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TELEMETRY, LOCK, STATUS = (
    f"waste/v1/devices/DEV-FUZZ/{c}" for c in ("telemetry", "lock", "status")
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
lookup = only(DEVICE)  # only DEV-FUZZ is registered


def decoded(topic: str, raw: bytes) -> Decoded:
    """Decode, check the promise (``decode_checked``), and that a rejection says little."""
    result = decode_checked(topic, raw, lookup, NOW)
    if isinstance(result, Rejection):
        assert len(result.detail) <= 300
    return result


def _fixes(count: int) -> list[Fix]:
    return [
        Fix(NOW - timedelta(seconds=count - i), 29.3 + i * 1e-5, 120.07, 41.5, 87.0, 0.9)
        for i in range(count)
    ]


VALID = {
    "telemetry": (TELEMETRY, encode_telemetry("DEV-FUZZ", 42, _fixes(5), KEY)),
    "lock": (
        LOCK,
        encode_lock(
            "DEV-FUZZ",
            43,
            LockEvent(NOW, "SEAL-7781", LockEventKind.SEALED, 29.3061, 120.0752),
            KEY,
        ),
    ),
    "status": (STATUS, b'{"online": true, "t": "2026-11-23T07:59:00Z"}'),
}


def _signed_with(member: str, value: Any) -> bytes:
    """A genuinely signed telemetry payload whose ``fixes`` holds one odd fix."""
    fix = {"t": "2026-11-23T07:59:00Z", "lat": 29.3, "lon": 120.07, member: value}
    return sign({"device_id": "DEV-FUZZ", "seq": 1, "fixes": [fix]}, KEY)


# --- arbitrary bytes, at every size up to the limit and just past it -----------------------


@FUZZ
@given(
    pattern=st.binary(max_size=64),
    size=st.integers(0, MAX_PAYLOAD_BYTES + 16),
    topic=st.sampled_from([TELEMETRY, LOCK, STATUS, "waste/v1/devices/x/telemetry", ""]),
)
def test_arbitrary_bytes_of_any_size_are_rejected(pattern: bytes, size: int, topic: str) -> None:
    """Bytes of any size up to and past 64 KiB (a drawn pattern tiled to the size) are
    rejected with a documented reason; over 64 KiB always as ``oversized``."""
    raw = tile(pattern, size)
    result = decoded(topic, raw)
    if isinstance(result, Rejection) and size > MAX_PAYLOAD_BYTES:
        assert result.reason is RejectReason.OVERSIZED
    if not isinstance(result, Rejection):  # only a tiled status can be valid by chance
        assert topic == STATUS


# --- arbitrary JSON around the protocol's member names ---------------------------------------

names = st.sampled_from(
    ["device_id", "seq", "fixes", "lock", "sig", "t", "lat", "lon", "speed_kmh", "heading",
     "hdop", "lock_id", "event", "online", "x"]
) | st.text(max_size=6)  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["DEV-FUZZ", "2026-11-23T07:59:00Z", "sealed", "A" * 86 + "=="])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(names, inner, max_size=8),
    max_leaves=60,
)


@FUZZ
@given(value=values, topic=st.sampled_from([TELEMETRY, LOCK, STATUS]), indent=st.booleans())
def test_arbitrary_json_is_decoded_or_rejected(value: Any, topic: str, indent: bool) -> None:
    """Any JSON document (objects keyed with the protocol's names, deep or wide, big
    integers, odd floats) decodes or is rejected; nothing unsigned is accepted but a
    status."""
    raw = json.dumps(value, indent=2 if indent else None).encode()
    result = decoded(topic, raw)
    assert isinstance(result, Rejection | StatusMessage)


@FUZZ
@given(member=names, value=values)
def test_signed_payloads_with_arbitrary_members_are_rejected_or_sane(
    member: str, value: Any
) -> None:
    """A genuinely signed payload with any extra or replaced fix member gets past the
    signature and is then rejected, or decoded into values within the protocol's ranges."""
    try:
        raw = _signed_with(member, value)
    except ValueError:  # not representable in JCS: a device could not sign it either
        return
    result = decoded(TELEMETRY, raw)
    if isinstance(result, TelemetryMessage):
        (fix,) = result.fixes
        assert -90 <= fix.lat <= 90
        assert -180 <= fix.lon <= 180
        assert fix.hdop is None or math.isfinite(fix.hdop)


# --- mutations of valid signed payloads --------------------------------------------------------

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0), st.integers(1, 16)),
    st.tuples(st.just("duplicate"), st.integers(0), st.integers(1, 64)),
    st.tuples(st.just("whitespace"), st.integers(0), st.sampled_from([b" ", b"\n", b"\t"])),
)


def mutate(raw: bytes, steps: list[tuple[str, int, Any]]) -> bytes:
    """Apply byte-level mutations (positions wrap around the current length)."""
    data = bytearray(raw)
    for kind, position, arg in steps:
        at = position % max(len(data), 1)
        if kind == "flip" and data:
            data[at] ^= arg
        elif kind in ("insert", "whitespace"):
            data[at:at] = arg
        elif kind == "delete":
            del data[at : at + arg]
        elif kind == "duplicate":
            data[at:at] = data[at : at + arg]
    return bytes(data)


def _canonical(raw: bytes) -> bytes:
    return bytes(rfc8785.dumps(json.loads(raw)))


@FUZZ
@given(which=st.sampled_from(sorted(VALID)), steps=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_signed_payloads_are_accepted_only_if_the_content_is_unchanged(
    which: str, steps: list[tuple[str, int, Any]]
) -> None:
    """Flipped, inserted, deleted or duplicated bytes in a valid signed payload: the result
    is a rejection, or — if accepted — the same signed content (only whitespace moved)."""
    topic, raw = VALID[which]
    mutated = mutate(raw, steps)
    result = decoded(topic, mutated)
    if not isinstance(result, Rejection) and which != "status":
        assert _canonical(mutated) == _canonical(raw)


# --- bounded work ---------------------------------------------------------------------------------


def _families() -> dict[str, Any]:
    big_fix = {"t": "2026-11-23T07:59:00Z", "lat": 29.3, "lon": 120.07}
    return {
        "random bytes": lambda n: tile(bytes(range(256)), n),
        "deep arrays": lambda n: b"[" * n,
        "deep objects": lambda n: tile(b'{"a":', n),
        "many members": lambda n: (
            b"{" + b"".join(b'"k%d":0,' % i for i in range((n - 16) // 12)) + b'"z":0}'
        ),
        "duplicate keys": lambda n: b'{"seq":1' + b',"seq":1' * ((n - 12) // 8) + b"}",
        "long array": lambda n: (
            b'{"device_id":"DEV-FUZZ","seq":1,"sig":"","fixes":[' + b"0," * ((n - 80) // 2) + b"0]}"
        ),
        "long integer": lambda n: b'{"device_id":"DEV-FUZZ","seq":' + b"7" * (n - 40) + b"}",
        "long float": lambda n: b'{"device_id":"DEV-FUZZ","seq":0.' + b"1" * (n - 40) + b"}",
        "long exponent": lambda n: b'{"seq":1e' + b"9" * (n - 20) + b"}",
        "escaped string": lambda n: b'{"device_id":"' + tile(b"\\u00e9", n - 30) + b'"}',
        "signed, long odd member": lambda n: _signed_with("x", "\u00e9" * ((n - 200) // 2)),
        "signed, many fixes": lambda n: sign(
            {"device_id": "DEV-FUZZ", "seq": 9, "fixes": [big_fix] * ((n - 120) // 60)}, KEY
        ),
    }


def test_work_grows_linearly_with_the_input_up_to_64_kib(reliability: Recorder) -> None:
    """Adversarial input families (deep nesting, many or duplicate members, huge numbers,
    escapes, signed payloads with huge members or thousands of fixes), each built at 8 KiB
    and at 64 KiB: each decodes or is rejected, and the work (Python and C calls) grows at
    most ~8× between the sizes, never quadratically (64×); over 64 KiB is refused before
    any parsing."""
    worst: dict[str, float] = {}
    for family, build in _families().items():
        large = build(LARGE)
        assert len(large) <= MAX_PAYLOAD_BYTES, family
        decoded(TELEMETRY, large)
        g = growth(family, build, lambda raw: decode(TELEMETRY, raw, lookup_device=lookup, now=NOW))
        assert g.ratio <= MAX_GROWTH or g.large_calls <= 2_000, (family, g)
        worst[family] = round(g.calls_per_kib, 1)
    huge = b"{" + b" " * (16 * 1024 * 1024) + b"}"
    result, calls = count_calls(decode, TELEMETRY, huge, lookup_device=lookup, now=NOW)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.OVERSIZED
    assert calls < 100
    reliability(
        families=len(worst),
        max_calls_per_kib=max(worst.values()),
        worst_family=max(worst, key=lambda k: worst[k]),
        oversized_16mib_calls=calls,
    )


def test_a_full_batch_at_the_limit_is_accepted_in_bounded_work() -> None:
    """The largest valid message (500 fixes) decodes completely, with work per fix bounded."""
    raw = encode_telemetry("DEV-FUZZ", 7, _fixes(MAX_FIXES), KEY)
    assert len(raw) <= MAX_PAYLOAD_BYTES
    result, calls = count_calls(decode, TELEMETRY, raw, lookup_device=lookup, now=NOW)
    assert isinstance(result, TelemetryMessage)
    assert len(result.fixes) == MAX_FIXES
    assert calls / MAX_FIXES < 2_000
