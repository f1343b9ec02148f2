"""Scale-out: two ``waste gateway`` processes share one MQTT 5 shared subscription.

One real Mosquitto (on a free port, or the broker of ``WASTE_TEST_MQTT_URL`` with a
share group of this test's own), this test's database (SQLite or PostgreSQL), two
gateway subprocesses. Several devices publish a signed stream, duplicates included;
one gateway is killed with SIGKILL mid-stream and started again. Every message must
be stored exactly once, and both processes must have taken a share.

Sharing is opt-in (the default is a plain subscription, which every gateway would get
all of): gateway ``a`` names the group in its URL (``?share_group=``), ``b`` in
``WASTE_GATEWAY_SHARE_GROUP``, the two ways an operator scales out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from tests.support.brokers import Mosquitto, broker_url_for_tests, free_port, mosquitto_path
from tests.support.brokers import unique_name as unique
from tests.support.telemetry import Vehicle, http_get, make_rig, minutes_ago, wait_for
from tests.support.world import build_world
from waste.telemetry.models import DeadLetter, DeviceMessage, TelemetryFix, TelemetryLockEvent

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """Mosquitto on a free port (or the external test broker)."""
    if url := broker_url_for_tests():
        yield url
        return
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed and WASTE_TEST_MQTT_URL is not set")
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@dataclass
class GatewayProcess:
    """A ``waste gateway`` subprocess."""

    name: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_port(self) -> int:
        """Where it serves /metrics and /healthz."""
        return int(self.env["WASTE_GATEWAY_METRICS_PORT"])

    def start(self) -> None:
        """Start it and wait until it is connected and healthy."""
        exe = Path(sys.executable).with_name("waste")
        cmd = (
            [str(exe)]
            if exe.exists()
            else [sys.executable, "-c", "from waste.cli import main; main()"]
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*cmd, "gateway"], env=self.env, stdout=out, stderr=out)
        wait_for(self.healthy, timeout=20)

    def healthy(self) -> bool:
        """Whether /healthz answers 200."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
        try:
            return http_get(self.metrics_port, "/healthz")[0] == 200
        except OSError:
            return False

    def metric(self, line_prefix: str) -> float:
        """The value of the first metrics line starting with ``line_prefix``."""
        text = http_get(self.metrics_port, "/metrics")[1]
        for line in text.splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig``, wait; kill if it lingers. The exit code."""
        proc, self.proc = self.proc, None
        assert proc is not None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
            raise AssertionError(
                f"{self.name} did not stop: {self.log.read_text()[-2000:]}"
            ) from None


def test_two_gateways_store_every_message_exactly_once(
    broker_url: str,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    tmp_path: Path,
) -> None:
    world = build_world(client, admin_headers, haulers=4, sites=1)
    trucks = [Vehicle.of(h) for h in world.haulers]
    group = unique("share")
    base = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
    gateways = []
    opt_in = {
        "a": ({"share_group": group}, {}),
        "b": ({}, {"WASTE_GATEWAY_SHARE_GROUP": group}),
    }
    for name, (query, setting) in opt_in.items():
        params = {"client_id": f"{group}-{name}", **query, "session_expiry": "120"}
        env = base | setting | {
            "WASTE_DATA_DIR": str(tmp_path / name),
            "WASTE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "WASTE_MQTT_URL": f"{broker_url}?" + "&".join(f"{k}={v}" for k, v in params.items()),
            "WASTE_GATEWAY_METRICS_PORT": str(free_port()),
            "WASTE_GATEWAY_BATCH_INTERVAL_S": "0.05",
            "WASTE_AUTO_MIGRATE": "false",
        }
        gateways.append(GatewayProcess(name, env, tmp_path / f"gateway-{name}.log"))
    for gw in gateways:
        gw.start()
    host, port = broker_url.removeprefix("mqtt://").split(":")
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("dev"))
    dev.connect(host, int(port), keepalive=10)
    dev.loop_start()
    rig = make_rig(engine)  # for counting rows only
    sent: set[bytes] = set()
    expected = 0
    try:
        for round_ in range(2):
            for i in range(20):
                for truck in trucks:
                    t = minutes_ago(30 - 10 * round_ - i * 0.25)
                    message = truck.telemetry(t, t.replace(microsecond=500_000))
                    dev.publish(*message, qos=1).wait_for_publish(5)
                    sent.add(message[1])
                    expected += 1
                    if i % 5 == 0:  # a device resending after a lost PUBACK
                        dev.publish(*message, qos=1).wait_for_publish(5)
                if (round_, i) == (0, 10):  # kill one gateway mid-stream: no flush, no acks
                    assert gateways[0].stop(signal.SIGKILL) == -signal.SIGKILL
            for truck in trucks:
                lock = truck.lock(minutes_ago(5 - round_))
                dev.publish(*lock, qos=1).wait_for_publish(5)
                sent.add(lock[1])
                expected += 1
            if round_ == 0:  # back with the same client id: its session resumes
                gateways[0].start()
        wait_for(lambda: rig.count(DeviceMessage) == expected, timeout=20)
        time.sleep(0.3)  # anything stored twice would show up now
        assert rig.count(DeviceMessage) == expected
        assert rig.count(TelemetryFix) == 2 * (expected - 2 * len(trucks))
        assert rig.count(TelemetryLockEvent) == 2 * len(trucks)
        # only this test's payloads: a shared test broker may carry other tests' traffic
        assert not [d for d in rig.rows(DeadLetter, DeadLetter.id) if d.payload in sent]
        shares = [
            gw.metric('waste_gateway_messages_accepted_total{channel="telemetry"}')
            for gw in gateways
        ]
        assert all(share > 0 for share in shares), shares
    finally:
        dev.disconnect()
        dev.loop_stop()
        codes = [gw.stop() for gw in gateways if gw.proc is not None]
    assert codes == [0, 0]


def test_waste_gateway_on_the_embedded_broker_stops_cleanly_on_sigint(
    client: TestClient, admin_headers: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    world = build_world(client, admin_headers, haulers=1, sites=1)
    truck = Vehicle.of(world.haulers[0])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")} | {
        "WASTE_DATA_DIR": str(tmp_path / "data"),
        "WASTE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "WASTE_MQTT_URL": f"embedded://127.0.0.1:{port}",
        "WASTE_GATEWAY_METRICS_PORT": str(free_port()),
        "WASTE_AUTO_MIGRATE": "false",
    }
    gw = GatewayProcess("embedded", env, tmp_path / "gateway.log")
    gw.start()
    rig = make_rig(engine)
    try:
        dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("dev"))
        dev.connect("127.0.0.1", port, keepalive=10)
        dev.loop_start()
        dev.publish(*truck.telemetry(minutes_ago(1)), qos=1).wait_for_publish(5)
        wait_for(lambda: rig.count(TelemetryFix) == 1)
        dev.disconnect()
        dev.loop_stop()
    finally:
        code = gw.stop(signal.SIGINT)
    assert code == 0
    assert "gateway stopped" in gw.log.read_text()
