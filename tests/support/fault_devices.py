"""Devices for the fault tests that buffer and resend, on a link that records what went out.

``open_device`` gives the reference device client (``devices.client``: durable seq,
store-and-forward outbox, QoS 1) on a ``RecordingLink`` that remembers every message
handed to the broker, first sends and resends alike, so a test knows exactly which
``(device_id, seq)`` went out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.client import DeviceClient
from devices.link import Connected, LinkEvent, PahoLink, Will
from gateway.broker import BrokerConfig
from gateway.payloads import Fix
from tests.support.brokers import unique_name
from tests.support.world import Hauler


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


def open_devices(haulers: Iterable[Hauler], broker_url: str, workdir: Path) -> list[Device]:
    """The device of each hauler's vehicle (``open_device``), state under ``workdir``."""
    return [
        open_device(h.device_id, h.device_key, broker_url, workdir / h.device_id) for h in haulers
    ]
