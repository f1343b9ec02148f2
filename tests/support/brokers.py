"""Real MQTT brokers for integration tests: Mosquitto on a free port, or the embedded one.

``Mosquitto`` is the gateway's own ``MosquittoProcess`` (``gateway/_mosquitto.py``:
generated config, ready on TCP connect, terminate → wait → kill) logging every message.

``WASTE_TEST_MQTT_URL`` (e.g. ``mqtt://127.0.0.1:1883``) names an already running
broker to use instead of starting Mosquitto; tests then keep apart by unique
client ids and topic prefixes (``unique_name``), and skip what needs to restart it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway._mosquitto import MosquittoProcess, find_mosquitto, free_port
from gateway.broker import BrokerConfig, EmbeddedBroker

__all__ = [
    "MQTT_ENV",
    "Mosquitto",
    "broker_url_for_tests",
    "free_port",
    "mosquitto_path",
    "running_embedded",
    "running_mosquitto",
    "unique_name",
    "wait_for_port",
]

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
    return find_mosquitto()


class Mosquitto(MosquittoProcess):
    """A Mosquitto process on 127.0.0.1 (every message logged), restartable on its port."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False):
        super().__init__(
            workdir,
            port=port or 0,
            persistence=persistence,
            settings=["log_type all", "max_queued_messages 10000"],
        )


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
    """The embedded broker (Mosquitto if installed, else amqtt) on a free port for the block."""
    with EmbeddedBroker() as broker:
        yield broker
