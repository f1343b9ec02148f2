"""Fault injection for ``tests/faults``: processes to kill, a TCP proxy to cut, devices that buffer.

- ``ServiceProcess`` runs ``waste gateway`` or ``waste serve`` as a subprocess that a
  test can SIGKILL and start again (``gateway_process``, ``api_process``).
- ``TcpProxy`` sits between a service and PostgreSQL on 127.0.0.1; ``cut()`` refuses
  new connections (the listener is closed: connection refused) and resets the
  established ones (RST), ``restore()`` listens again on the same port.
- ``open_device`` gives the reference device client (``devices.client``: durable
  seq, store-and-forward outbox, QoS 1) on a ``RecordingLink`` that remembers every
  message handed to the broker, first sends and resends alike, so a test knows
  exactly which ``(device_id, seq)`` went out.

Everything stays on loopback. ``require_real_services`` skips a test unless both
``WASTE_TEST_DATABASE_URL`` (PostgreSQL) and ``WASTE_TEST_MQTT_URL`` are set.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from devices.client import DeviceClient
from devices.link import Connected, LinkEvent, PahoLink, Will
from gateway.broker import BrokerConfig
from gateway.payloads import Fix
from tests.support.brokers import MQTT_ENV, free_port, mosquitto_path, unique_name
from tests.support.databases import PG_ENV, postgres_url
from tests.support.telemetry import http_get, wait_for

__all__ = [
    "Device",
    "RecordingLink",
    "ServiceProcess",
    "TcpProxy",
    "api_process",
    "gateway_process",
    "open_device",
    "require_real_services",
    "service_env",
    "waste_command",
]


def require_real_services(*, own_mosquitto: bool = True) -> None:
    """Skip unless PostgreSQL and a real broker are configured (and mosquitto is installed)."""
    missing = [
        name
        for name, ok in ((PG_ENV, postgres_url() is not None), (MQTT_ENV, os.environ.get(MQTT_ENV)))
        if not ok
    ]
    if missing:
        pytest.skip(
            f"fault tests need real services: set {' and '.join(missing)} "
            "(PostgreSQL and an MQTT broker; CI's second run sets both)"
        )
    if own_mosquitto and mosquitto_path() is None:
        pytest.skip("fault tests start and restart their own broker: install mosquitto")


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``WASTE_*``, plus ``WASTE_<NAME>`` settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
    return base | {f"WASTE_{k.upper()}": v for k, v in settings.items()}


def waste_command() -> list[str]:
    """The ``waste`` command of this Python environment."""
    exe = Path(sys.executable).with_name("waste")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from waste.cli import main; main()"]


@dataclass
class ServiceProcess:
    """A ``waste`` subprocess that can be started, killed and started again."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int
    health_path: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until its health endpoint answers 200."""
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts + 1} ---\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [*waste_command(), *self.args], env=self.env, stdout=out, stderr=out
            )
        self.starts += 1
        wait_for(self.healthy, timeout=timeout)

    def healthy(self) -> bool:
        """Whether the health endpoint answers 200 (fails the test if the process died)."""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} is not running: {self.tail()}")
        return self.status() == 200

    def status(self) -> int | None:
        """The health endpoint's status code, or None if nothing answers."""
        try:
            return http_get(self.port, self.health_path)[0]
        except OSError:
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or acknowledged."""
        proc, self.proc = self.proc, None
        assert proc is not None, f"{self.name} is not running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills += 1

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (SIGKILL if it lingers); the exit code, or 0 if not running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return 0 if proc is None else int(proc.returncode)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
            raise AssertionError(f"{self.name} did not stop: {self.tail()}") from None

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        return self.log.read_text("utf-8", "replace")[-chars:] if self.log.exists() else ""

    def metric(self, line_prefix: str) -> float:
        """Sum of the metrics lines starting with ``line_prefix`` (gateways only)."""
        text = http_get(self.port, "/metrics")[1]
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_prefix)
        )


def gateway_process(
    workdir: Path, *, database_url: str, mqtt_url: str, client_id: str, **settings: str
) -> ServiceProcess:
    """A ``waste gateway`` with a stable client id (its broker session survives restarts)."""
    port = free_port()
    env = service_env(
        data_dir=str(workdir / "gateway-data"),
        database_url=database_url,
        mqtt_url=mqtt_url,
        gateway_metrics_port=str(port),
        gateway_batch_interval_s="0.05",
        auto_migrate="false",
        **settings,
    )
    return ServiceProcess(
        "gateway",
        ["gateway", "--client-id", client_id],
        env,
        workdir / "gateway.log",
        port,
        "/healthz",
    )


def api_process(
    workdir: Path, *, database_url: str, admin_token: str, log_key: Path, **settings: str
) -> ServiceProcess:
    """A ``waste serve`` (uvicorn) on a free port, signing checkpoints with ``log_key``."""
    port = free_port()
    env = service_env(
        data_dir=str(workdir / "api-data"),
        database_url=database_url,
        admin_token=admin_token,
        log_key_path=str(log_key),
        port=str(port),
        auto_migrate="false",
        **settings,
    )
    return ServiceProcess("api", ["serve"], env, workdir / "api.log", port, "/healthz")


# --- a TCP proxy that can be cut ----------------------------------------------------


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket
    reset: threading.Event = field(default_factory=threading.Event)


def _rst_close(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed server or a cut cable looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class TcpProxy:
    """A loopback TCP proxy to ``target``; ``cut()`` and ``restore()`` simulate an outage."""

    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.accepted = 0
        self.reset = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_database(cls, url: str) -> TcpProxy:
        """A proxy to the PostgreSQL server of ``url``."""
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at this proxy."""
        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def start(self) -> None:
        """Listen and forward."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        self._accepting.set()
        self._spawn(self._accept_loop, sock)

    def cut(self) -> int:
        """Refuse new connections and reset the established ones; how many were reset."""
        self._accepting.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # connects now get "connection refused"
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.reset.set()
        wait_for(lambda: not self._pairs, timeout=5)
        self.cuts += 1
        return len(pairs)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.start()

    def close(self) -> None:
        """Stop everything."""
        self._closed.set()
        self.cut()
        for thread in self._threads:
            thread.join(2)

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept_loop(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            while self._accepting.is_set() and self._listener is listener:
                if not sel.select(0.05):
                    continue
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    _rst_close(client)
                    continue
                pair = _Pair(client, upstream)
                with self._lock:
                    self._pairs.add(pair)
                    self.accepted += 1
                self._spawn(self._pump, pair)

    def _pump(self, pair: _Pair) -> None:
        """Copy bytes both ways until either side closes or the proxy is cut."""
        peer = {pair.client: pair.upstream, pair.upstream: pair.client}
        try:
            with selectors.DefaultSelector() as sel:
                for sock in peer:
                    sel.register(sock, selectors.EVENT_READ)
                while not pair.reset.is_set():
                    for key, _ in sel.select(0.05):
                        src: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = src.recv(65536)
                        if not data:
                            return
                        peer[src].sendall(data)
        except OSError:
            return
        finally:
            if pair.reset.is_set():
                self.reset += 1
                _rst_close(pair.client)
                _rst_close(pair.upstream)
            else:
                pair.client.close()
                pair.upstream.close()
            with self._lock:
                self._pairs.discard(pair)


# --- devices that buffer and resend -----------------------------------------------


class RecordingLink:
    """A ``PahoLink`` that remembers every message handed to it (the first and any resend)."""

    def __init__(self, inner: PahoLink) -> None:
        self.inner = inner
        self.handed: list[tuple[str, bytes]] = []
        self.connects = 0
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """Whether the link is up right now."""
        return self.inner.connected

    def start(self, will: Will) -> None:
        """Connect in the background."""
        self.inner.start(will)

    def stop(self) -> None:
        """Disconnect cleanly."""
        self.inner.stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Hand the message on, and remember device messages (not status)."""
        if not retain:
            with self._lock:
                self.handed.append((topic, payload))
        return self.inner.publish(topic, payload, retain=retain)

    def poll(self, timeout: float) -> list[LinkEvent]:
        """The link's events (connections counted)."""
        events = self.inner.poll(timeout)
        self.connects += sum(isinstance(e, Connected) for e in events)
        return events


@dataclass
class Device:
    """The reference device client of one hauler's vehicle, on a recording link."""

    device_id: str
    client: DeviceClient
    link: RecordingLink
    recorded: list[Fix] = field(default_factory=list)

    def record(self, fixes: list[Fix]) -> None:
        """Record fixes (stored on the device's disk first, sent when the link allows)."""
        self.client.record_fixes(fixes)
        self.recorded.extend(fixes)

    def sent(self) -> dict[tuple[str, int], bytes]:
        """Every distinct message handed to the broker, by (device_id, seq)."""
        with self.link._lock:
            handed = list(self.link.handed)
        out: dict[tuple[str, int], bytes] = {}
        for _topic, payload in handed:
            obj = json.loads(payload)
            out[(obj["device_id"], obj["seq"])] = payload
        return out

    @property
    def resends(self) -> int:
        """Messages handed to the link more than once (after reconnects or restarts)."""
        return len(self.link.handed) - len(self.sent())


def open_device(
    device_id: str,
    key: Ed25519PrivateKey,
    broker_url: str,
    state_dir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    **kw: Any,
) -> Device:
    """A ``DeviceClient`` with its own client id and state directory; not started."""
    config = BrokerConfig.from_url(broker_url)
    link = RecordingLink(
        PahoLink(config, client_id=unique_name(device_id), keepalive=5, reconnect_delay=(0.2, 1.0))
    )
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    client = DeviceClient(device_id, key, state_dir, link, durable=False, **extra, **kw)
    return Device(device_id, client, link)


def broker_log_lines(log: Path, start: int = 0) -> tuple[list[str], int]:
    """Mosquitto's log lines from byte ``start`` on, and the offset after them."""
    with log.open("rb") as f:
        f.seek(start)
        data = f.read()
    end = start + data.rfind(b"\n") + 1
    return data[: end - start].decode("utf-8", "replace").splitlines(), end
