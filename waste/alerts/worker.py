"""The gateway side of alerts: the track consumer, and a thread that sweeps and publishes.

``AlertDetector`` is the ``TrackConsumer`` the gateway registers: after each ingest
commit it runs detection for every ``TrackUpdate`` (one transaction per update, so
a leg's row lock is held briefly), then publishes what changed at once. A failing
update is retried; if it still fails its leg is replayed from the stored track on
its next update, so no fix is skipped.

``AlertWorker`` runs in the background of every gateway: every ``interval_s`` it
publishes alerts changed elsewhere (custody events and handling in the API process
set ``publish_pending``), and every ``sweep_interval_s`` it runs the sweep. Alerts
go out on ``waste/v1/alerts/{kind}``, QoS 1, after their commit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from waste.alerts.context import LegCache
from waste.alerts.detection import detect_leg, detect_update
from waste.alerts.payload import alert_topic
from waste.alerts.store import claim_pending
from waste.alerts.sweep import sweep
from waste.alerts.thresholds import ThresholdBook, current
from waste.clock import utcnow
from waste.telemetry.domain import TrackUpdate
from waste.uow import UnitOfWork

__all__ = ["AlertDetector", "AlertWorker", "Publisher", "publish_pending"]

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What publishing needs of a transport (``gateway.transport.Transport`` has it)."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue a message for the broker."""
        ...


def publish_pending(
    session_factory: sessionmaker[Session], transport: Publisher, *, now: datetime, limit: int = 200
) -> int:
    """Publish the alerts waiting to go out (after their claim commits); how many."""
    sent = 0
    while True:
        with UnitOfWork(session_factory) as uow:
            payloads = claim_pending(uow=uow, now=now, limit=limit)
        for payload in payloads:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            transport.publish(alert_topic(str(payload["kind"])), body, qos=1)
        sent += len(payloads)
        if len(payloads) < limit:
            return sent


class AlertDetector:
    """The gateway's alert consumer: detection per ``TrackUpdate``, then publishing."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        book: ThresholdBook | None = None,
        transport: Publisher | None = None,
        clock: Callable[[], datetime] = utcnow,
        attempts: int = 3,
    ) -> None:
        self._factory = session_factory
        self.book = book or current()
        self.cache = LegCache(self.book)
        self.transport = transport
        self._clock = clock
        self._attempts = attempts
        self._dirty: set[tuple[str, int]] = set()
        self.errors = 0

    def __call__(self, updates: Sequence[TrackUpdate]) -> None:
        """Detect on every update (never raises), then publish what changed."""
        changed = self._together(updates)
        if changed is None:  # something failed: each update on its own, retried
            changed = sum(self._one(update) for update in updates)
        if changed and self.transport is not None:
            try:
                publish_pending(self._factory, self.transport, now=self._clock())
            except Exception:  # the worker publishes them on its next round
                log.exception("publishing alerts failed; left pending")

    def _together(self, updates: Sequence[TrackUpdate]) -> int | None:
        """All updates of a commit in one transaction (legs locked in one order); None if it
        failed."""
        if self._dirty:
            return None
        by_leg = sorted(updates, key=lambda u: (u.manifest_id or "", u.leg_index or 0))
        by_vehicle = sorted(updates, key=lambda u: u.vehicle)  # stable: time order kept
        try:
            with UnitOfWork(self._factory) as uow:
                now, cache, changed = self._clock(), self.cache, 0
                for update in by_leg:  # rows locked legs first, then vehicles, each sorted
                    found = detect_update(uow=uow, cache=cache, update=update, now=now, watch=False)
                    changed += len(found)
                for update in by_vehicle:
                    found = detect_update(uow=uow, cache=cache, update=update, now=now, leg=False)
                    changed += len(found)
                uow.commit()
                return changed
        except Exception:
            log.warning("alert detection of a whole batch failed; retrying update by update")
            return None

    def _one(self, update: TrackUpdate) -> int:
        leg = (
            None
            if update.manifest_id is None or update.leg_index is None
            else (update.manifest_id, update.leg_index)
        )
        for attempt in range(1, self._attempts + 1):
            try:
                with UnitOfWork(self._factory) as uow:
                    now = self._clock()
                    changed = detect_update(uow=uow, cache=self.cache, update=update, now=now)
                    if leg is not None and leg in self._dirty:
                        changed += detect_leg(
                            uow=uow,
                            cache=self.cache,
                            manifest_id=leg[0],
                            leg_index=leg[1],
                            now=now,
                            replay=True,
                        )
                    uow.commit()
                if leg is not None:
                    self._dirty.discard(leg)
                return len(changed)
            except Exception:
                if attempt == self._attempts:
                    self.errors += 1
                    if leg is not None:
                        self._dirty.add(leg)
                    log.exception("alert detection failed for %s", leg or update.vehicle)
                    return 0
                time.sleep(0.05 * attempt)
        return 0


class AlertWorker:
    """A thread publishing pending alerts every ``interval_s`` and sweeping every
    ``sweep_interval_s``."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        transport: Publisher | None,
        *,
        book: ThresholdBook | None = None,
        interval_s: float = 1.0,
        sweep_interval_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = session_factory
        self.transport = transport
        self.book = book or current()
        self.cache = LegCache(self.book)
        self._interval = interval_s
        self._sweep_every = sweep_interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._next_sweep = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-worker", daemon=True)
        self.errors = 0

    def start(self) -> None:
        """Start in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self, *, force_sweep: bool = False) -> tuple[list[str], int]:
        """One round: the sweep if due, then publishing; ``(alerts swept, published)``."""
        swept: list[str] = []
        if force_sweep or self._monotonic() >= self._next_sweep:
            self._next_sweep = self._monotonic() + self._sweep_every
            swept = sweep(
                session_factory=self._factory, now=self._clock(), book=self.book, cache=self.cache
            )
        sent = 0
        if self.transport is not None:
            sent = publish_pending(self._factory, self.transport, now=self._clock())
        return swept, sent

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception:  # a database hiccup must not kill the worker; logged, retried
                self.errors += 1
                log.exception("alert worker round failed; retrying in %.1fs", self._interval)
