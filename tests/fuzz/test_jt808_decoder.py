"""Fuzzing the JT/T 808 bridge (``devices/jt808.py``): frames, location reports, streams.

The decoder's contract: anything malformed raises ``JT808Error`` and nothing
else; ``split_stream`` never raises and keeps no more than one frame's worth of
unfinished bytes. Inputs go up to 64 KiB (a TCP peer sends what it likes);
frames longer than the longest possible frame are refused before any work.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.jt808 import (
    ESC,
    FLAG,
    MAX_FRAME_BYTES,
    JT808Error,
    checksum,
    decode_frame,
    decode_location,
    encode_frame,
    encode_location,
    escape,
    split_stream,
)
from tests.fuzz._work import LARGE, MAX_GROWTH, count_calls, growth, tile
from tests.support.reliability import Recorder

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
VALID = encode_location(
    phone="13800138000",
    serial=7,
    time=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    lat=29.3061,
    lon=120.0752,
    speed_kmh=41.5,
    heading=87,
    extras=[(0x01, b"\x00\x00\x01\x00"), (0x30, b"\x1f"), (0x31, b"\x0c")],
)


def only_jt808_errors(data: bytes) -> bool:
    """Decode all the way to a fix; True if it decoded. Anything but JT808Error fails."""
    with contextlib.suppress(JT808Error):
        decode_location(data).to_fix()
        return True
    return False


def _framed(content: bytes) -> bytes:
    return bytes([FLAG]) + escape(content + bytes([checksum(content)])) + bytes([FLAG])


@FUZZ
@given(pattern=st.binary(max_size=64), size=st.integers(0, LARGE), framed=st.booleans())
def test_arbitrary_bytes_of_any_size_raise_only_jt808_errors(
    pattern: bytes, size: int, framed: bool
) -> None:
    """Bytes of any size up to 64 KiB, bare or between flags, raise only ``JT808Error``."""
    data = tile(pattern, size)
    if framed:
        data = bytes([FLAG]) + data + bytes([FLAG])
    only_jt808_errors(data)


@FUZZ
@given(
    msg_id=st.integers(0, 0xFFFF),
    attrs=st.integers(0, 0xFFFF),
    rest=st.binary(max_size=1200),
)
def test_well_framed_arbitrary_headers_and_bodies_raise_only_jt808_errors(
    msg_id: int, attrs: int, rest: bytes
) -> None:
    """Correctly escaped and checksummed frames with any header bits (versions,
    subpackaging, encryption, lengths) and any body raise only ``JT808Error``."""
    content = msg_id.to_bytes(2, "big") + attrs.to_bytes(2, "big") + rest
    only_jt808_errors(_framed(content))


@FUZZ
@given(
    steps=st.lists(
        st.tuples(st.integers(0), st.binary(min_size=1, max_size=4), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_valid_reports_decode_or_raise_jt808_errors(
    steps: list[tuple[int, bytes, bool]],
) -> None:
    """A valid 0x0200 report with bytes overwritten or inserted decodes (the check code
    and lengths still agree) or raises ``JT808Error``."""
    data = bytearray(VALID)
    for position, junk, insert in steps:
        at = position % len(data)
        if insert:
            data[at:at] = junk
        else:
            data[at : at + len(junk)] = junk
    only_jt808_errors(bytes(data))


@FUZZ
@given(chunks=st.lists(st.binary(max_size=300) | st.just(VALID), max_size=12))
def test_split_stream_never_raises_and_keeps_at_most_one_frame(chunks: list[bytes]) -> None:
    """Feeding a byte stream in arbitrary chunks: ``split_stream`` never raises, every
    frame it cuts starts and ends with a flag and holds none inside, and the unfinished
    rest it hands back never exceeds the longest possible frame."""
    rest = b""
    for chunk in chunks:
        frames, rest = split_stream(rest + chunk)
        for frame in frames:
            assert frame[0] == frame[-1] == FLAG
            assert FLAG not in frame[1:-1]
            only_jt808_errors(frame)
        assert len(rest) <= MAX_FRAME_BYTES
        assert not rest or (rest[0] == FLAG and FLAG not in rest[1:])


def test_a_valid_frame_is_never_dropped_by_the_bound() -> None:
    """The longest valid frame (2019 header, subpackaged, a 1023-byte body of bytes that
    all need escaping) fits ``MAX_FRAME_BYTES`` exactly and decodes."""
    frame = encode_frame(
        0x0801,
        bytes([ESC]) * 0x03FF,
        phone="1" * 20,
        serial=0x7E7E,
        version=2019,
        protocol_version=0x7E,
        packet=(0x7E7E, 0x7E7E),
    )
    assert len(frame) <= MAX_FRAME_BYTES
    assert decode_frame(frame).header.packet_total == 0x7E7E
    assert split_stream(frame) == ([frame], b"")


def test_work_grows_linearly_with_the_input_up_to_64_kib(reliability: Recorder) -> None:
    """Adversarial streams (back-to-back flags, escape runs, frames without an end, many
    tiny frames) built at 8 KiB and at 64 KiB: ``split_stream`` and decoding each frame it
    yields do at most ~8× more work at the larger size; an oversized frame is refused in
    constant work."""

    def run(stream: bytes) -> None:
        frames, _ = split_stream(stream)
        for frame in frames:
            only_jt808_errors(frame)

    families = {
        "back-to-back flags": lambda n: bytes([FLAG]) * n,
        "escape run, no end": lambda n: bytes([FLAG]) + tile(b"\x7d\x01", n - 1),
        "tiny frames": lambda n: tile(bytes([FLAG, 0x00, FLAG]), n),
        "valid reports": lambda n: VALID * (n // len(VALID)),
        "junk between flags": lambda n: tile(bytes([FLAG]) + bytes(range(1, 126)), n),
    }
    worst: dict[str, float] = {}
    for family, build in families.items():
        g = growth(family, build, run)
        assert g.ratio <= MAX_GROWTH or g.large_calls <= 2_000, (family, g)
        worst[family] = round(g.calls_per_kib, 1)
    oversized = bytes([FLAG]) + tile(b"\x7d\x01", LARGE) + bytes([FLAG])
    _, calls = count_calls(only_jt808_errors, oversized)
    assert calls < 50
    reliability(
        families=len(worst),
        max_calls_per_kib=max(worst.values()),
        worst_family=max(worst, key=lambda k: worst[k]),
        oversized_frame_calls=calls,
    )
