"""JT/T 808 frames: hand-written and third-party vectors, every malformation, fuzzing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.jt808 import (
    ALARM_BITS,
    STATUS_BITS,
    JT808Error,
    checksum,
    decode_frame,
    decode_location,
    encode_frame,
    encode_location,
    escape,
    split_stream,
    unescape,
)
from gateway.payloads import Fix
from waste.errors import Invalid


def hexframe(text: str) -> bytes:
    """Bytes from hex written with spaces, newlines and ``#`` comments."""
    return bytes.fromhex(" ".join(line.split("#")[0] for line in text.splitlines()))


# Written out field by field from JT/T 808-2013 §4.4 (header) and §8.18 (0x0200 body).
FRAME_2013 = hexframe("""
    7e                  # flag
    02 00               # message id 0x0200, location report
    00 28               # body attributes: 2013, no encryption, not subpackaged, 40 bytes
    01 39 12 34 56 78   # terminal phone, BCD[6]: 013912345678
    00 7d 02            # flow serial 0x007e, escaped
    00 00 00 01         # alarm: bit 0 emergency
    00 00 00 03         # status: bit 0 ACC on, bit 1 positioned; north, east
    01 bf 2c f4         # latitude 29306100 -> 29.3061
    07 28 33 c0         # longitude 120075200 -> 120.0752
    00 32               # altitude 50 m
    01 9f               # speed 415 -> 41.5 km/h
    00 57               # heading 87
    26 11 23 16 00 00   # 2026-11-23 16:00:00 GMT+8 = 08:00:00Z
    01 04 00 00 30 39   # extra 0x01 mileage 12345 -> 1234.5 km
    30 01 1f            # extra 0x30 signal strength 31
    31 01 0c            # extra 0x31 satellites 12
    3b                  # check code: XOR of the 52 unescaped bytes after the flag
    7e                  # flag
""")

FRAME_2019 = hexframe("""
    7e
    02 00                           # 0x0200
    40 1c                           # bit 14: 2019 version flag; body 28 bytes, no extras
    01                              # protocol version 1
    00 00 00 00 01 38 00 13 80 00   # terminal phone, BCD[10]
    00 7d 01                        # flow serial 0x007d, escaped
    00 00 00 00                     # no alarm
    00 0c 00 0e                     # positioned, south, west, GPS and BeiDou used
    02 10 02 ca                     # 34603722 -> -34.603722 (south)
    03 7a d5 18                     # 58381592 -> -58.381592 (west)
    00 19                           # 25 m
    00 00                           # standing still
    01 67                           # heading 359
    26 01 02 03 04 05               # 2026-01-02 03:04:05 GMT+8 = 2026-01-01 19:04:05Z
    bc
    7e
""")

# Third-party vectors: SmallChi/JT808 (MIT), JT808_0x0200Test.Demo2 and Test6.
SMALLCHI_DEMO2 = bytes.fromhex(
    "7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C"
    " 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E"
)
SMALLCHI_TEST6 = bytes.fromhex(
    "7E 02 00 00 3C 04 00 21 68 20 87 1D 0C 00 00 00 00 00 0C 00 C2 01 5B 6C 6E 06 C8 56 98 00"
    " 1E 00 00 00 E0 18 09 16 10 35 37 01 04 00 05 4C 7D 01 02 02 00 00 03 02 00 00 25 04 00 00"
    " 00 00 2B 04 00 00 00 00 30 01 1D 31 01 0D 97 7E"
)


def test_hand_written_2013_frame() -> None:
    r = decode_location(FRAME_2013)
    h = r.header
    assert (h.msg_id, h.version, h.protocol_version, h.encryption) == (0x0200, 2013, None, 0)
    assert (h.phone, h.serial, h.body_length, h.subpackaged) == ("013912345678", 0x7E, 40, False)
    assert (r.alarm, r.alarms) == (1, frozenset({"emergency"}))
    assert (r.status, r.statuses) == (3, frozenset({"acc_on", "positioned"}))
    assert (r.lat, r.lon, r.altitude_m, r.speed_kmh, r.heading) == (29.3061, 120.0752, 50, 41.5, 87)
    assert r.time == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert r.extras == ((0x01, bytes.fromhex("00003039")), (0x30, b"\x1f"), (0x31, b"\x0c"))
    assert (r.mileage_km, r.signal_strength, r.satellites) == (1234.5, 31, 12)
    assert r.load == 0
    assert r.to_fix() == Fix(r.time, 29.3061, 120.0752, 41.5, 87.0, None)


def test_hand_written_2019_frame() -> None:
    r = decode_location(FRAME_2019)
    assert (r.header.version, r.header.protocol_version) == (2019, 1)
    assert (r.header.phone, r.header.serial) == ("00000000013800138000", 0x7D)
    assert r.statuses == {
        "positioned",
        "south_latitude",
        "west_longitude",
        "gps_used",
        "beidou_used",
    }
    assert (r.lat, r.lon, r.heading, r.speed_kmh) == (-34.603722, -58.381592, 359, 0.0)
    assert r.time == datetime(2026, 1, 1, 19, 4, 5, tzinfo=UTC)
    assert r.extras == ()
    assert r.mileage_km is None


def test_encoder_reproduces_the_hand_written_frames() -> None:
    r = decode_location(FRAME_2013)
    again = encode_location(
        phone="013912345678",
        serial=0x7E,
        time=r.time,
        lat=29.3061,
        lon=120.0752,
        alarm=1,
        status=3,
        altitude_m=50,
        speed_kmh=41.5,
        heading=87,
        extras=r.extras,
    )
    assert again == FRAME_2013
    again = encode_location(
        phone="13800138000",
        serial=0x7D,
        time=datetime(2026, 1, 1, 19, 4, 5, tzinfo=UTC),
        lat=-34.603722,
        lon=-58.381592,
        status=(1 << 1) | (1 << 18) | (1 << 19),
        altitude_m=25,
        heading=359,
        version=2019,
    )
    assert again == FRAME_2019


def test_third_party_vectors() -> None:
    r = decode_location(SMALLCHI_DEMO2)
    assert (r.header.phone, r.header.serial) == ("123456789012", 126)
    assert (r.lat, r.lon, r.altitude_m, r.speed_kmh, r.heading) == (
        12.222222,
        132.444444,
        40,
        6.0,
        0,
    )
    assert r.time == datetime(2018, 10, 15, 2, 10, 10, tzinfo=UTC)
    assert r.extras == ((0x01, bytes.fromhex("00000064")), (0x02, bytes.fromhex("007d")))
    assert r.mileage_km == 10.0
    r = decode_location(SMALLCHI_TEST6)
    assert (r.lat, r.lon, r.heading) == (22.76875, 113.792664, 224)
    assert {"positioned", "gps_used", "beidou_used"} <= r.statuses
    assert (r.mileage_km, r.signal_strength, r.satellites) == (34726.1, 29, 13)
    assert [item_id for item_id, _ in r.extras] == [0x01, 0x02, 0x03, 0x25, 0x2B, 0x30, 0x31]


def test_bit_tables() -> None:
    assert ALARM_BITS[4] == "gnss_module_fault"
    assert ALARM_BITS[5] == "gnss_antenna_cut"
    assert ALARM_BITS[7] == "power_under_voltage"
    assert ALARM_BITS[8] == "power_cut"
    assert {15, 16, 17} & ALARM_BITS.keys() == set()
    assert STATUS_BITS[2] == "south_latitude"
    assert {8, 9} & STATUS_BITS.keys() == set()  # the load field
    all_bits = decode_location(
        encode_location(
            phone="1",
            serial=1,
            time=datetime(2026, 1, 1, tzinfo=UTC),
            lat=0.0,
            lon=0.0,
            alarm=0xFFFFFFFF,
            status=0xFFFFFFFF,
        )
    )
    assert all_bits.alarms == set(ALARM_BITS.values())
    assert all_bits.load == 3


def test_escape_round_trip() -> None:
    raw = bytes([0x7E, 0x7D, 0x01, 0x02, 0x7D, 0x7E])
    assert escape(raw) == bytes.fromhex("7d02 7d01 01 02 7d01 7d02")
    assert unescape(escape(raw)) == raw
    assert checksum(b"\x01\x02\x04") == 0x07


def test_other_messages_decode_as_frames() -> None:
    heartbeat = encode_frame(0x0002, b"", phone="13800138000", serial=9)
    frame = decode_frame(heartbeat)
    assert (frame.header.msg_id, frame.body) == (0x0002, b"")
    with pytest.raises(JT808Error, match="not a location report"):
        decode_location(frame)


def test_subpackage_header() -> None:
    frame = decode_frame(encode_frame(0x0801, b"abc", phone="1", serial=2, packet=(3, 2)))
    assert (frame.header.packet_total, frame.header.packet_index) == (3, 2)
    assert frame.header.subpackaged


def _frame(body: bytes, **kw: object) -> bytes:
    return encode_frame(0x0200, body, phone="13800138000", serial=1, **kw)  # type: ignore[arg-type]


def _content(frame: bytes) -> bytes:
    """Header and body of a frame: unescaped, without flags and check code."""
    return unescape(frame[1:-1])[:-1]


def _reframe(content: bytes) -> bytes:
    return b"\x7e" + escape(content + bytes([checksum(content)])) + b"\x7e"


BODY = decode_frame(FRAME_2013).body


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "starts and ends"),
        (b"\x7e", "starts and ends"),
        (FRAME_2013[1:], "starts and ends"),
        (FRAME_2013[:-1], "starts and ends"),
        (b"\x7e\x7e", "too short"),
        (FRAME_2013[:10] + b"\x7e" + FRAME_2013[10:], "unescaped 0x7e"),
        (FRAME_2013.replace(b"\x7d\x02", b"\x7d\x03"), "0x7d must be followed"),
        (FRAME_2013[:-2] + b"\x7d\x7e", "0x7d must be followed"),
        (FRAME_2013[:-2] + b"\x3c\x7e", "check code"),
        (_reframe(_content(FRAME_2013).replace(b"\x00\x28", b"\x00\x29", 1)), "header says"),
        (_frame(BODY[:27]), "ends inside time"),
        (_frame(BODY[:31]), "ends inside extra 0x01"),
        (_frame(BODY[:29]), "ends inside extra_length"),
        (_frame(BODY[:22] + bytes.fromhex("2611231600ff")), "not BCD"),
        (_frame(BODY[:22] + bytes.fromhex("261323160000")), "not a real instant"),
        (_frame(BODY[:22] + bytes.fromhex("000000000000")), "not a real instant"),
        (_frame(BODY[:8] + (90_000_001).to_bytes(4, "big") + BODY[12:]), "out of range"),
        (_frame(BODY[:12] + (180_000_001).to_bytes(4, "big") + BODY[16:]), "out of range"),
        (_frame(BODY[:20] + (360).to_bytes(2, "big") + BODY[22:]), "heading"),
        (_frame(BODY[:28] + b"\x01\x02\x00\x00"), "extra 0x01 has 2 bytes"),
        (_frame(BODY[:28] + b"\x31\x00"), "extra 0x31 has 0 bytes"),
        (_frame(BODY, packet=(2, 1)), "never subpackaged"),
        (_frame(b"", packet=(2, 3)), "packet 3 of 2"),
        (_frame(b"", packet=(0, 0)), "packet 0 of 0"),
        (_reframe(_content(FRAME_2013).replace(b"\x01\x39", b"\x0a\x39", 1)), "phone is not BCD"),
    ],
)
def test_malformed(frame: bytes, message: str) -> None:
    with pytest.raises(JT808Error, match=message):
        decode_location(frame)


def test_encrypted_body_is_refused() -> None:
    content = bytearray(_content(FRAME_2013))
    content[2] |= 0x04  # body attributes bit 10: RSA
    frame = _reframe(bytes(content))
    assert decode_frame(frame).header.encryption == 1
    with pytest.raises(JT808Error, match="encrypted"):
        decode_location(frame)


def test_unpositioned_report_has_no_fix() -> None:
    frame = encode_location(
        phone="1", serial=1, time=datetime(2026, 1, 1, tzinfo=UTC), lat=0.0, lon=0.0, status=0
    )
    report = decode_location(frame)
    assert not report.positioned
    with pytest.raises(JT808Error, match="not positioned"):
        report.to_fix()


def test_error_is_one_of_ours() -> None:
    with pytest.raises(JT808Error) as info:
        decode_location(b"nope")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, Invalid)
    assert info.value.problem()["status"] == 422
    with pytest.raises(JT808Error):
        decode_location("7e00" * 8)  # type: ignore[arg-type]


def test_split_stream() -> None:
    frames, rest = split_stream(b"junk" + FRAME_2013 + FRAME_2019 + FRAME_2013[:9])
    assert frames == [FRAME_2013, FRAME_2019]
    assert rest == FRAME_2013[:9]
    frames, rest = split_stream(rest + FRAME_2013[9:])
    assert (frames, rest) == ([FRAME_2013], b"")
    assert split_stream(b"no flags") == ([], b"")


# --- Hypothesis -------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None)


def only_jt808_errors(data: bytes) -> None:
    """Decode ``data`` all the way to a fix; anything but ``JT808Error`` fails the test."""
    with contextlib.suppress(JT808Error):
        decode_location(data).to_fix()


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    for candidate in (data, b"\x7e" + data + b"\x7e"):
        only_jt808_errors(candidate)


@FUZZ
@given(body=st.binary(max_size=120), version=st.sampled_from([2013, 2019]))
def test_fuzz_well_framed_random_bodies(body: bytes, version: int) -> None:
    only_jt808_errors(_frame(body, version=version))


@FUZZ
@given(at=st.integers(min_value=0), junk=st.binary(min_size=1, max_size=6))
def test_fuzz_corrupted_valid_frame(at: int, junk: bytes) -> None:
    at %= len(FRAME_2013)
    corrupted = FRAME_2013[:at] + junk + FRAME_2013[at + len(junk) :]
    only_jt808_errors(corrupted)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.integers(-90_000_000, 90_000_000),
    lon=st.integers(-180_000_000, 180_000_000),
    speed=st.integers(0, 0xFFFF),
    heading=st.integers(0, 359),
    altitude=st.integers(0, 0xFFFF),
    alarm=st.integers(0, 0xFFFFFFFF),
    status=st.integers(0, 0xFFFFFFFF),
    # 2000-01-01 to 2099-12-31 in GMT+8, the two BCD year digits' range
    time=st.datetimes(
        datetime(2000, 1, 1), datetime(2099, 12, 31, 15, 59, 59), timezones=st.just(UTC)
    ),
    extras=st.lists(st.tuples(st.integers(0x32, 0xFF), st.binary(max_size=8)), max_size=3),
    phone=st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    version=st.sampled_from([2013, 2019]),
)
def test_round_trip(
    lat: int,
    lon: int,
    speed: int,
    heading: int,
    altitude: int,
    alarm: int,
    status: int,
    time: datetime,
    extras: list[tuple[int, bytes]],
    phone: str,
    version: int,
) -> None:
    time = time.replace(microsecond=0)
    frame = encode_location(
        phone=phone,
        serial=7,
        time=time,
        lat=lat / 1e6,
        lon=lon / 1e6,
        alarm=alarm,
        status=status,
        altitude_m=altitude,
        speed_kmh=speed / 10,
        heading=heading,
        extras=extras,
        version=version,
    )
    r = decode_location(frame)
    assert r.header.phone.lstrip("0") == phone.lstrip("0")
    assert (r.lat, r.lon) == (lat / 1e6, lon / 1e6)
    assert (r.speed_kmh, r.heading, r.altitude_m, r.alarm) == (speed / 10, heading, altitude, alarm)
    assert r.time == time
    assert r.extras == tuple(extras)
    assert r.status & ~0b1100 == status & ~0b1100
