"""``EmbeddedBroker``: Mosquitto as a child process when installed, amqtt otherwise."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import gateway.broker
from gateway.broker import BrokerConfig, EmbeddedBackend, EmbeddedBroker, MqttVersion
from gateway.transport import PahoTransport
from tests.support.brokers import mosquitto_path, unique_name, wait_for_port
from tests.support.telemetry import wait_for

pytestmark = pytest.mark.broker

needs_mosquitto = pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto not installed")


def _accepts(port: int) -> bool:
    try:
        wait_for_port("127.0.0.1", port, timeout=0.1)
    except TimeoutError:
        return False
    return True


@needs_mosquitto
def test_mosquitto_runs_with_its_config_in_the_data_dir_and_stops(tmp_path: Path) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path)
    port = broker.start()
    try:
        assert broker.backend is EmbeddedBackend.MOSQUITTO
        assert broker.running
        conf = (tmp_path / "mosquitto" / "mosquitto.conf").read_text()
        for line in (f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence true"):
            assert line in conf.splitlines()
        cfg = broker.config(client_id="gw-x")
        assert (cfg.port, cfg.protocol, cfg.embedded, cfg.client_id) == (
            port,
            MqttVersion.V5,
            True,
            "gw-x",
        )
        shared = broker.fit(BrokerConfig(embedded=True, port=1, share_group="g"))
        assert (shared.port, shared.share_group) == (port, "g")
    finally:
        broker.stop()
    assert not broker.running
    assert broker.port == 0
    assert not _accepts(port)


@needs_mosquitto
def test_a_taken_port_is_refused_clearly() -> None:
    with EmbeddedBroker() as first:
        with pytest.raises(RuntimeError, match="already in use"):
            EmbeddedBroker(first.port).start()
        assert first.running


@needs_mosquitto
def test_sessions_survive_a_restart_when_persisting_in_the_data_dir(tmp_path: Path) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path)
    port = broker.start()
    topic = f"{unique_name('p')}/waste/v1/devices/DEV-1/telemetry"
    settings = broker.config(client_id=unique_name("gw"))
    with PahoTransport(settings, topics=[topic], connect_timeout=5):
        pass  # the persistent session and its subscription now exist
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("dev"))
    device.connect("127.0.0.1", port)
    device.loop_start()
    device.publish(topic, b"queued", qos=1).wait_for_publish(5)
    device.disconnect()
    device.loop_stop()
    broker.stop()
    broker = EmbeddedBroker(port, data_dir=tmp_path)
    broker.start()
    try:
        with PahoTransport(settings, topics=[topic], connect_timeout=5) as again:
            msg = again.get(timeout=5)
            assert msg is not None
            assert msg.payload == b"queued"
            assert again.ack(msg)
    finally:
        broker.stop()


@needs_mosquitto
def test_mosquitto_does_not_outlive_a_killed_gateway(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from gateway.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker(data_dir=Path(sys.argv[1])); print(b.start(), flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        assert _accepts(port)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
    wait_for(lambda: not _accepts(port), timeout=10)


def test_without_mosquitto_amqtt_runs_and_the_log_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(gateway.broker, "find_mosquitto", lambda: None)
    with caplog.at_level(logging.WARNING, "gateway.broker"), EmbeddedBroker() as broker:
        assert broker.backend is EmbeddedBackend.AMQTT
        fitted = broker.fit(BrokerConfig.from_url("embedded://?share_group=g"))
        assert (fitted.protocol, fitted.share_group) == (MqttVersion.V311, None)
    assert "amqtt (in-process, mosquitto not found)" in caplog.text
    with pytest.raises(RuntimeError, match="no mosquitto executable"):
        EmbeddedBroker(backend=EmbeddedBackend.MOSQUITTO).start()
