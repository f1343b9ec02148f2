"""The ``waste devices jt808-bridge`` runner: a terminal's 0x0200 frame comes out signed."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.jt808 import encode_location, split_stream
from devices.jt808_serve import BridgeConfigError, load_terminals, start_bridge
from devices.link import FakeLink, Link
from devices.signing import public_key_bytes
from gateway.payloads import DeviceKey, TelemetryMessage, decode
from waste.cli import app
from waste.clock import utcnow
from waste.ledger.keys import generate_private_key, save_private_key

PHONE = "013912345678"


def test_a_location_report_is_published_as_a_signed_fix(tmp_path: Path) -> None:
    key = generate_private_key()
    save_private_key(key, tmp_path / "DEV-0808.pem")
    links: dict[str, FakeLink] = {}

    def link_for(device_id: str) -> Link:
        links[device_id] = FakeLink(auto_ack=True)
        return links[device_id]

    mapping = tmp_path / "terminals.json"
    mapping.write_text(json.dumps({PHONE: "DEV-0808"}))
    running = start_bridge(
        load_terminals(mapping),
        key_dir=tmp_path,
        state_dir=tmp_path / "state",
        host="127.0.0.1",
        port=0,
        link_factory=link_for,
    )
    at = utcnow().replace(microsecond=0) - timedelta(seconds=5)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            sock.sendall(encode_location(phone=PHONE, serial=1, time=at, lat=29.3, lon=120.07))
            replies: list[bytes] = []
            rest = b""
            while not replies:
                chunk = sock.recv(4096)
                assert chunk, "connection closed early"
                replies, rest = split_stream(rest + chunk)
        link = links["DEV-0808"]
        device = DeviceKey("DEV-0808", public_key_bytes(key), "vehicle")
        deadline = time.monotonic() + 10
        got: list[TelemetryMessage] = []
        while not got and time.monotonic() < deadline:
            for sent in list(link.delivered):
                if sent.topic.endswith("/telemetry"):
                    msg = decode(
                        sent.topic, sent.payload, lookup_device=lambda _d: device, now=utcnow()
                    )
                    assert isinstance(msg, TelemetryMessage)  # the signature verifies
                    got.append(msg)
            time.sleep(0.02)
        ((fix,),) = [m.fixes for m in got]
        assert fix.t == at
        assert (round(fix.lat, 4), round(fix.lon, 4)) == (29.3, 120.07)
    finally:
        running.close()


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"phone": "DEV-1"}', '{"0139": "bad id!"}', '{"0139": 5}'],
)
def test_a_bad_mapping_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(BridgeConfigError):
        load_terminals(path)


def test_the_command_refuses_a_missing_key_plainly(tmp_path: Path) -> None:
    mapping = tmp_path / "terminals.json"
    mapping.write_text(json.dumps({PHONE: "DEV-0808"}))
    result = CliRunner().invoke(
        app,
        [
            "devices",
            "jt808-bridge",
            "--terminals",
            str(mapping),
            "--key-dir",
            str(tmp_path),
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "s"),
        ],
        env={"WASTE_MQTT_URL": "mqtt://127.0.0.1:1"},
    )
    assert result.exit_code == 2
    assert "no usable key for DEV-0808" in result.output
