"""``waste gateway``: one gateway process, wired from settings, run until SIGINT/SIGTERM.

Broker (``WASTE_MQTT_URL``):

- ``mqtt://…`` / ``mqtts://…``: a real broker. The gateway subscribes plainly (not
  shared) unless a share group is set (``?share_group=`` or
  ``WASTE_GATEWAY_SHARE_GROUP``): then it joins that MQTT 5 shared subscription group,
  so several processes share the load. Each process needs its own client id
  (``?client_id=`` or ``waste gateway --client-id``), kept across restarts so its
  persistent session, and the messages unacknowledged in it, are resumed.
- ``embedded://`` starts the embedded broker (``gateway/broker.py``: Mosquitto as a
  child process when installed, its data in ``<data_dir>/mosquitto``; else amqtt
  in-process, MQTT 3.1.1 and one gateway only) on 127.0.0.1:1884 (``EMBEDDED_PORT``,
  chosen not to collide with a system Mosquitto on 1883); ``embedded://127.0.0.1:PORT``
  picks another port. Devices connect to it like to any broker, and on Mosquitto more
  gateways may join with ``mqtt://127.0.0.1:1884?client_id=…`` (all with one share group).

Alert detection runs on a thread of its own (``gateway.handoff``), fed after each
commit. Shutdown: stop taking messages, commit and acknowledge the batch in hand, stop
the sealer, let detection finish what it was handed, disconnect cleanly, stop the
embedded broker. Metrics and health are served
on ``WASTE_HOST:WASTE_GATEWAY_METRICS_PORT`` (``/metrics``, ``/healthz``; port 0: off).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from types import FrameType

from sqlalchemy import Engine

from gateway.broker import BrokerConfig, EmbeddedBroker
from gateway.directory import DeviceDirectory
from gateway.handoff import Handoff
from gateway.ingest import IngestConfig, Ingestor, TrackConsumer
from gateway.metrics import GatewayMetrics, MetricsServer
from gateway.sealer import Sealer
from gateway.transport import PahoTransport, TransportError
from waste.alerts.thresholds import ThresholdBook, configure
from waste.alerts.worker import AlertDetector, AlertWorker
from waste.clock import utcnow
from waste.config import Settings
from waste.db import make_engine, make_session_factory
from waste.migrate import ensure_schema

__all__ = ["EMBEDDED_PORT", "Gateway", "broker_config", "run"]

log = logging.getLogger(__name__)

EMBEDDED_PORT = 1884


def broker_config(settings: Settings, *, client_id: str | None = None) -> BrokerConfig:
    """The broker to use: the URL's, plus the default embedded port and the share group.

    The URL's ``share_group`` wins, then ``WASTE_GATEWAY_SHARE_GROUP``; empty (the
    default) means a plain subscription, which every broker restores from persistence
    after a restart. Sharing is opt-in because Mosquitto before 2.0.12 does not restore
    shared subscriptions, and drops what devices publish until the gateway has
    subscribed again (``tests/faults/test_broker_restart.py``).
    """
    config = BrokerConfig.from_url(settings.mqtt_url)
    if client_id:
        config = replace(config, client_id=client_id)
    if config.embedded and not config.port:
        config = config.with_port(EMBEDDED_PORT)
    if config.share_group:
        return config
    return replace(config, share_group=settings.gateway_share_group or None)


class Gateway:
    """The parts of one gateway process: broker link, ingest, sealer, alerts, metrics."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        engine: Engine | None = None,
        consumers: Sequence[TrackConsumer] = (),
        alerts: bool = True,
        alert_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self._alerts = alerts
        self._alert_clock = alert_clock  # the sweep's now (a replay gives its own)
        self.broker = broker_config(settings, client_id=client_id)
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.resolved_database_url)
        self.metrics = GatewayMetrics()
        self._consumers = consumers
        self.embedded: EmbeddedBroker | None = None
        self.server: MetricsServer | None = None
        self.transport: PahoTransport | None = None
        self.ingestor: Ingestor | None = None
        self.sealer: Sealer | None = None
        self.alert_worker: AlertWorker | None = None
        self.detection: Handoff | None = None

    def start(self) -> None:
        """Migrate (if allowed), start the broker if embedded, connect, serve metrics."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_schema(self.engine, auto_migrate=s.auto_migrate)
        factory = make_session_factory(self.engine)
        if self.broker.embedded:
            self.embedded = EmbeddedBroker(
                self.broker.port,
                host=self.broker.host,
                session_expiry=self.broker.session_expiry,
                backend=self.broker.embedded_backend,
                data_dir=s.data_dir,
            )
            try:
                self.embedded.start()
            except RuntimeError as exc:  # e.g. the port is taken: another gateway runs
                self.embedded = None
                raise TransportError(str(exc)) from exc
            self.broker = self.embedded.fit(self.broker)  # amqtt: MQTT 3.1.1, unshared
        self.transport = PahoTransport(self.broker)
        consumers = list(self._consumers)
        if self._alerts:  # alert detection on every commit, sweeps and publishing beside
            book = ThresholdBook.parse(s.alert_thresholds)
            configure(book)
            detector = AlertDetector(factory, book=book, transport=self.transport)
            self.detection = Handoff(detector, name="alert-detection", metrics=self.metrics)
            consumers.append(self.detection)
            self.alert_worker = AlertWorker(
                factory,
                self.transport,
                book=book,
                interval_s=min(1.0, s.alert_sweep_interval_s),
                sweep_interval_s=s.alert_sweep_interval_s,
                clock=self._alert_clock,
            )
        self.ingestor = Ingestor(
            transport=self.transport,
            session_factory=factory,
            lookup_device=DeviceDirectory(factory).lookup,
            metrics=self.metrics,
            config=IngestConfig(
                batch_fixes=s.gateway_batch_fixes, batch_interval_s=s.gateway_batch_interval_s
            ),
            consumers=consumers,
        )
        grace = timedelta(seconds=s.leg_seal_grace_s)
        interval = min(5.0, max(0.2, s.leg_seal_grace_s / 4))
        self.sealer = Sealer(factory, grace=grace, interval_s=interval, metrics=self.metrics)
        if s.gateway_metrics_port:
            self.server = MetricsServer(
                self.metrics, self.ingestor.health, s.host, s.gateway_metrics_port
            )
            self.server.start()
        self.transport.start()
        self.sealer.start()
        if self.detection is not None:
            self.detection.start()
        if self.alert_worker is not None:
            self.alert_worker.start()
        log.info("gateway connected to %s", self.broker.redacted())

    def run(self, stop: threading.Event) -> None:
        """Ingest until ``stop`` is set."""
        if self.ingestor is None:
            raise RuntimeError("gateway not started")
        self.ingestor.run(stop)

    def close(self) -> None:
        """Stop everything started, in reverse order."""
        if self.sealer is not None:
            self.sealer.stop()
        if self.detection is not None:
            self.detection.stop()
        if self.alert_worker is not None:
            self.alert_worker.stop()
        if self.transport is not None:
            self.transport.stop()
        if self.server is not None:
            self.server.close()
        if self.embedded is not None:
            self.embedded.stop()
        if self._own_engine:
            self.engine.dispose()


@contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (when called on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        """Ask the loop to stop."""
        log.info("signal %d: shutting down", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(
    settings: Settings, *, client_id: str | None = None, stop: threading.Event | None = None
) -> int:
    """Run a gateway until SIGINT/SIGTERM (or ``stop``); the process exit code."""
    stop = stop or threading.Event()
    try:
        gateway = Gateway(settings, client_id=client_id)
    except ValueError as exc:
        log.error("bad gateway settings: %s", exc)
        return 2
    with _signals_set(stop):
        try:
            gateway.start()
            gateway.run(stop)
        except TransportError as exc:
            log.error("%s", exc)
            return 2
        finally:
            gateway.close()
    log.info("gateway stopped")
    return 0
