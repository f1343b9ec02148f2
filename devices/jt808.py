"""A decoding bridge for JT/T 808-2013/2019 terminals: frames and 0x0200 location reports.

A frame is ``0x7e | header | body | check | 0x7e`` where everything between
the flags is escaped (0x7e → 0x7d 0x02, 0x7d → 0x7d 0x01) and ``check`` is the
XOR of header and body. Multi-byte integers are big-endian.

Header: message id (WORD), body attributes (WORD: bits 0-9 body length,
10-12 encryption, 13 subpackaged, 14 the 2019 version flag), then for 2019 a
protocol version (BYTE) and the terminal phone as BCD[10], for 2013 BCD[6];
flow serial (WORD); when subpackaged, packet total and index (WORD, WORD).

0x0200 body: alarm (DWORD), status (DWORD), latitude and longitude (DWORD,
degrees × 10⁶, sign from status bits 2 and 3), altitude (WORD, m), speed
(WORD, 0.1 km/h), heading (WORD, 0-359), time (BCD[6] YYMMDDhhmmss, GMT+8),
then additional items (id BYTE, length BYTE, value).

Anything malformed raises ``JT808Error`` (a ``ValueError`` and an ``Invalid``)
and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from gateway.payloads import Fix
from waste.errors import Invalid

__all__ = [
    "ALARM_BITS",
    "MAX_FRAME_BYTES",
    "MSG_LOCATION",
    "STATUS_BITS",
    "Frame",
    "Header",
    "JT808Error",
    "LocationReport",
    "checksum",
    "decode_frame",
    "decode_location",
    "encode_frame",
    "encode_location",
    "escape",
    "split_stream",
    "unescape",
]

FLAG, ESC = 0x7E, 0x7D
MSG_LOCATION = 0x0200
MAX_FRAME_BYTES = 2 + 2 * (21 + 0x03FF + 1)
"""The longest possible frame: flags, and a 2019 subpackaged header, a 1023-byte body
and the check code with every byte escaped. Longer input is refused before any work."""
CHINA_TIME = timezone(timedelta(hours=8))

# fmt: off
# JT/T 808-2013 table 24 (unchanged in 2019); bits 15-17 are reserved.
ALARM_BITS: dict[int, str] = {
    0: "emergency", 1: "overspeed", 2: "fatigue_driving", 3: "danger_warning",
    4: "gnss_module_fault", 5: "gnss_antenna_cut", 6: "gnss_antenna_short",
    7: "power_under_voltage", 8: "power_cut", 9: "display_fault", 10: "tts_fault",
    11: "camera_fault", 12: "ic_card_module_fault", 13: "overspeed_warning",
    14: "fatigue_warning", 18: "daily_driving_time_exceeded", 19: "overtime_parking",
    20: "area_entry_exit", 21: "route_entry_exit", 22: "route_time_abnormal",
    23: "route_deviation", 24: "vss_fault", 25: "fuel_abnormal", 26: "vehicle_stolen",
    27: "illegal_ignition", 28: "illegal_displacement", 29: "collision_warning",
    30: "rollover_warning", 31: "illegal_door_open",
}

# JT/T 808-2013 table 25; bits 6, 7 and 22 are 2019 additions. Bits 8-9 (load) are a field.
STATUS_BITS: dict[int, str] = {
    0: "acc_on", 1: "positioned", 2: "south_latitude", 3: "west_longitude",
    4: "out_of_service", 5: "coordinates_encrypted", 6: "forward_collision_warning",
    7: "lane_departure_warning", 10: "fuel_line_cut", 11: "electric_circuit_cut",
    12: "doors_locked", 13: "door1_open", 14: "door2_open", 15: "door3_open",
    16: "door4_open", 17: "door5_open", 18: "gps_used", 19: "beidou_used",
    20: "glonass_used", 21: "galileo_used", 22: "moving",
}
# fmt: on
_POSITIONED, _SOUTH, _WEST = 1 << 1, 1 << 2, 1 << 3
_EXTRA_MILEAGE, _EXTRA_SIGNAL, _EXTRA_SATELLITES = 0x01, 0x30, 0x31
_EXTRA_SIZES = {_EXTRA_MILEAGE: 4, _EXTRA_SIGNAL: 1, _EXTRA_SATELLITES: 1}


class JT808Error(Invalid, ValueError):
    """A JT/T 808 frame or body that is malformed, or not something this bridge decodes."""

    type_slug = "jt808"
    title = "Malformed JT/T 808 frame"


class _Reader:
    """Bounds-checked big-endian reads over a byte string."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > len(self.data):
            raise JT808Error(f"{self.what} ends inside {field}", field=field)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "big")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "big")

    def rest(self) -> bytes:
        chunk, self.pos = self.data[self.pos :], len(self.data)
        return chunk


def escape(data: bytes) -> bytes:
    """Escape 0x7d and 0x7e for the wire (0x7d → 7d 01, 0x7e → 7d 02)."""
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo ``escape``; raise ``JT808Error`` on a bare flag or a bad escape."""
    if FLAG in data:
        raise JT808Error("unescaped 0x7e inside a frame")
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte != ESC:
            out.append(byte)
            continue
        follower = next(it, None)
        if follower == 0x01:
            out.append(ESC)
        elif follower == 0x02:
            out.append(FLAG)
        else:
            raise JT808Error("0x7d must be followed by 0x01 or 0x02")
    return bytes(out)


def checksum(data: bytes) -> int:
    """The XOR of every byte: the frame's check code over header and body."""
    code = 0
    for byte in data:
        code ^= byte
    return code


def _bcd_digits(raw: bytes, field: str) -> str:
    digits = raw.hex()
    if not digits.isdigit():
        raise JT808Error(f"{field} is not BCD: {digits}", field=field)
    return digits


def _to_bcd(digits: str, size: int, field: str) -> bytes:
    if not (digits.isascii() and digits.isdigit()) or len(digits) > size * 2:
        raise ValueError(f"{field} must be at most {size * 2} decimal digits")
    return bytes.fromhex(digits.rjust(size * 2, "0"))


@dataclass(frozen=True, slots=True)
class Header:
    """A frame header; ``phone`` keeps every BCD digit (12 for 2013, 20 for 2019)."""

    msg_id: int
    body_length: int
    encryption: int
    version: int
    protocol_version: int | None
    phone: str
    serial: int
    packet_total: int | None = None
    packet_index: int | None = None

    @property
    def subpackaged(self) -> bool:
        """Whether this frame is one packet of a longer message."""
        return self.packet_total is not None


@dataclass(frozen=True, slots=True)
class Frame:
    """A checked, unescaped frame: its header and its body bytes."""

    header: Header
    body: bytes


def decode_frame(data: bytes) -> Frame:
    """Unframe, unescape, check and split one frame (flags included)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise JT808Error(f"a frame is bytes, not {type(data).__name__}")
    if len(data) > MAX_FRAME_BYTES:
        raise JT808Error(f"a frame is at most {MAX_FRAME_BYTES} bytes, not {len(data)}")
    data = bytes(data)
    if len(data) < 2 or data[0] != FLAG or data[-1] != FLAG:
        raise JT808Error("a frame starts and ends with 0x7e")
    content = unescape(data[1:-1])
    if len(content) < 13:
        raise JT808Error(f"frame too short ({len(content)} bytes unescaped)")
    payload, check = content[:-1], content[-1]
    if checksum(payload) != check:
        raise JT808Error(f"check code {check:#04x}, expected {checksum(payload):#04x}")
    r = _Reader(payload, "header")
    msg_id, attrs = r.u16("msg_id"), r.u16("body_attributes")
    is_2019 = bool(attrs & 0x4000)
    protocol_version = r.u8("protocol_version") if is_2019 else None
    phone = _bcd_digits(r.take(10 if is_2019 else 6, "phone"), "phone")
    serial = r.u16("serial")
    total = index = None
    if attrs & 0x2000:
        total, index = r.u16("packet_total"), r.u16("packet_index")
        if not 1 <= index <= total:
            raise JT808Error(f"packet {index} of {total}", field="packet_index")
    body = r.rest()
    if len(body) != attrs & 0x03FF:
        raise JT808Error(f"body is {len(body)} bytes, header says {attrs & 0x03FF}")
    header = Header(
        msg_id=msg_id,
        body_length=attrs & 0x03FF,
        encryption=(attrs >> 10) & 0x7,
        version=2019 if is_2019 else 2013,
        protocol_version=protocol_version,
        phone=phone,
        serial=serial,
        packet_total=total,
        packet_index=index,
    )
    return Frame(header, body)


def encode_frame(
    msg_id: int,
    body: bytes,
    *,
    phone: str,
    serial: int,
    version: int = 2013,
    protocol_version: int = 1,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """A complete escaped frame (used by tests and simulators; no encryption)."""
    if len(body) > 0x03FF:
        raise ValueError("a body is at most 1023 bytes; subpackage longer messages")
    if version not in (2013, 2019):
        raise ValueError("version is 2013 or 2019")
    attrs = len(body) | (0x2000 if packet else 0) | (0x4000 if version == 2019 else 0)
    head = struct.pack(">HH", msg_id, attrs)
    if version == 2019:
        head += bytes([protocol_version]) + _to_bcd(phone, 10, "phone")
    else:
        head += _to_bcd(phone, 6, "phone")
    head += struct.pack(">H", serial) + (struct.pack(">HH", *packet) if packet else b"")
    content = head + body
    return bytes([FLAG]) + escape(content + bytes([checksum(content)])) + bytes([FLAG])


@dataclass(frozen=True, slots=True)
class LocationReport:
    """A decoded 0x0200 location report, every field kept; ``time`` is UTC."""

    header: Header
    alarm: int
    alarms: frozenset[str]
    status: int
    statuses: frozenset[str]
    lat: float
    lon: float
    altitude_m: int
    speed_kmh: float
    heading: int
    time: datetime
    extras: tuple[tuple[int, bytes], ...]
    mileage_km: float | None = None
    signal_strength: int | None = None
    satellites: int | None = None

    @property
    def positioned(self) -> bool:
        """Whether the terminal had a position fix (status bit 1)."""
        return bool(self.status & _POSITIONED)

    @property
    def load(self) -> int:
        """Status bits 8-9: 0 empty, 1 half loaded, 3 fully loaded."""
        return (self.status >> 8) & 0x3

    def to_fix(self) -> Fix:
        """The report as a protocol ``Fix``; ``JT808Error`` if it has no position."""
        if not self.positioned:
            raise JT808Error("the report is not positioned (status bit 1 clear)")
        return Fix(self.time, self.lat, self.lon, self.speed_kmh, float(self.heading))


def _names(value: int, table: dict[int, str]) -> frozenset[str]:
    return frozenset(name for bit, name in table.items() if value >> bit & 1)


def _bcd_time(raw: bytes) -> datetime:
    digits = _bcd_digits(raw, "time")
    yy, mo, dd, hh, mi, ss = (int(digits[i : i + 2]) for i in range(0, 12, 2))
    try:
        local = datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=CHINA_TIME)
    except ValueError as exc:
        raise JT808Error(f"time 20{digits} is not a real instant: {exc}", field="time") from exc
    return local.astimezone(UTC)


def _extras(r: _Reader) -> tuple[tuple[int, bytes], ...]:
    items: list[tuple[int, bytes]] = []
    while r.pos < len(r.data):
        item_id = r.u8("extra_id")
        size = r.u8("extra_length")
        items.append((item_id, r.take(size, f"extra {item_id:#04x}")))
    return tuple(items)


def decode_location(data: bytes | Frame) -> LocationReport:
    """Decode a 0x0200 location report from a whole frame (or an already decoded one)."""
    frame = data if isinstance(data, Frame) else decode_frame(data)
    h = frame.header
    if h.msg_id != MSG_LOCATION:
        raise JT808Error(f"message {h.msg_id:#06x} is not a location report (0x0200)")
    if h.encryption:
        raise JT808Error("encrypted bodies are not supported", field="encryption")
    if h.subpackaged:
        raise JT808Error("a location report is never subpackaged", field="packet_total")
    r = _Reader(frame.body, "location report")
    alarm, status = r.u32("alarm"), r.u32("status")
    lat_raw, lon_raw = r.u32("latitude"), r.u32("longitude")
    altitude, speed, heading = r.u16("altitude"), r.u16("speed"), r.u16("heading")
    time = _bcd_time(r.take(6, "time"))
    if lat_raw > 90_000_000 or lon_raw > 180_000_000:
        raise JT808Error(f"position {lat_raw}, {lon_raw} (×10⁻⁶°) is out of range")
    if heading > 359:
        raise JT808Error(f"heading {heading} is not in 0-359", field="heading")
    extras = _extras(r)
    known: dict[int, bytes] = {}
    for item_id, value in extras:
        size = _EXTRA_SIZES.get(item_id)
        if size is not None and item_id not in known:
            if len(value) != size:
                raise JT808Error(f"extra {item_id:#04x} has {len(value)} bytes, not {size}")
            known[item_id] = value
    mileage = known.get(_EXTRA_MILEAGE)
    signal, sats = known.get(_EXTRA_SIGNAL), known.get(_EXTRA_SATELLITES)
    return LocationReport(
        header=h,
        alarm=alarm,
        alarms=_names(alarm, ALARM_BITS),
        status=status,
        statuses=_names(status, STATUS_BITS),
        lat=-lat_raw / 1_000_000 if status & _SOUTH else lat_raw / 1_000_000,
        lon=-lon_raw / 1_000_000 if status & _WEST else lon_raw / 1_000_000,
        altitude_m=altitude,
        speed_kmh=speed / 10,
        heading=heading,
        time=time,
        extras=extras,
        mileage_km=int.from_bytes(mileage, "big") / 10 if mileage is not None else None,
        signal_strength=signal[0] if signal is not None else None,
        satellites=sats[0] if sats is not None else None,
    )


def encode_location(
    *,
    phone: str,
    serial: int,
    time: datetime,
    lat: float,
    lon: float,
    alarm: int = 0,
    status: int = _POSITIONED,
    altitude_m: int = 0,
    speed_kmh: float = 0.0,
    heading: int = 0,
    extras: Sequence[tuple[int, bytes]] = (),
    version: int = 2013,
) -> bytes:
    """A 0x0200 frame; the south/west status bits follow the signs of lat and lon."""
    status = (status & ~(_SOUTH | _WEST)) | (_SOUTH if lat < 0 else 0) | (_WEST if lon < 0 else 0)
    if time.tzinfo is None:
        raise ValueError("naive datetime: give the time zone")
    local = time.astimezone(CHINA_TIME)
    if not 2000 <= local.year <= 2099:
        raise ValueError("JT/T 808 times are 2000-2099 (two BCD year digits)")
    fields = (alarm, status, round(abs(lat) * 1e6), round(abs(lon) * 1e6), altitude_m)
    try:
        body = struct.pack(">IIIIHHH", *fields, round(speed_kmh * 10), heading)
    except struct.error as exc:
        raise ValueError(f"a field does not fit its JT/T 808 width: {exc}") from exc
    body += bytes.fromhex(local.strftime("%y%m%d%H%M%S"))
    for item_id, value in extras:
        body += bytes([item_id, len(value)]) + value
    return encode_frame(MSG_LOCATION, body, phone=phone, serial=serial, version=version)


def split_stream(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut a TCP byte stream into whole frames (flags included) and the unfinished rest.

    An unfinished rest longer than ``MAX_FRAME_BYTES`` can never become a frame: it is
    dropped (returned as ``b""``), so that a peer that never closes a frame cannot make
    the caller's buffer grow without bound.
    """
    frames: list[bytes] = []
    start = buffer.find(FLAG)
    if start < 0:
        return frames, b""
    while True:
        end = buffer.find(FLAG, start + 1)
        if end < 0:
            rest = buffer[start:]
            return frames, rest if len(rest) <= MAX_FRAME_BYTES else b""
        if end == start + 1:  # two flags back to back: the first closed a frame we never saw
            start = end
            continue
        frames.append(buffer[start : end + 1])
        start = buffer.find(FLAG, end + 1)
        if start < 0:
            return frames, b""
