"""The reference device client against real brokers and the real gateway.

The broker goes away (the device's network is cut by a TCP proxy, or Mosquitto itself
is stopped), the device keeps recording, and when the broker is back everything
arrives at the gateway in order, in batches, and is stored exactly once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from devices.client import DeviceClient
from devices.link import PahoLink
from gateway.broker import BrokerConfig
from gateway.payloads import Fix, LockEvent, LockEventKind
from tests.support.brokers import Mosquitto, free_port, mosquitto_path
from tests.support.brokers import unique_name as unique
from tests.support.gateways import RunningGateway, gateway_mqtt_url  # noqa: F401 (fixture)
from tests.support.telemetry import ORIGIN, make_rig, wait_for
from tests.support.world import build_world
from waste.clock import utcnow
from waste.config import Settings
from waste.telemetry.domain import TrackUpdate
from waste.telemetry.models import DeviceMessage, TelemetryFix, TelemetryLockEvent

pytestmark = pytest.mark.broker


class Proxy:
    """A TCP forwarder standing for the device's mobile network: ``cut`` and ``restore`` it."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = threading.Event()
        self.up.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                conn.close()  # no network: the connection attempt fails
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Accept connections again."""
        self.up.set()

    def close(self) -> None:
        """Stop listening."""
        self._closed = True
        self.cut()
        self.listener.close()


def _fixes(start_min: float, count: int) -> list[Fix]:
    base = utcnow() - timedelta(minutes=start_min)
    return [
        Fix(base + timedelta(seconds=10 * i), ORIGIN[0] + i * 1e-4, ORIGIN[1], 40.0, 0.0, 0.9)
        for i in range(count)
    ]


def _device(world_device: tuple[str, object], state: Path, host: str, port: int) -> DeviceClient:
    device_id, key = world_device
    link = PahoLink(
        BrokerConfig(host=host, port=port, protocol=BrokerConfig().protocol),
        client_id=device_id,
        keepalive=5,
        reconnect_delay=(0.1, 0.5),
    )
    client = DeviceClient(device_id, key, state, link)  # type: ignore[arg-type]
    client.start_background()
    return client


def _check_exactly_once_in_order(
    engine: Engine, device_id: str, fixes: Sequence[Fix], updates: Sequence[TrackUpdate]
) -> None:
    rig = make_rig(engine)
    rows = rig.rows(TelemetryFix, TelemetryFix.t, device_id=device_id)
    mine = {f.t for f in fixes}
    stored = [r.t for r in rows if r.t in mine]
    assert sorted(stored) == sorted(mine)  # every fix, once
    messages = rig.rows(DeviceMessage, DeviceMessage.seq, device_id=device_id)
    received = [m.received_at for m in messages]
    assert received == sorted(received)  # arrived in seq order
    seen = [f.key[0] for u in updates if u.device_id == device_id for f in u.fixes]
    seen = [t for t in seen if t in mine]
    assert seen == sorted(seen)  # handed downstream in fix-time order
    assert len(seen) == len(mine)


def test_a_network_outage_is_buffered_and_delivered_in_order_exactly_once(
    mqtt_url: str,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    world = build_world(client, admin_headers, haulers=1, sites=1)
    hauler = world.haulers[0]
    running = RunningGateway(settings, engine, mqtt_url)
    proxy = Proxy(running.gateway.broker.port)
    device = _device(
        (hauler.device_id, hauler.device_key), tmp_path / "dev", "127.0.0.1", proxy.port
    )
    try:
        wait_for(lambda: device.link.connected)
        live = _fixes(30, 5)
        for fix in live:
            device.record_fix(fix)
        assert device.wait_delivered(10)
        proxy.cut()
        wait_for(lambda: not device.link.connected)
        offline = _fixes(20, 60)
        lock = LockEvent(
            offline[29].t + timedelta(seconds=1), "SEAL-X", LockEventKind.UNSEALED, *ORIGIN
        )
        device.record_fixes(offline[:30])
        device.record_lock(lock)
        device.record_fixes(offline[30:])
        assert device.backlog[0] == 61  # all waiting on disk, none formed
        proxy.restore()
        assert device.wait_delivered(30)
        rig = make_rig(engine)
        wait_for(lambda: rig.count(TelemetryFix, device_id=hauler.device_id) >= 65, timeout=20)
        wait_for(lambda: rig.count(TelemetryLockEvent, device_id=hauler.device_id) == 1)
        _check_exactly_once_in_order(engine, hauler.device_id, live + offline, running.updates)
        batches = rig.count(DeviceMessage, device_id=hauler.device_id)
        assert batches <= 5 + 3 + 2  # live ones, then 30 + lock + 30 in few messages
    finally:
        device.close(timeout=2)
        proxy.close()
        running.close()


@pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed")
def test_the_broker_itself_going_down_loses_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Mosquitto stops and starts again (persisting its sessions). The device reaches it
    again only once the gateway has resubscribed: Mosquitto 2.0 does not restore shared
    subscriptions from its persistence file, so what a device publishes in between has
    no subscriber and is dropped by the broker after acknowledging it."""
    world = build_world(client, admin_headers, haulers=1, sites=1)
    hauler = world.haulers[0]
    broker = Mosquitto(tmp_path / "mq", persistence=True)
    broker.start()
    running = RunningGateway(
        settings, engine, f"{broker.url}?client_id={unique('gw')}&session_expiry=600"
    )
    proxy = Proxy(broker.port)
    device = _device(
        (hauler.device_id, hauler.device_key), tmp_path / "dev", "127.0.0.1", proxy.port
    )
    try:
        wait_for(lambda: device.link.connected)
        before = _fixes(30, 3)
        device.record_fixes(before)
        assert device.wait_delivered(10)
        proxy.cut()
        broker.stop()
        wait_for(lambda: not device.link.connected)
        during = _fixes(20, 40)
        device.record_fixes(during)
        broker.start()
        transport = running.gateway.transport
        assert transport is not None
        wait_for(lambda: transport.connected, timeout=40)
        assert transport.wait_ready(10)
        proxy.restore()
        assert device.wait_delivered(30)
        rig = make_rig(engine)
        wait_for(lambda: rig.count(TelemetryFix, device_id=hauler.device_id) >= 43, timeout=30)
        _check_exactly_once_in_order(engine, hauler.device_id, before + during, running.updates)
    finally:
        device.close(timeout=2)
        proxy.close()
        running.close()
        broker.stop()


def test_a_crashed_device_resends_what_was_not_acknowledged(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Killed with messages in flight: the next process sends them again, same seq and
    bytes; the gateway keeps one copy of each."""
    world = build_world(client, admin_headers, haulers=1, sites=1)
    hauler = world.haulers[0]
    running = RunningGateway(
        settings, engine, f"embedded://127.0.0.1:{free_port()}?client_id={unique('gw')}"
    )
    proxy = Proxy(running.gateway.broker.port)
    first = _device(
        (hauler.device_id, hauler.device_key), tmp_path / "dev", "127.0.0.1", proxy.port
    )
    try:
        wait_for(lambda: first.link.connected)
        proxy.cut()  # in flight forever: no PUBACK will come on this connection
        wait_for(lambda: not first.link.connected)
        fixes = _fixes(10, 12)
        first.record_fixes(fixes)
        first._stop.set()  # the process dies: no clean close, files stay as they are
        assert isinstance(first.link, PahoLink)
        first.link.abort()
        proxy.restore()
        second = _device(
            (hauler.device_id, hauler.device_key), tmp_path / "dev", "127.0.0.1", proxy.port
        )
        try:
            assert second.wait_delivered(30)
            rig = make_rig(engine)
            wait_for(lambda: rig.count(TelemetryFix, device_id=hauler.device_id) >= 12, timeout=20)
            _check_exactly_once_in_order(engine, hauler.device_id, fixes, running.updates)
        finally:
            second.close(timeout=2)
    finally:
        proxy.close()
        running.close()
