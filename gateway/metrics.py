"""The gateway's Prometheus metrics (its own ``CollectorRegistry``) and its HTTP endpoint.

``GET /metrics`` answers the Prometheus text format; ``GET /healthz`` answers 200
``ok`` while the broker connection is up and the last database attempt succeeded,
else 503 with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

__all__ = ["GatewayMetrics", "MetricsServer"]

log = logging.getLogger(__name__)

_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)

Health = Callable[[], tuple[bool, str]]


class GatewayMetrics:
    """Counters, histograms and gauges of one gateway process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        p = "waste_gateway_"
        self.received = Counter(
            p + "messages_received", "Messages taken from the broker", ["channel"], registry=r
        )
        self.accepted = Counter(
            p + "messages_accepted", "Messages stored (new)", ["channel"], registry=r
        )
        self.duplicates = Counter(
            p + "messages_duplicate", "Messages already stored (acked, not stored)", registry=r
        )
        self.rejected = Counter(
            p + "messages_rejected", "Messages dead-lettered, by reason", ["reason"], registry=r
        )
        self.lookup_retries = Counter(
            p + "lookup_retries", "Messages held back: the registry lookup failed", registry=r
        )
        self.fixes = Counter(p + "fixes_stored", "Position fixes stored", registry=r)
        self.locks = Counter(p + "lock_events_stored", "E-lock events stored", registry=r)
        self.presence = Counter(p + "presence_stored", "Status messages recorded", registry=r)
        self.db_errors = Counter(
            p + "db_errors", "Failed flush attempts (retried)", ["kind"], registry=r
        )
        self.consumer_errors = Counter(
            p + "consumer_errors", "Exceptions raised by track consumers", registry=r
        )
        self.unacked = Counter(
            p + "acks_refused", "Acks the transport refused (connection changed)", registry=r
        )
        self.sealed = Counter(p + "legs_sealed", "Leg telemetry versions sealed", registry=r)
        self.seal_errors = Counter(p + "seal_errors", "Failed sealing rounds", registry=r)
        self.batch_messages = Histogram(
            p + "batch_messages", "Messages per committed batch", buckets=_SIZES, registry=r
        )
        self.batch_fixes = Histogram(
            p + "batch_fixes", "Fixes per committed batch", buckets=_SIZES, registry=r
        )
        self.flush_seconds = Histogram(
            p + "flush_seconds", "Time to store and commit a batch", buckets=_LATENCY, registry=r
        )
        self.lag_seconds = Histogram(
            p + "fix_lag_seconds", "Commit time minus fix time", buckets=_LAG, registry=r
        )
        self.connected = Gauge(p + "broker_connected", "1 while connected", registry=r)
        self.last_commit = Gauge(
            p + "last_commit_timestamp_seconds", "Unix time of the last commit", registry=r
        )
        self.pending_retries = Gauge(
            p + "pending_retries", "Messages waiting for a registry lookup retry", registry=r
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsServer:
    """A small threaded HTTP server for ``/metrics`` and ``/healthz``."""

    def __init__(self, metrics: GatewayMetrics, health: Health, host: str, port: int) -> None:
        handler = _handler(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="gateway-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: GatewayMetrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Answers /metrics and /healthz."""

        def do_GET(self) -> None:
            """Serve one GET."""
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, why = health()
                self._answer(200 if ok else 503, why.encode() + b"\n", "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Access logs go to the debug log, not stderr."""
            log.debug("metrics: " + format, *args)

    return Handler
