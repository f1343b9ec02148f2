"""amqtt's broker on a background thread with its own asyncio loop: the embedded broker's
fallback when Mosquitto is not installed.

What amqtt 0.12 does, established by experiment with paho-mqtt 2.2 (and by its source):

- MQTT 3.1.1 only; an MQTT 5 CONNECT (with properties) gets no CONNACK at all, so
  ``EmbeddedBroker.fit`` makes the gateway speak 3.1.1 to it.
- No shared subscriptions: ``$share/g/filter`` is a literal filter that matches
  nothing (two ``$share`` subscribers received 0 of 4 messages). One gateway process.
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
  commit loses those messages.
- In memory only: a restart loses sessions and retained messages. No TLS, no
  authentication: anything that reaches 127.0.0.1 may publish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

__all__ = ["AmqttBroker"]

log = logging.getLogger(__name__)


def _accept_all_plugin() -> str:
    """The dotted path of an amqtt auth plugin that accepts everyone, not as anonymous."""
    if "_AcceptAll" not in globals():
        from amqtt.plugins.base import BaseAuthPlugin

        class _AcceptAll(BaseAuthPlugin):  # type: ignore[misc]
            async def authenticate(self, *, session: Any) -> bool:
                return True

        globals()["_AcceptAll"] = _AcceptAll  # amqtt imports plugins by dotted path
    return f"{__name__}._AcceptAll"


class AmqttBroker:
    """amqtt's MQTT 3.1.1 broker on ``host:port`` (port 0: a free one), on its own thread."""

    def __init__(self, host: str, port: int, *, session_expiry: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self._session_expiry = session_expiry
        self._timeout = timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None

    @property
    def running(self) -> bool:
        """Whether the broker thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> int:
        """Start serving; returns the bound port."""
        started: Future[int] = Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="embedded-mqtt-broker", daemon=True
        )
        self._thread.start()
        try:
            self.port = started.result(timeout=self._timeout)
        except BaseException:
            self.stop()
            raise
        return self.port

    def stop(self) -> None:
        """Shut the broker down and join its thread; a no-op if not started."""
        thread, loop, broker = self._thread, self._loop, self._broker
        self._thread = self._loop = self._broker = None
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

    def _config(self) -> dict[str, Any]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{self.port}"}},
            "session_expiry_interval": self._session_expiry,
            "plugins": {_accept_all_plugin(): {}},
        }

    def _serve(self, started: Future[int]) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            broker = Broker(self._config(), loop=loop)
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
