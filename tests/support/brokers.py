"""Real MQTT brokers for integration tests: Mosquitto on a free port, or the embedded one.

``WASTE_TEST_MQTT_URL`` (e.g. ``mqtt://127.0.0.1:1883``) names an already running
broker to use instead of starting Mosquitto; tests then keep apart by unique
client ids and topic prefixes (``unique_name``), and skip what needs to restart it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.broker import BrokerConfig, EmbeddedBroker

MQTT_ENV = "WASTE_TEST_MQTT_URL"


def broker_url_for_tests() -> str | None:
    """The external test broker's URL from ``WASTE_TEST_MQTT_URL``, validated, or None."""
    url = os.environ.get(MQTT_ENV, "").strip()
    if not url:
        return None
    if BrokerConfig.from_url(url).embedded:
        raise ValueError(f"{MQTT_ENV} must name a running broker, not embedded://")
    return url


def unique_name(prefix: str = "t") -> str:
    """A name no other test (or test run) uses: for client ids and topic prefixes."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 5.0) -> None:
    """Wait until a TCP connect to ``host:port`` succeeds; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


def mosquitto_path() -> str | None:
    """The mosquitto executable, if installed (also looks in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Mosquitto:
    """A Mosquitto process on 127.0.0.1, which can be stopped and started on the same port."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False):
        exe = mosquitto_path()
        if exe is None:
            raise RuntimeError("mosquitto is not installed")
        self.exe = exe
        self.workdir = workdir
        self.port = port or free_port()
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            f"log_dest file {self.log}",
            "log_type all",
            "max_queued_messages 10000",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        """Run mosquitto; returns once it accepts TCP connections."""
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except TimeoutError:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate, wait, kill if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()


@contextmanager
def running_mosquitto(workdir: Path, *, persistence: bool = False) -> Iterator[Mosquitto]:
    """A Mosquitto on a free port for the duration of the block."""
    broker = Mosquitto(workdir, persistence=persistence)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def running_embedded() -> Iterator[EmbeddedBroker]:
    """The embedded (amqtt) broker on a free port for the duration of the block."""
    with EmbeddedBroker() as broker:
        yield broker
