"""The running system of the demo in one process: the API, the gateway, the alert feed.

- ``ApiServer``: ``waste.api.create_app`` served by uvicorn on a thread (no signal
  handlers of its own: the caller owns Ctrl-C).
- the gateway (``gateway.service.Gateway``, embedded broker unless told otherwise)
  ingesting on a thread, with alert detection on every commit; its sweep (silent legs,
  missed deadlines) judges by a ``SweepClock`` that the caller points at the simulated
  day's watermark (``waste.demo.pace``), so a compressed day is judged on its own time.
- ``AlertFeed``: a subscriber to ``waste/v1/alerts/#``, as a control room would be.

``DemoStack.close`` stops everything in reverse order: threads joined, the broker's
child process terminated, the database engine disposed.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.broker import BrokerConfig
from gateway.service import Gateway
from gateway.transport import PahoTransport
from waste.alerts.thresholds import ThresholdBook, configure
from waste.alerts.worker import AlertDetector, AlertWorker
from waste.api import create_app
from waste.clock import utcnow
from waste.config import Settings
from waste.db import make_engine, make_session_factory
from waste.telemetry.domain import TrackUpdate

__all__ = [
    "ALERT_FILTER",
    "AlertFeed",
    "AlertSeen",
    "ApiServer",
    "DemoStack",
    "SweepClock",
    "demo_broker_url",
    "free_port",
]

log = logging.getLogger(__name__)

ALERT_FILTER = "waste/v1/alerts/#"


class ApiServer:
    """The API served by uvicorn on a background thread."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
        )
        self.host = host
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)

    def start(self, timeout: float = 120.0) -> None:
        """Serve, and wait until it listens; ``RuntimeError`` if it could not start."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the API did not start (see the messages above)")
            time.sleep(0.05)

    @property
    def port(self) -> int:
        """The port it listens on (the bound one when 0 was asked)."""
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Ask uvicorn to finish (it runs the app's shutdown) and join its thread."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)


class SweepClock:
    """The time the alert sweep judges by: fixed at first, then a simulated clock minus a
    lag, never past the wall clock (after the day it is the wall clock)."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._source: Callable[[], datetime] | None = None
        self._lag = timedelta(0)
        self._lock = threading.Lock()

    def follow(self, source: Callable[[], datetime], lag: timedelta) -> None:
        """From now on: ``source() - lag``."""
        with self._lock:
            self._source, self._lag = source, lag

    def hold(self, moment: datetime) -> None:
        """From now on: ``moment`` (until ``follow`` again)."""
        with self._lock:
            self._source, self._start, self._lag = None, moment, timedelta(0)

    def __call__(self) -> datetime:
        """The sweep's now."""
        with self._lock:
            source, lag, start = self._source, self._lag, self._start
        wall = utcnow()
        return min(wall, start if source is None else source() - lag)


@dataclass(frozen=True)
class AlertSeen:
    """One alert message as the subscriber got it."""

    payload: dict[str, Any]
    received_at: datetime
    first: bool
    """The first message of this alert id (it was raised); later ones are updates."""


class AlertFeed:
    """A subscriber to every alert topic: the latest version of each alert, and a callback."""

    def __init__(
        self, broker: BrokerConfig, on_alert: Callable[[AlertSeen], None] | None = None
    ) -> None:
        self.transport = PahoTransport(broker, topics=[ALERT_FILTER])
        self.on_alert = on_alert
        self.latest: dict[str, dict[str, Any]] = {}
        self.first_seen: dict[str, datetime] = {}
        self.malformed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-alert-feed", daemon=True)

    def start(self) -> None:
        """Connect and subscribe (waits for the subscription), then read on a thread."""
        self.transport.start()
        self.transport.wait_ready(10)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and disconnect."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.transport.stop()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Alert id → its latest payload."""
        with self._lock:
            return dict(self.latest)

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.transport.get(0.2)
            if msg is None:
                continue
            self.transport.ack(msg)
            try:
                payload = json.loads(msg.payload)
                alert_id = str(payload["id"])
            except (ValueError, KeyError, TypeError):
                self.malformed += 1
                continue
            with self._lock:
                first = alert_id not in self.first_seen
                if first:
                    self.first_seen[alert_id] = msg.received_at
                self.latest[alert_id] = payload
            if self.on_alert is not None:
                try:
                    self.on_alert(AlertSeen(payload, msg.received_at, first))
                except Exception:  # a display problem must not stop the feed
                    log.exception("alert callback failed")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _with_params(url: str, **params: str) -> str:
    """``url`` with query parameters added unless already there."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in params.items():
        query.setdefault(name, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def demo_broker_url(url: str, name: str) -> str:
    """The gateway's broker URL: an embedded broker on a free port unless one is named; a
    real broker gets a client id of the demo's own and a short-lived session."""
    parts = urlsplit(url)
    if parts.scheme == "embedded":
        if parts.port is None:
            host = parts.hostname or "127.0.0.1"
            netloc = f"{host}:{free_port(host)}"
            return urlunsplit(parts._replace(netloc=netloc))
        return url
    return _with_params(url, client_id=f"waste-{name}", session_expiry="300")


class DemoStack:
    """API, gateway (with alerts) and alert feed, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "demo",
        sweep_clock: SweepClock | None = None,
        sweep_interval_s: float = 0.5,
        on_alert: Callable[[AlertSeen], None] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings.model_copy(
            update={
                "mqtt_url": demo_broker_url(settings.mqtt_url, name),
                "gateway_metrics_port": 0,
                "gateway_share_group": "",  # one gateway
            }
        )
        self.name = name
        self.sweep_clock = sweep_clock or SweepClock(utcnow())
        self._sweep_interval = sweep_interval_s
        self._on_alert = on_alert
        self._own_engine = engine is None
        self._engine_arg = engine
        self.engine: Engine | None = None
        self.api: ApiServer | None = None
        self.gateway: Gateway | None = None
        self.detector: AlertDetector | None = None
        self.worker: AlertWorker | None = None
        self.feed: AlertFeed | None = None
        self._stop = threading.Event()
        self._ingest: threading.Thread | None = None
        self._judged = 0

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        assert self.api is not None, "not started"
        return self.api.base_url

    @property
    def device_broker(self) -> BrokerConfig:
        """Where the devices publish (the gateway's broker)."""
        assert self.gateway is not None, "not started"
        return self.gateway.broker

    def start(self) -> None:
        """Start the API, then the gateway and its alert threads, then the feed."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = self._engine_arg or make_engine(s.resolved_database_url)
        self.api = ApiServer(create_app(s, engine=self.engine), s.host, s.port)
        self.api.start()  # migrates the database first
        factory = make_session_factory(self.engine)
        book = ThresholdBook.parse(s.alert_thresholds)
        configure(book)
        self.detector = AlertDetector(factory, book=book)
        self.gateway = Gateway(
            s, engine=self.engine, consumers=[self.detector, self._tally], alerts=False
        )
        self.gateway.start()
        self.detector.transport = self.gateway.transport
        self.worker = AlertWorker(
            factory,
            self.gateway.transport,
            book=book,
            interval_s=min(0.5, self._sweep_interval),
            sweep_interval_s=self._sweep_interval,
            clock=self.sweep_clock,
        )
        self.worker.start()
        self._ingest = threading.Thread(
            target=self.gateway.run, args=(self._stop,), name="demo-gateway", daemon=True
        )
        self._ingest.start()
        feed_broker = replace(
            self.gateway.broker,
            client_id=f"waste-{self.name}-alerts",
            share_group=None,
            session_expiry=0,
        )
        self.feed = AlertFeed(feed_broker, self._on_alert)
        self.feed.start()

    def stored_records(self) -> int:
        """Fixes plus e-lock events the gateway has stored since it started."""
        if self.gateway is None:
            return 0
        m = self.gateway.metrics
        return int(_counter(m.fixes) + _counter(m.locks))

    def _tally(self, updates: Sequence[TrackUpdate]) -> None:
        """The last consumer: counts the records alert detection has been run on."""
        self._judged += sum(len(u.fixes) + len(u.locks) for u in updates)

    def judged_records(self) -> int:
        """Fixes plus e-lock events stored and run through alert detection."""
        return self._judged

    def sweep_now(self) -> list[str]:
        """One sweep at once (safe beside the worker's: alert keys make sweeps agree)."""
        if self.worker is None:
            return []
        swept, _ = self.worker.run_once(force_sweep=True)
        return swept

    def close(self) -> None:
        """Stop everything started, in reverse order (each step even if another failed)."""
        steps: list[Callable[[], None]] = []
        if self.feed is not None:
            steps.append(self.feed.stop)
        if self.worker is not None:
            steps.append(self.worker.stop)
        steps.append(self._stop.set)
        if self._ingest is not None:
            ingest = self._ingest
            steps.append(lambda: ingest.join(timeout=30))
        if self.gateway is not None:
            steps.append(self.gateway.close)
        if self.api is not None:
            steps.append(self.api.stop)
        if self.engine is not None and self._own_engine:
            steps.append(self.engine.dispose)
        for step in steps:
            try:
                step()
            except Exception:  # keep stopping the rest
                log.exception("stopping the demo: %s failed", getattr(step, "__name__", step))
        self.feed = self.worker = self.gateway = self.api = None
        self._ingest = None

    def __enter__(self) -> DemoStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _counter(counter: Any) -> float:
    """The value of a prometheus ``Counter``."""
    value: float = counter._value.get()
    return value
