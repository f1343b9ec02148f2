"""Which MQTT broker the gateway uses (``BrokerConfig``), and the embedded one.

``EmbeddedBroker`` runs amqtt's broker on its own thread and asyncio loop, on
127.0.0.1, so a newcomer needs nothing installed (``embedded://``). What amqtt
0.12 does, established by experiment with paho-mqtt 2.2 (and by its source):

- MQTT 3.1.1 only. An MQTT 5 CONNECT gets CONNACK "unsupported protocol version";
  ``embedded://`` therefore means 3.1.1, and ``PahoTransport`` falls back by itself.
- No shared subscriptions: ``$share/g/filter`` is a literal filter that matches
  nothing (two ``$share`` subscribers received 0 of 4 messages). One gateway process
  per embedded broker.
- Retained messages and will messages work (a will with retain is kept too).
- Persistent sessions (clean_session=0) keep their subscriptions and the QoS 1
  messages published while the client was away, but only for sessions amqtt does
  not mark anonymous; its stock ``AnonymousAuthPlugin`` marks every session
  anonymous and then keeps nothing, so this broker installs an accept-all plugin.
  Messages queued for an absent client arrive with the retain flag set (amqtt bug).
- Not at-least-once for a message in flight: amqtt waits 5 s for the PUBACK and
  then forgets the message (a later PUBACK is "for unknown pending message"), and a
  message delivered but unacknowledged when the connection drops is discarded, not
  redelivered to the resumed session. A gateway that dies between receipt and
  commit loses those messages. Good for development and demos; in production run
  Mosquitto (or another MQTT 5 broker) and use ``mqtt://`` or ``mqtts://``.
- In memory only: a restart loses sessions and retained messages. No TLS, no
  authentication: anything that reaches 127.0.0.1 may publish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.topics import shared

__all__ = ["BrokerConfig", "EmbeddedBroker", "MqttVersion"]

log = logging.getLogger(__name__)

_DEFAULT_CLIENT_ID = "waste-gateway"
_DEFAULT_KEEPALIVE = 30
_WEEK = 7 * 24 * 3600
_SCHEMES = {"mqtt": 1883, "mqtts": 8883, "embedded": 0}
_PARAMS = frozenset(
    {"client_id", "keepalive", "protocol", "share_group", "session_expiry"}
    | {"ca", "cert", "key", "insecure"}
)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLS |= {"0": False, "false": False, "no": False, "off": False}


class MqttVersion(StrEnum):
    """The MQTT protocol version spoken to the broker."""

    V5 = "5"
    V311 = "3.1.1"


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
        if self.embedded and self.protocol is not MqttVersion.V311:
            raise ValueError("the embedded broker (amqtt) speaks MQTT 3.1.1 only")
        if self.embedded and (self.share_group or self.username or self.tls):
            raise ValueError("the embedded broker takes no credentials, TLS or share group")

    @classmethod
    def from_url(cls, url: str) -> BrokerConfig:
        """Parse ``mqtt://user:pass@host:1883``, ``mqtts://host:8883`` or ``embedded://``.

        Query parameters: ``client_id``, ``keepalive``, ``protocol`` (5 or 3.1.1),
        ``share_group``, ``session_expiry`` (seconds), and for mqtts ``ca``, ``cert``,
        ``key``, ``insecure``. Raises ``ValueError`` naming what is wrong.
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
        default_protocol = "3.1.1" if embedded else "5"
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
                protocol=_parse_version(q.get("protocol", default_protocol)),
                share_group=q.get("share_group") or None,
                session_expiry=_int("session_expiry", q.get("session_expiry", str(_WEEK))),
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


def _accept_all_plugin() -> str:
    """The dotted path of an amqtt auth plugin that accepts everyone, not as anonymous."""
    if "_AcceptAll" not in globals():
        from amqtt.plugins.base import BaseAuthPlugin

        class _AcceptAll(BaseAuthPlugin):  # type: ignore[misc]
            async def authenticate(self, *, session: Any) -> bool:
                return True

        globals()["_AcceptAll"] = _AcceptAll  # amqtt imports plugins by dotted path
    return f"{__name__}._AcceptAll"


class EmbeddedBroker:
    """amqtt's MQTT 3.1.1 broker on a background thread with its own asyncio loop."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        session_expiry: int = _WEEK,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._wanted_port = port
        self._session_expiry = session_expiry
        self._timeout = timeout
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None

    @property
    def port(self) -> int:
        """The port it listens on (0 before ``start``)."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the broker thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def config(self, **changes: Any) -> BrokerConfig:
        """A ``BrokerConfig`` for this running broker (``changes``: e.g. ``client_id``)."""
        if not self._port:
            raise RuntimeError("embedded broker not started")
        fixed: dict[str, Any] = {"host": self.host, "port": self._port, "embedded": True}
        return BrokerConfig(**{"protocol": MqttVersion.V311, **changes, **fixed})

    def start(self) -> int:
        """Start serving; returns the port (a free one unless a port was given)."""
        if self._thread is not None:
            raise RuntimeError("embedded broker already started")
        started: Future[int] = Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="embedded-mqtt-broker", daemon=True
        )
        self._thread.start()
        try:
            self._port = started.result(timeout=self._timeout)
        except BaseException as exc:
            self.stop()
            where = f"{self.host}:{self._wanted_port}"
            raise RuntimeError(f"embedded broker failed to start on {where}: {exc}") from exc
        log.info("embedded MQTT broker listening on %s:%d", self.host, self._port)
        return self._port

    def stop(self) -> None:
        """Shut the broker down and join its thread; a no-op if not started."""
        thread, loop, broker = self._thread, self._loop, self._broker
        self._thread = self._loop = self._broker = None
        self._port = 0
        if thread is None:
            return
        if loop is not None and broker is not None:
            done = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
            try:
                done.result(timeout=self._timeout)
            except Exception:
                log.exception("embedded broker did not shut down cleanly")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _amqtt_config(self) -> dict[str, Any]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{self._wanted_port}"}},
            "session_expiry_interval": self._session_expiry,
            "plugins": {_accept_all_plugin(): {}},
        }

    def _serve(self, started: Future[int]) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            broker = Broker(self._amqtt_config(), loop=loop)
            loop.run_until_complete(broker.start())
            # amqtt has no public accessor for the bound port (needed when binding port 0).
            port = int(broker._servers["default"].instance.sockets[0].getsockname()[1])
        except BaseException as exc:
            loop.close()
            started.set_exception(exc)
            return
        self._loop, self._broker = loop, broker
        started.set_result(port)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
