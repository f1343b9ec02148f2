"""Which MQTT broker the gateway uses (``BrokerConfig``), and the embedded one.

``embedded://`` starts ``EmbeddedBroker`` on 127.0.0.1, so a newcomer needs nothing
but Python. It is one of two brokers, and the log says which one runs:

- **Mosquitto** (``gateway/_mosquitto.py``), when a ``mosquitto`` executable is on
  PATH (or in /usr/sbin): a child process with a generated configuration in the data
  directory (one listener on the embedded port, anonymous clients, persistence on in
  ``<data_dir>/mosquitto`` when the gateway gives a data directory). MQTT 5, shared
  subscriptions, retained and will messages, and at-least-once delivery: a message
  delivered but not acknowledged is redelivered to the resumed session.
- **amqtt** (``gateway/_amqtt.py``), in-process, when Mosquitto is absent: MQTT 3.1.1
  only, no shared subscriptions, and it may lose a QoS 1 message in flight when the
  gateway dies before acknowledging it (see that module). Development only.

``?broker=mosquitto`` or ``?broker=amqtt`` on the ``embedded://`` URL picks one
(default ``auto``). Either way there is no TLS and no authentication: it listens on
the loopback interface for a local demo. In production run a real broker (Mosquitto,
EMQX, …) and use ``mqtt://`` or ``mqtts://``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gateway._amqtt import AmqttBroker
from gateway._mosquitto import MosquittoProcess, find_mosquitto, mosquitto_version
from gateway.topics import shared

__all__ = ["BrokerConfig", "EmbeddedBackend", "EmbeddedBroker", "MqttVersion", "find_mosquitto"]

log = logging.getLogger(__name__)

_DEFAULT_CLIENT_ID = "waste-gateway"
_DEFAULT_KEEPALIVE = 30
_WEEK = 7 * 24 * 3600
_SCHEMES = {"mqtt": 1883, "mqtts": 8883, "embedded": 0}
_PARAMS = frozenset(
    {"client_id", "keepalive", "protocol", "share_group", "session_expiry"}
    | {"ca", "cert", "key", "insecure", "broker"}
)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLS |= {"0": False, "false": False, "no": False, "off": False}


class MqttVersion(StrEnum):
    """The MQTT protocol version spoken to the broker."""

    V5 = "5"
    V311 = "3.1.1"


class EmbeddedBackend(StrEnum):
    """Which broker ``embedded://`` runs (``auto``: Mosquitto if installed, else amqtt)."""

    AUTO = "auto"
    MOSQUITTO = "mosquitto"
    AMQTT = "amqtt"


def _parse_version(text: str) -> MqttVersion:
    aliases = {"5": "5", "5.0": "5", "3.1.1": "3.1.1", "311": "3.1.1"}
    if text not in aliases:
        raise ValueError(f"protocol must be 5 or 3.1.1, got {text!r}")
    return MqttVersion(aliases[text])


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how the gateway connects to its MQTT broker; see ``from_url``."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    embedded: bool = False
    client_id: str = _DEFAULT_CLIENT_ID
    keepalive: int = _DEFAULT_KEEPALIVE
    protocol: MqttVersion = MqttVersion.V5
    share_group: str | None = None
    session_expiry: int = _WEEK
    embedded_backend: EmbeddedBackend = EmbeddedBackend.AUTO

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("broker host is empty")
        if not 0 <= self.port <= 65535 or (self.port == 0 and not self.embedded):
            raise ValueError(f"broker port out of range: {self.port}")
        if self.password is not None and self.username is None:
            raise ValueError("a broker password needs a username")
        if not self.tls and (self.ca_file or self.cert_file or self.key_file or self.tls_insecure):
            raise ValueError("TLS options (ca, cert, key, insecure) need an mqtts:// URL")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert and key")
        if not self.client_id or len(self.client_id) > 128 or not self.client_id.isprintable():
            raise ValueError(f"client id must be 1-128 printable characters: {self.client_id!r}")
        if " " in self.client_id:
            raise ValueError(f"client id must not contain spaces: {self.client_id!r}")
        if not 1 <= self.keepalive <= 65535:
            raise ValueError(f"keepalive must be 1-65535 seconds, got {self.keepalive}")
        if not 0 <= self.session_expiry <= 0xFFFFFFFF:
            raise ValueError(f"session_expiry out of range: {self.session_expiry}")
        if self.share_group is not None:
            shared("x", self.share_group)  # validates the share name
        if self.embedded and (self.username or self.tls):
            raise ValueError("the embedded broker takes no credentials or TLS")
        if not self.embedded and self.embedded_backend is not EmbeddedBackend.AUTO:
            raise ValueError("broker= (mosquitto or amqtt) is for embedded:// only")

    @classmethod
    def from_url(cls, url: str) -> BrokerConfig:
        """Parse ``mqtt://user:pass@host:1883``, ``mqtts://host:8883`` or ``embedded://``.

        Query parameters: ``client_id``, ``keepalive``, ``protocol`` (5 or 3.1.1),
        ``share_group``, ``session_expiry`` (seconds), for mqtts ``ca``, ``cert``,
        ``key``, ``insecure``, and for embedded ``broker`` (auto, mosquitto or amqtt).
        Raises ``ValueError`` naming what is wrong.
        """
        shown = _redact(url)
        try:
            parts = urlsplit(url.strip())
            port = parts.port
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise ValueError(f"bad broker URL {shown!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"broker URL must be mqtt://, mqtts:// or embedded://: {shown!r}")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"broker URL takes no path or fragment: {shown!r}")
        if unknown := sorted(set(query) - _PARAMS):
            raise ValueError(f"unknown broker URL parameter(s) {unknown} in {shown!r}")
        if repeated := sorted(k for k, v in query.items() if len(v) > 1):
            raise ValueError(f"repeated broker URL parameter(s) {repeated} in {shown!r}")
        q = {k: v[0] for k, v in query.items()}
        embedded = scheme == "embedded"
        if not embedded and not parts.hostname:
            raise ValueError(f"broker URL has no host: {shown!r}")
        insecure = q.get("insecure", "false").lower()
        if insecure not in _BOOLS:
            raise ValueError(f"insecure must be true or false, got {insecure!r}")
        backend = q.get("broker", "auto")
        if backend not in {b.value for b in EmbeddedBackend}:
            raise ValueError(f"broker must be auto, mosquitto or amqtt, got {backend[:20]!r}")
        try:
            return cls(
                host=parts.hostname or "127.0.0.1",
                port=_SCHEMES[scheme] if port is None else port,
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password is not None else None,
                tls=scheme == "mqtts",
                ca_file=q.get("ca") or None,
                cert_file=q.get("cert") or None,
                key_file=q.get("key") or None,
                tls_insecure=_BOOLS[insecure],
                embedded=embedded,
                client_id=q.get("client_id", _DEFAULT_CLIENT_ID),
                keepalive=_int("keepalive", q.get("keepalive", str(_DEFAULT_KEEPALIVE))),
                protocol=_parse_version(q.get("protocol", "5")),
                share_group=q.get("share_group") or None,
                session_expiry=_int("session_expiry", q.get("session_expiry", str(_WEEK))),
                embedded_backend=EmbeddedBackend(backend),
            )
        except ValueError as exc:
            raise ValueError(f"bad broker URL {shown!r}: {exc}") from None

    def with_port(self, port: int) -> BrokerConfig:
        """This config on ``port`` (e.g. the embedded broker's port once it has started)."""
        return replace(self, port=port)

    def redacted(self) -> str:
        """A URL for logs, password hidden."""
        scheme = "embedded" if self.embedded else "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}?client_id={self.client_id}"


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


class EmbeddedBroker:
    """The broker of ``embedded://``: Mosquitto as a child process if installed, else amqtt."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        session_expiry: int = _WEEK,
        timeout: float = 10.0,
        backend: EmbeddedBackend | str = EmbeddedBackend.AUTO,
        data_dir: Path | None = None,
    ) -> None:
        self.host = host
        self._wanted_port = port
        self._session_expiry = session_expiry
        self._timeout = timeout
        self._wanted = EmbeddedBackend(backend)
        self._data_dir = data_dir
        self._port = 0
        self._backend: EmbeddedBackend | None = None
        self._mosquitto: MosquittoProcess | None = None
        self._amqtt: AmqttBroker | None = None
        self._scratch: Path | None = None

    @property
    def port(self) -> int:
        """The port it listens on (0 before ``start``)."""
        return self._port

    @property
    def backend(self) -> EmbeddedBackend | None:
        """Which broker runs: ``mosquitto`` or ``amqtt`` (None before ``start``)."""
        return self._backend

    @property
    def running(self) -> bool:
        """Whether the broker is serving."""
        return (self._mosquitto is not None and self._mosquitto.running) or (
            self._amqtt is not None and self._amqtt.running
        )

    def fit(self, config: BrokerConfig) -> BrokerConfig:
        """``config`` for this running broker: its port, and MQTT 3.1.1 unshared on amqtt."""
        if not self._port:
            raise RuntimeError("embedded broker not started")
        fixed: dict[str, Any] = {"host": self.host, "port": self._port, "embedded": True}
        if self._backend is EmbeddedBackend.AMQTT:
            if config.share_group:
                log.info("amqtt has no shared subscriptions: not joining %r", config.share_group)
            fixed |= {"protocol": MqttVersion.V311, "share_group": None}
        return replace(config, **fixed)

    def config(self, **changes: Any) -> BrokerConfig:
        """A ``BrokerConfig`` for this running broker (``changes``: e.g. ``client_id``)."""
        if not self._port:
            raise RuntimeError("embedded broker not started")
        return self.fit(BrokerConfig(**{**changes, "port": self._port, "embedded": True}))

    def start(self) -> int:
        """Start serving; returns the port (a free one unless a port was given)."""
        if self._backend is not None:
            raise RuntimeError("embedded broker already started")
        exe = find_mosquitto() if self._wanted is not EmbeddedBackend.AMQTT else None
        if exe is None and self._wanted is EmbeddedBackend.MOSQUITTO:
            raise RuntimeError("broker=mosquitto, but no mosquitto executable is on PATH")
        where = f"{self.host}:{self._wanted_port}"
        try:
            if exe is not None:
                self._port = self._start_mosquitto(exe)
            else:
                self._port = self._start_amqtt()
        except BaseException as exc:
            self.stop()
            raise RuntimeError(f"embedded broker failed to start on {where}: {exc}") from exc
        return self._port

    def stop(self) -> None:
        """Stop the broker (terminate → wait → kill for Mosquitto); a no-op if not started."""
        mosquitto, amqtt, scratch = self._mosquitto, self._amqtt, self._scratch
        self._mosquitto = self._amqtt = self._scratch = self._backend = None
        self._port = 0
        if mosquitto is not None:
            mosquitto.stop(self._timeout)
        if amqtt is not None:
            amqtt.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_mosquitto(self, exe: str) -> int:
        if self._data_dir is not None:
            workdir, persistence = self._data_dir / "mosquitto", True
        else:
            self._scratch = workdir = Path(tempfile.mkdtemp(prefix="waste-mosquitto-"))
            persistence = False
        self._backend = EmbeddedBackend.MOSQUITTO
        self._mosquitto = MosquittoProcess(
            workdir,
            host=self.host,
            port=self._wanted_port,
            persistence=persistence,
            session_expiry=self._session_expiry,
            settings=["max_queued_messages 100000"],
            exe=exe,
        )
        self._mosquitto.start(self._timeout)
        port = self._mosquitto.port
        log.info(
            "embedded MQTT broker: Mosquitto %s (%s, pid %d) on %s:%d, MQTT 5, config %s",
            mosquitto_version(exe),
            exe,
            self._mosquitto.proc.pid if self._mosquitto.proc else 0,
            self.host,
            port,
            self._mosquitto.conf,
        )
        return port

    def _start_amqtt(self) -> int:
        self._backend = EmbeddedBackend.AMQTT
        self._amqtt = AmqttBroker(
            self.host, self._wanted_port, session_expiry=self._session_expiry, timeout=self._timeout
        )
        port = self._amqtt.start()
        why = "broker=amqtt" if self._wanted is EmbeddedBackend.AMQTT else "mosquitto not found"
        log.warning(
            "embedded MQTT broker: amqtt (in-process, %s) on %s:%d: MQTT 3.1.1, no shared "
            "subscriptions, may lose unacknowledged messages; install mosquitto for the "
            "embedded broker, or use a real broker (mqtt://) in production",
            why,
            self.host,
            port,
        )
        return port
