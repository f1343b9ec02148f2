"""A bridge for JT/T 808 terminals: location reports in, signed protocol telemetry out.

A JT/T 808 terminal cannot sign: the bridge holds a device key per terminal (by its
phone number) and signs on its behalf through a ``DeviceClient``, so the bridge is
the trust boundary for these devices; run it next to the terminals' network and
protect its keys as the devices' own.

Per frame (``JT808Bridge.handle``):

    0x0200 location report        → one fix; the platform general response 0x8001
    0x0704 batch (or blind-area)  → one fix per positioned item, in order; 0x8001
    0x0002 heartbeat, 0x0102 auth → 0x8001
    0x0100 registration           → 0x8100 with an authentication code
    anything else                 → 0x8001 "unsupported"

A report without a position (status bit 1 clear) gives no fix. The terminal's alarm
and status flags, altitude, mileage, signal and satellites are not protocol fix
members (PROTOCOL §4 fixes them, and the gateway refuses others): they are handed,
with the fix, to ``on_report`` (by default appended as JSON lines to a log file), so
they are kept next to the telemetry, not inside it.
"""

from __future__ import annotations

import json
import logging
import socketserver
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from devices.jt808 import (
    MSG_LOCATION,
    Frame,
    JT808Error,
    LocationReport,
    decode_frame,
    decode_location,
    encode_frame,
    split_stream,
)
from gateway.payloads import Fix
from waste.clock import format_utc

__all__ = [
    "MSG_BATCH",
    "JT808Bridge",
    "JsonlAttributes",
    "TerminalServer",
    "attributes_of",
    "report_to_fix",
]

log = logging.getLogger(__name__)

MSG_HEARTBEAT, MSG_REGISTER, MSG_AUTH, MSG_BATCH = 0x0002, 0x0100, 0x0102, 0x0704
MSG_GENERAL_REPLY, MSG_REGISTER_REPLY = 0x8001, 0x8100
OK, FAILED, BAD_MESSAGE, UNSUPPORTED = 0, 1, 2, 3


class FixSink(Protocol):
    """Where the bridge records fixes (a ``DeviceClient``)."""

    def record_fix(self, fix: Fix) -> None:
        """Store one fix for sending."""
        ...


def report_to_fix(report: LocationReport) -> Fix:
    """The protocol fix of a positioned report (JT/T 808 carries no HDOP)."""
    return report.to_fix()


def attributes_of(report: LocationReport) -> dict[str, Any]:
    """Everything of a report that a protocol fix does not carry, JSON-ready."""
    return {
        "phone": report.header.phone,
        "serial": report.header.serial,
        "alarm": report.alarm,
        "alarms": sorted(report.alarms),
        "status": report.status,
        "statuses": sorted(report.statuses),
        "load": report.load,
        "altitude_m": report.altitude_m,
        "mileage_km": report.mileage_km,
        "signal_strength": report.signal_strength,
        "satellites": report.satellites,
        "extras": {f"{i:#04x}": v.hex() for i, v in report.extras},
    }


class JsonlAttributes:
    """Appends each report's attributes to a JSON-lines file (one object per fix)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __call__(self, device_id: str, fix: Fix, attributes: dict[str, Any]) -> None:
        """Append ``{"device_id", "t", "attributes"}``."""
        line = json.dumps(
            {"device_id": device_id, "t": format_utc(fix.t), "attributes": attributes},
            sort_keys=True,
        )
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def _normalise(phone: str) -> str:
    return phone.lstrip("0") or "0"


class JT808Bridge:
    """Turns frames from terminals into fixes on their devices' clients, and replies."""

    def __init__(
        self,
        terminals: Mapping[str, tuple[str, FixSink]],
        *,
        on_report: Callable[[str, Fix, dict[str, Any]], None] | None = None,
        auth_code: str = "waste-bridge",
    ) -> None:
        """``terminals``: terminal phone number → (device id, its client)."""
        self._terminals = {_normalise(p): v for p, v in terminals.items()}
        self.on_report = on_report
        self.auth_code = auth_code
        self._serial = 0
        self._lock = threading.Lock()
        self.fixes = 0
        self.rejected = 0

    def _next_serial(self) -> int:
        with self._lock:
            self._serial = (self._serial + 1) % 0x10000
            return self._serial

    def _reply(self, frame: Frame, msg_id: int, body: bytes) -> bytes:
        h = frame.header
        version = h.version
        return encode_frame(
            msg_id,
            body,
            phone=h.phone,
            serial=self._next_serial(),
            version=version,
            protocol_version=h.protocol_version or 1,
        )

    def _general(self, frame: Frame, result: int) -> bytes:
        body = struct.pack(">HHB", frame.header.serial, frame.header.msg_id, result)
        return self._reply(frame, MSG_GENERAL_REPLY, body)

    def handle(self, data: bytes) -> bytes | None:
        """One whole frame in; the reply frame out (None if the frame was unreadable)."""
        try:
            frame = decode_frame(data)
        except JT808Error as exc:
            self.rejected += 1
            log.warning("unreadable JT/T 808 frame (%d bytes): %s", len(data), exc.detail)
            return None
        msg = frame.header.msg_id
        if msg == MSG_REGISTER:
            body = struct.pack(">HB", frame.header.serial, OK) + self.auth_code.encode("ascii")
            return self._reply(frame, MSG_REGISTER_REPLY, body)
        if msg in (MSG_HEARTBEAT, MSG_AUTH):
            return self._general(frame, OK)
        if msg not in (MSG_LOCATION, MSG_BATCH):
            return self._general(frame, UNSUPPORTED)
        terminal = self._terminals.get(_normalise(frame.header.phone))
        if terminal is None:
            log.warning("location from unknown terminal %s", frame.header.phone)
            self.rejected += 1
            return self._general(frame, FAILED)
        try:
            reports = self._reports(frame)
        except JT808Error as exc:
            log.warning("terminal %s: bad location data: %s", frame.header.phone, exc.detail)
            self.rejected += 1
            return self._general(frame, BAD_MESSAGE)
        device_id, sink = terminal
        for report in reports:
            if not report.positioned:
                continue
            fix = report_to_fix(report)
            sink.record_fix(fix)
            self.fixes += 1
            if self.on_report is not None:
                self.on_report(device_id, fix, attributes_of(report))
        return self._general(frame, OK)

    @staticmethod
    def _reports(frame: Frame) -> list[LocationReport]:
        if frame.header.msg_id == MSG_LOCATION:
            return [decode_location(frame)]
        body = frame.body
        if len(body) < 3:
            raise JT808Error("a batch upload needs its count and type")
        count, pos, reports = struct.unpack(">H", body[:2])[0], 3, []
        as_location = replace(frame.header, msg_id=MSG_LOCATION)
        for i in range(count):
            if pos + 2 > len(body):
                raise JT808Error(f"batch item {i} of {count} is missing")
            size = struct.unpack(">H", body[pos : pos + 2])[0]
            item = body[pos + 2 : pos + 2 + size]
            if len(item) != size:
                raise JT808Error(f"batch item {i} is cut short")
            header = replace(as_location, body_length=size)
            reports.append(decode_location(Frame(header, item)))
            pos += 2 + size
        if pos != len(body):
            raise JT808Error("bytes after the last batch item")
        return reports


class _Handler(socketserver.BaseRequestHandler):
    server: TerminalServer

    def handle(self) -> None:
        buffer = b""
        self.request.settimeout(self.server.idle_timeout)
        while True:
            try:
                chunk = self.request.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            frames, buffer = split_stream(buffer + chunk)
            for frame in frames:
                reply = self.server.bridge.handle(frame)
                if reply is not None:
                    self.request.sendall(reply)


class TerminalServer(socketserver.ThreadingTCPServer):
    """A TCP server for terminals (one thread per connection) feeding a ``JT808Bridge``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], bridge: JT808Bridge, *, idle_timeout: float = 300.0
    ) -> None:
        self.bridge = bridge
        self.idle_timeout = idle_timeout
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])
