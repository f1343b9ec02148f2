"""Run a slow track consumer (alert detection) on a thread of its own, coalescing its input.

The ingest loop calls consumers after each commit and acknowledgement; a consumer
that queries the database per update (detection locks and reads per leg and per
vehicle) would otherwise hold ingestion up by as long as it takes. ``Handoff`` takes
the updates, returns at once, and feeds them to the consumer from its own thread.
Updates that queue up while the consumer works are merged per (device, vehicle, leg)
(``group_tracks``), so under load the consumer gets fewer, larger updates and its
per-record cost falls instead of its backlog growing.

Nothing here needs to survive a crash: records are stored and acknowledged before
they are handed over, and detection replays a leg (or reads a vehicle's stored
records) whose stored records it never took (``waste.alerts.detection``). Above
``max_pending`` queued records the ingest loop waits, so a consumer that cannot keep
up slows acknowledgements (the broker then holds the messages) rather than memory
growing without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from gateway.ingest import TrackConsumer
from gateway.metrics import GatewayMetrics
from waste.telemetry.domain import StoredFix, StoredLock, TrackUpdate, group_tracks

__all__ = ["Handoff"]

log = logging.getLogger(__name__)


class Handoff:
    """A ``TrackConsumer`` that passes updates to ``consumer`` on a background thread."""

    def __init__(
        self,
        consumer: TrackConsumer,
        *,
        name: str = "track-consumer",
        max_pending: int = 50_000,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.consumer = consumer
        self.max_pending = max_pending
        self.metrics = metrics
        self._fixes: list[StoredFix] = []
        self._locks: list[StoredLock] = []
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.rounds = 0
        self.errors = 0

    @property
    def pending(self) -> int:
        """Records handed over and not yet taken by the consumer."""
        with self._cond:
            return len(self._fixes) + len(self._locks)

    def start(self) -> None:
        """Start the consumer thread."""
        self._thread.start()

    def __call__(self, updates: Sequence[TrackUpdate]) -> None:
        """Queue ``updates`` for the consumer (waits while too many records are queued)."""
        with self._cond:
            while (
                not self._stopping
                and self._thread.is_alive()
                and len(self._fixes) + len(self._locks) >= self.max_pending
            ):
                self._cond.wait(0.5)
            for update in updates:
                self._fixes.extend(update.fixes)
                self._locks.extend(update.locks)
            self._cond.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until everything handed over was consumed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._fixes or self._locks or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Consume what is queued (up to ``timeout``), then stop the thread."""
        self.idle(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _take(self) -> list[TrackUpdate] | None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            while not (self._fixes or self._locks or self._stopping):
                self._cond.wait()
            if not (self._fixes or self._locks):
                return None
            fixes, locks = self._fixes, self._locks
            self._fixes, self._locks, self._busy = [], [], True
            self._cond.notify_all()
        return group_tracks(fixes, locks)

    def _run(self) -> None:
        while (updates := self._take()) is not None:
            self.rounds += 1
            try:
                self.consumer(updates)
            except Exception:  # a consumer's bug must not stop the thread; it is logged
                self.errors += 1
                if self.metrics is not None:
                    self.metrics.consumer_errors.inc()
                log.exception("track consumer %r failed", self.consumer)
        with self._cond:
            self._busy = False
            self._cond.notify_all()
