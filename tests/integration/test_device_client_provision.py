"""``waste devices provision`` as an operator runs it: registration through the API, and the
broker login it prints working on a real Mosquitto (password file and ACL enforced)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

import devices.provision
from gateway._mosquitto import MosquittoProcess
from tests.support.brokers import mosquitto_path
from tests.support.world import World, build_world
from waste.cli import app
from waste.ledger.keys import load_private_key, public_key_b64

runner = CliRunner()


class _Shared:
    """The test client, handed to the CLI as its HTTP client (and not closed by it)."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def get(self, url: str, **kw: Any) -> Any:
        return self.http.get(url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.http.post(url, **kw)

    def close(self) -> None:
        pass


@pytest.fixture
def world(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> World:
    monkeypatch.setattr(devices.provision.httpx, "Client", lambda **_kw: _Shared(client))
    return build_world(client, admin_headers, haulers=1, sites=1)


def test_provision_registers_the_key_on_the_vehicle_by_plate(
    world: World, client: TestClient, tmp_path: Path
) -> None:
    hauler = world.haulers[0]
    key_path = tmp_path / "DEV-NEW1.pem"
    out = tmp_path / "broker"
    result = runner.invoke(
        app,
        [
            "devices",
            "provision",
            "DEV-NEW1",
            "--key-out",
            str(key_path),
            "--plate",
            hauler.plate,
            "--token",
            hauler.client._headers["Authorization"].split()[1],
            "--out-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert key_path.stat().st_mode & 0o777 == 0o600
    public, key_id = public_key_b64(load_private_key(key_path))
    got = client.get("/v1/devices/DEV-NEW1", headers=world.admin).json()
    assert (got["public_key"], got["key_id"], got["vehicle_id"]) == (
        public,
        key_id,
        hauler.vehicle_id,
    )
    assert (out / "DEV-NEW1.password").stat().st_mode & 0o777 == 0o600
    assert (out / "DEV-NEW1.acl").read_text().startswith("user DEV-NEW1\n")
    assert devices.provision.check_password_line(
        (out / "DEV-NEW1.passwd").read_text(), (out / "DEV-NEW1.password").read_text().strip()
    )


def test_a_refused_registration_leaves_no_key_behind(
    world: World, client: TestClient, tmp_path: Path
) -> None:
    token = world.haulers[0].client._headers["Authorization"].split()[1]
    key_path = tmp_path / "k.pem"
    result = runner.invoke(
        app,
        [
            "devices",
            "provision",
            "DEV-NEW2",
            "--key-out",
            str(key_path),
            "--plate",
            "浙Z99999",
            "--token",
            token,
        ],
    )
    assert result.exit_code == 2
    assert "no vehicle with plate" in result.output
    assert not key_path.exists()
    assert client.get("/v1/devices/DEV-NEW2", headers=world.admin).status_code == 404
    taken = runner.invoke(
        app,
        [
            "devices",
            "provision",
            world.haulers[0].device_id,
            "--key-out",
            str(key_path),
            "--vehicle-id",
            world.haulers[0].vehicle_id,
            "--token",
            token,
        ],
    )
    assert taken.exit_code == 2
    assert "already registered" in taken.output
    assert not key_path.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["bad/id", "--no-register"],
        ["DEV-3"],
        ["DEV-3", "--token", "t"],
        ["DEV-3", "--token", "t", "--plate", "P", "--vehicle-id", "V"],
    ],
)
def test_bad_arguments_change_nothing(
    tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["devices", "provision", *args])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def _client(port: int, user: str, password: str) -> tuple[mqtt.Client, Any]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    c.username_pw_set(user, password)
    rc = c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    return c, rc


@pytest.mark.broker
@pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed")
def test_the_printed_login_works_on_mosquitto_and_confines_the_device(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    for device in ("DEV-A", "DEV-B"):
        result = runner.invoke(
            app,
            [
                "devices",
                "provision",
                device,
                "--no-register",
                "--key-out",
                str(tmp_path / f"{device}.pem"),
                "--out-dir",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
    observer_pw = "observer-secret"
    passwd = [(out / f"{d}.passwd").read_text() for d in ("DEV-A", "DEV-B")]
    passwd.append(devices.provision.mosquitto_password_line("observer", observer_pw) + "\n")
    (tmp_path / "passwd").write_text("".join(passwd))
    acl = (
        (out / "DEV-A.acl").read_text()
        + "\n"
        + (out / "DEV-B.acl").read_text()
        + "\nuser observer\ntopic read #\n"
    )
    (tmp_path / "acl").write_text(acl)
    broker = MosquittoProcess(
        tmp_path / "mq",
        anonymous=False,
        settings=[f"password_file {tmp_path / 'passwd'}", f"acl_file {tmp_path / 'acl'}"],
    )
    broker.start()
    seen: list[str] = []
    got = threading.Event()
    try:
        observer, _ = _client(broker.port, "observer", observer_pw)
        observer.on_message = lambda _c, _u, m: (seen.append(m.topic), got.set())
        observer.subscribe("waste/#", qos=1)
        password = (out / "DEV-A.password").read_text().strip()
        dev, _ = _client(broker.port, "DEV-A", password)
        # another device's topic first: Mosquitto drops it (still acknowledging it)
        dev.publish("waste/v1/devices/DEV-B/telemetry", b"{}", qos=1).wait_for_publish(5)
        dev.publish("waste/v1/devices/DEV-A/telemetry", b"{}", qos=1).wait_for_publish(5)
        assert got.wait(5)
        assert seen == ["waste/v1/devices/DEV-A/telemetry"]
        refused = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
        refused.username_pw_set("DEV-A", password + "x")
        codes: list[Any] = []
        refused.on_connect = lambda _c, _u, _f, rc, _p: codes.append(rc)
        refused.connect("127.0.0.1", broker.port)
        refused.loop_start()
        deadline = threading.Event()
        for _ in range(50):
            if codes:
                break
            deadline.wait(0.1)
        refused.loop_stop()
        assert codes
        assert codes[0].is_failure
        for c in (dev, observer):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.stop()
