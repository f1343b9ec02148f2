"""Ed25519 keys, strict base64, key ids and key records."""

from __future__ import annotations

import base64
import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from waste.errors import Invalid
from waste.ledger.keys import (
    KeyRecord,
    b64decode,
    b64encode,
    decode_public_key,
    generate_private_key,
    has_small_order,
    key_id,
    load_private_key,
    private_key_from_bytes,
    public_key_b64,
    raw_public_key,
    save_private_key,
    sign,
    verify,
)

# RFC 8032 §7.1, test 2: secret key, public key, message 0x72 and its signature.
RFC8032_SECRET = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC8032_SIG = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)
T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_rfc8032_vector_signs_and_verifies() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    assert raw_public_key(key) == RFC8032_PUBLIC
    assert sign(key, b"\x72") == b64encode(RFC8032_SIG)
    assert verify(RFC8032_PUBLIC, b64encode(RFC8032_SIG), b"\x72")
    assert not verify(RFC8032_PUBLIC, b64encode(RFC8032_SIG), b"\x73")


def test_key_id_is_the_truncated_sha256_of_the_raw_key() -> None:
    assert key_id(RFC8032_PUBLIC) == hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:16]
    assert public_key_b64(Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)) == (
        base64.b64encode(RFC8032_PUBLIC).decode(),
        key_id(RFC8032_PUBLIC),
    )


@pytest.mark.parametrize(
    "text",
    [
        "AAE",  # missing padding
        "AAE==",  # too much padding
        "AA-_",  # URL-safe alphabet
        "AA E=",  # whitespace
        "AAE=\n",  # trailing newline
        "AAF=",  # non-zero padding bits: a second spelling of AAE=
        "ÀÀÀÀ",
    ],
)
def test_base64_is_standard_padded_and_canonical(text: str) -> None:
    with pytest.raises(Invalid) as info:
        b64decode(text, field="sig")
    assert info.value.field == "sig"


def test_base64_refuses_non_strings() -> None:
    with pytest.raises(Invalid, match="must be a base64 string"):
        b64decode(b"AAE=")


@given(st.binary(max_size=80))
def test_base64_round_trips(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b64encode(bytes(31)), "must encode 32 bytes"),
        (b64encode(bytes(33)), "must encode 32 bytes"),
        ("not base64!", "not standard padded base64"),
        (None, "must be a base64 string"),
    ],
)
def test_decode_public_key_names_the_field(value: object, message: str) -> None:
    with pytest.raises(Invalid, match=message) as info:
        decode_public_key(value, field="keys[0].public_key")
    assert info.value.field == "keys[0].public_key"


def test_decode_public_key_returns_raw_bytes() -> None:
    assert decode_public_key(b64encode(RFC8032_PUBLIC)) == RFC8032_PUBLIC


@pytest.mark.parametrize(
    ("public", "sig"),
    [
        (RFC8032_PUBLIC, "%%%"),
        (RFC8032_PUBLIC, b64encode(RFC8032_SIG[:63])),
        (RFC8032_PUBLIC[:31], b64encode(RFC8032_SIG)),
        (b"", ""),
        (RFC8032_PUBLIC, None),
        (RFC8032_PUBLIC, b64encode(bytes(64))),
    ],
)
def test_verify_never_raises(public: bytes, sig: object) -> None:
    assert verify(public, sig, b"\x72") is False  # type: ignore[arg-type]


def test_private_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "party.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert raw_public_key(load_private_key(path)) == raw_public_key(key)


def test_raw_seed_loads_and_garbage_does_not(tmp_path: Path) -> None:
    assert raw_public_key(private_key_from_bytes(RFC8032_SECRET)) == RFC8032_PUBLIC
    with pytest.raises(Invalid, match="PEM or raw 32-byte"):
        private_key_from_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def _record(valid_until: datetime | None = None) -> KeyRecord:
    return KeyRecord(
        key_id=key_id(RFC8032_PUBLIC),
        party_id="P-1",
        party_kind="producer",
        public_key=b64encode(RFC8032_PUBLIC),
        valid_from=T,
        valid_until=valid_until,
    )


def test_validity_window_is_half_open() -> None:
    record = _record(valid_until=T + timedelta(days=1))
    assert not record.valid_at(T - timedelta(milliseconds=1))
    assert record.valid_at(T)
    assert record.valid_at(T + timedelta(days=1) - timedelta(milliseconds=1))
    assert not record.valid_at(T + timedelta(days=1))


def test_open_ended_key_and_naive_times_taken_as_utc() -> None:
    record = _record()
    assert record.valid_at(T + timedelta(days=3650))
    assert record.valid_at(T.replace(tzinfo=None))


def test_key_record_json_round_trip() -> None:
    record = _record(valid_until=T + timedelta(hours=1, milliseconds=250))
    obj = record.to_json()
    assert obj["valid_until"] == "2026-11-23T09:00:00.250Z"
    assert KeyRecord.from_json(obj) == record
    assert KeyRecord.from_json(_record().to_json()).valid_until is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key_id": "0" * 16}, "keys[2].key_id"),
        ({"public_key": "AAAA"}, "keys[2].public_key"),
        ({"valid_from": "2026-11-23 08:00:00"}, "keys[2].valid_from"),
        ({"valid_until": "2026-11-23T08:00:00Z"}, "keys[2].valid_until"),
        ({"party_id": ""}, "keys[2].party_id"),
        ({"extra": 1}, "keys[2].extra"),
    ],
)
def test_key_record_from_json_is_strict(change: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as info:
        KeyRecord.from_json({**_record().to_json(), **change}, field="keys[2]")
    assert info.value.field == field


@pytest.mark.parametrize(
    "hex_key",
    [
        "00" * 32,
        "01" + "00" * 31,
        "ec" + "ff" * 30 + "7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ],
)
def test_small_order_public_keys_are_refused(hex_key: str) -> None:
    raw = bytes.fromhex(hex_key)
    assert has_small_order(raw)
    with pytest.raises(Invalid, match=r"small-order|not an Ed25519"):
        decode_public_key(b64encode(raw), field="public_key")


def test_real_keys_are_not_small_order() -> None:
    for _ in range(50):
        assert not has_small_order(raw_public_key(generate_private_key()))
