"""The JT/T 808 bridge: reports to protocol fixes, batches, replies, and a TCP terminal."""

from __future__ import annotations

import json
import socket
import struct
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.client import DeviceClient
from devices.jt808 import decode_frame, encode_frame, encode_location, split_stream
from devices.jt808_bridge import MSG_BATCH, JsonlAttributes, JT808Bridge, TerminalServer
from devices.link import FakeLink
from devices.signing import public_key_bytes
from gateway.payloads import DeviceKey, Fix, LockEvent, TelemetryMessage, decode

PHONE = "013912345678"
T = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


class Sink:
    """Collects fixes."""

    def __init__(self) -> None:
        self.fixes: list[Fix] = []

    def record_fix(self, fix: Fix) -> None:
        self.fixes.append(fix)

    def record_lock(self, lock: LockEvent) -> None:
        raise AssertionError("no locks from JT/T 808")


def location_body(
    *, lat: float, lon: float, t: datetime, alarm: int = 0, status: int = 0x3
) -> bytes:
    """A 0x0200 body laid out field by field as JT/T 808-2013 §8.18 gives it."""
    status |= (0x4 if lat < 0 else 0) | (0x8 if lon < 0 else 0)
    local = t.astimezone(UTC) + timedelta(hours=8)
    return (
        struct.pack(">I", alarm)  # alarm flags, DWORD
        + struct.pack(">I", status)  # status, DWORD
        + struct.pack(">I", round(abs(lat) * 1e6))  # latitude × 10^6, DWORD
        + struct.pack(">I", round(abs(lon) * 1e6))  # longitude × 10^6, DWORD
        + struct.pack(">H", 42)  # altitude in metres, WORD
        + struct.pack(">H", 523)  # speed in 0.1 km/h, WORD
        + struct.pack(">H", 271)  # heading 0-359, WORD
        + bytes.fromhex(local.strftime("%y%m%d%H%M%S"))  # BCD[6] time, GMT+8
        + bytes([0x01, 4])
        + struct.pack(">I", 98765)  # extra 0x01: mileage, 0.1 km
        + bytes([0x31, 1, 9])  # extra 0x31: satellites
    )


def reply_of(frame: bytes) -> tuple[int, int, int, int]:
    """(reply msg id, answered serial, answered msg id, result) of a 0x8001 frame."""
    decoded = decode_frame(frame)
    serial, msg_id, result = struct.unpack(">HHB", decoded.body)
    return decoded.header.msg_id, serial, msg_id, result


def test_a_location_report_becomes_a_fix_and_its_flags_attributes(tmp_path: Path) -> None:
    sink, log = Sink(), JsonlAttributes(tmp_path / "attributes.jsonl")
    bridge = JT808Bridge({PHONE: ("DEV-0808", sink)}, on_report=log)
    frame = encode_frame(
        0x0200, location_body(lat=29.3061, lon=120.0752, t=T, alarm=1 << 31), phone=PHONE, serial=7
    )
    reply = bridge.handle(frame)
    assert reply is not None
    assert reply_of(reply) == (0x8001, 7, 0x0200, 0)
    assert sink.fixes == [Fix(T, 29.3061, 120.0752, 52.3, 271.0)]
    (line,) = (tmp_path / "attributes.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["device_id"] == "DEV-0808"
    assert record["t"] == "2026-11-23T08:00:00Z"
    assert record["attributes"]["alarms"] == ["illegal_door_open"]
    assert record["attributes"]["statuses"] == ["acc_on", "positioned"]
    assert record["attributes"]["altitude_m"] == 42
    assert record["attributes"]["mileage_km"] == 9876.5
    assert record["attributes"]["satellites"] == 9


def test_southern_and_western_positions_keep_their_signs() -> None:
    sink = Sink()
    bridge = JT808Bridge({PHONE: ("DEV-0808", sink)})
    bridge.handle(encode_location(phone=PHONE, serial=1, time=T, lat=-33.8688, lon=-151.2093))
    assert (sink.fixes[0].lat, sink.fixes[0].lon) == (-33.8688, -151.2093)


def test_a_batch_upload_gives_every_positioned_fix_in_order() -> None:
    sink = Sink()
    bridge = JT808Bridge({"13912345678": ("DEV-0808", sink)})  # leading zero or not: same phone
    items = [
        location_body(lat=29.30 + i / 1000, lon=120.07, t=T + timedelta(seconds=10 * i))
        for i in range(3)
    ]
    items.append(
        location_body(lat=0.0, lon=0.0, t=T + timedelta(seconds=40), status=0x1)
    )  # no position
    body = struct.pack(">HB", len(items), 1)  # count, type 1: blind-area supplement
    body += b"".join(struct.pack(">H", len(item)) + item for item in items)
    reply = bridge.handle(encode_frame(MSG_BATCH, body, phone=PHONE, serial=9))
    assert reply is not None
    assert reply_of(reply) == (0x8001, 9, MSG_BATCH, 0)
    assert [f.t for f in sink.fixes] == [T + timedelta(seconds=10 * i) for i in range(3)]


@pytest.mark.parametrize(
    "body",
    [
        b"\x00",
        struct.pack(">HB", 2, 0) + struct.pack(">H", 5) + b"\x00" * 5,
        struct.pack(">HB", 1, 0) + b"\x00\x40",
    ],
)
def test_a_malformed_batch_is_answered_as_bad_and_records_nothing(body: bytes) -> None:
    sink = Sink()
    bridge = JT808Bridge({PHONE: ("DEV-0808", sink)})
    reply = bridge.handle(encode_frame(MSG_BATCH, body, phone=PHONE, serial=3))
    assert reply is not None
    assert reply_of(reply)[3] == 2
    assert sink.fixes == []
    assert bridge.rejected == 1


def test_unknown_terminals_garbage_and_other_messages() -> None:
    sink = Sink()
    bridge = JT808Bridge({PHONE: ("DEV-0808", sink)})
    stranger = encode_location(phone="013900000000", serial=1, time=T, lat=1.0, lon=2.0)
    reply = bridge.handle(stranger)
    assert reply is not None
    assert reply_of(reply)[3] == 1
    assert bridge.handle(b"\x7e\x00\x7e") is None
    heartbeat = bridge.handle(encode_frame(0x0002, b"", phone=PHONE, serial=4))
    assert heartbeat is not None
    assert reply_of(heartbeat) == (0x8001, 4, 0x0002, 0)
    other = bridge.handle(encode_frame(0x0900, b"\x01", phone=PHONE, serial=5))
    assert other is not None
    assert reply_of(other)[3] == 3
    register = bridge.handle(encode_frame(0x0100, b"\x00" * 37, phone=PHONE, serial=6))
    assert register is not None
    answer = decode_frame(register)
    assert answer.header.msg_id == 0x8100
    assert answer.body[:3] == b"\x00\x06\x00"
    assert answer.body[3:] == b"waste-bridge"
    assert sink.fixes == []


def test_a_2019_terminal_is_answered_in_its_own_version() -> None:
    sink = Sink()
    phone = "00000000013912345678"
    bridge = JT808Bridge({phone: ("DEV-0808", sink)})
    reply = bridge.handle(
        encode_location(phone=phone, serial=2, time=T, lat=1.0, lon=2.0, version=2019)
    )
    assert reply is not None
    assert decode_frame(reply).header.version == 2019
    assert len(sink.fixes) == 1


def test_fixes_from_a_terminal_reach_the_gateway_signed(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    link = FakeLink(auto_ack=True)
    client = DeviceClient("DEV-0808", key, tmp_path / "state", link, clock=lambda: T)
    client.start()
    bridge = JT808Bridge({PHONE: ("DEV-0808", client)})
    for i in range(3):
        bridge.handle(
            encode_location(
                phone=PHONE, serial=i, time=T + timedelta(seconds=i), lat=29.3, lon=120.07
            )
        )
    client.pump()
    device = DeviceKey("DEV-0808", public_key_bytes(key), "vehicle")
    got = [
        decode(s.topic, s.payload, lookup_device=lambda _d: device, now=T)
        for s in link.delivered
        if s.topic.endswith("/telemetry")
    ]
    assert all(isinstance(m, TelemetryMessage) for m in got)
    assert [f.t for m in got if isinstance(m, TelemetryMessage) for f in m.fixes] == [
        T + timedelta(seconds=i) for i in range(3)
    ]


def test_a_tcp_terminal_gets_replies_to_frames_split_and_joined_across_reads() -> None:
    sink = Sink()
    server = TerminalServer(
        ("127.0.0.1", 0), JT808Bridge({PHONE: ("DEV-0808", sink)}), idle_timeout=5
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        frames = [
            encode_location(
                phone=PHONE, serial=i, time=T + timedelta(seconds=10 * i), lat=29.3, lon=120.07
            )
            for i in range(3)
        ]
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"noise" + frames[0] + frames[1][:10])  # junk before, one frame and a half
            sock.sendall(frames[1][10:] + frames[2])
            replies: list[bytes] = []
            rest = b""
            while len(replies) < 3:
                chunk = sock.recv(4096)
                assert chunk, "connection closed early"
                got, rest = split_stream(rest + chunk)
                replies += got
        assert [reply_of(f)[1:] for f in replies] == [(i, 0x0200, 0) for i in range(3)]
        assert [f.t for f in sink.fixes] == [T + timedelta(seconds=10 * i) for i in range(3)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
