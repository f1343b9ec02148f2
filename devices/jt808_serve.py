"""Running the JT/T 808 bridge: terminals from a mapping file, keys from a directory.

The mapping file is a JSON object, terminal phone number → device id. Each device's
key is ``KEY_DIR/DEVICE_ID.pem`` (as ``waste devices provision`` writes it); its broker
login, if ``KEY_DIR/DEVICE_ID.password`` exists, is the device id and that password
(else the broker URL's own login). Every device gets a ``DeviceClient`` (durable
outbox under ``STATE_DIR/DEVICE_ID``) pumped on its own thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from devices.client import DeviceClient
from devices.jt808_bridge import FixSink, JsonlAttributes, JT808Bridge, TerminalServer
from devices.link import Link, PahoLink
from gateway.broker import BrokerConfig
from gateway.topics import is_valid_device_id
from waste.ledger.keys import load_private_key

__all__ = ["BridgeConfigError", "RunningBridge", "load_terminals", "start_bridge"]

LinkFactory = Callable[[str], Link]


class BridgeConfigError(ValueError):
    """The mapping file or a key is missing or malformed."""


def load_terminals(path: Path) -> dict[str, str]:
    """Terminal phone → device id, read from the JSON mapping file ``path``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BridgeConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise BridgeConfigError(f"{path}: want a JSON object, terminal phone → device id")
    out: dict[str, str] = {}
    for phone, device_id in raw.items():
        if not (isinstance(phone, str) and phone.isdigit() and len(phone) <= 20):
            raise BridgeConfigError(f"{path}: not a terminal phone number: {str(phone)[:40]!r}")
        if not (isinstance(device_id, str) and is_valid_device_id(device_id)):
            raise BridgeConfigError(f"{path}: not a device id: {str(device_id)[:80]!r}")
        out[phone] = device_id
    return out


def _paho_links(broker: BrokerConfig, key_dir: Path) -> LinkFactory:
    def make(device_id: str) -> Link:
        config = broker
        secret = key_dir / f"{device_id}.password"
        if secret.exists():
            password = secret.read_text(encoding="utf-8").strip()
            config = replace(broker, username=device_id, password=password)
        return PahoLink(config, client_id=device_id, reconnect_delay=(0.5, 30.0))

    return make


@dataclass
class RunningBridge:
    """A started bridge: the TCP server on its thread and the devices' clients."""

    server: TerminalServer
    clients: dict[str, DeviceClient]
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port terminals connect to."""
        return self.server.port

    def close(self) -> None:
        """Stop accepting terminals, then close every client (publishing it offline)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        for client in self.clients.values():
            client.close(timeout=2.0)


def start_bridge(
    terminals: Mapping[str, str],
    *,
    key_dir: Path,
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 7611,
    broker: BrokerConfig | None = None,
    link_factory: LinkFactory | None = None,
    attributes_log: Path | None = None,
) -> RunningBridge:
    """Load the keys, start a client per device and serve terminals on ``host:port``."""
    if broker is None and link_factory is None:
        raise ValueError("give a broker or a link_factory")
    make_link = link_factory or _paho_links(broker, key_dir)  # type: ignore[arg-type]
    keys = {}
    for device_id in sorted(set(terminals.values())):
        try:
            keys[device_id] = load_private_key(key_dir / f"{device_id}.pem")
        except (OSError, ValueError) as exc:
            raise BridgeConfigError(f"no usable key for {device_id}: {exc}") from exc
    clients: dict[str, DeviceClient] = {}
    try:
        for device_id, key in keys.items():
            client = DeviceClient(device_id, key, state_dir / device_id, make_link(device_id))
            client.start_background()
            clients[device_id] = client
        sinks: dict[str, tuple[str, FixSink]] = {
            phone: (device_id, clients[device_id]) for phone, device_id in terminals.items()
        }
        on_report = JsonlAttributes(attributes_log) if attributes_log is not None else None
        server = TerminalServer((host, port), JT808Bridge(sinks, on_report=on_report))
    except Exception:
        for client in clients.values():
            client.close(timeout=1.0)
        raise
    thread = threading.Thread(target=server.serve_forever, name="jt808-bridge", daemon=True)
    thread.start()
    return RunningBridge(server, clients, thread)
