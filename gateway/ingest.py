"""The ingest loop: take device messages, verify them, store them in batches, then acknowledge.

Batching. ``Ingestor.step`` takes messages from the ``Transport`` and decodes each
(``gateway.payloads.decode``, device keys from ``DeviceDirectory``) into an item: a
verified message, a status, or a dead letter. A batch is committed when it holds
``batch_fixes`` fixes or ``batch_messages`` messages, or ``batch_interval_s`` after
its first message, in ONE transaction (``waste.telemetry.service.store_batch``):
message keys ``(device_id, seq)`` are inserted with ``ON CONFLICT DO NOTHING
RETURNING``, then only the new messages' fixes and e-lock events, then dead letters
and presence. Only after the commit is every message of the batch acknowledged
(PUBACK), duplicates and rejections included: they are stored or dead-lettered.

Failures. A database error acknowledges nothing: the same batch is retried after
an exponential backoff with jitter, until it commits (or, at shutdown, until a grace
period ends: the broker keeps the unacknowledged messages for the next start). A
gateway killed at any instant therefore loses nothing (unacknowledged messages come
again) and stores nothing twice (they are then duplicates). A batch failing for any
other reason is split in halves until the one message that cannot be stored is
found and dead-lettered as ``store_failed``, so nothing can stall ingestion. A
registry lookup failure (``lookup_failed``) is the registry's, not the message's: it
is held back, unacknowledged, and decoded again after a backoff.

Binding. Each stored fix and e-lock event is bound to the leg of its vehicle whose
window ``[opened_at, closed_at)`` in ``trip_legs`` holds its own timestamp, or to no
leg. The manifest append path keeps ``trip_legs`` current and re-binds stored rows
when a window changes (``waste.telemetry.legs``), so arrival order never matters.

Sealing. ``gateway.sealer`` seals each closed leg's telemetry into the transparency
log once its grace period has passed; late data makes a new version.

Scale-out. Several gateway processes subscribe with one MQTT 5 shared subscription
(``$share/waste-gateway/waste/v1/devices/+/+``), each with its own client id, and the
broker spreads messages among them. No per-device or per-trip state lives in a
process: duplicate suppression is the ``device_messages`` key, bindings come from
``trip_legs``, sealing versions are keys of ``leg_seals``, all in the database. So
messages of one device may land on any process, in any order.

Consumers. Code downstream (route matching, alerts) registers a ``TrackConsumer``:
after each commit and acknowledgement it is called once with the newly stored
records as ``TrackUpdate`` values, one per (device, vehicle, leg or none), each
sorted by fix time (``(t, device_id, seq, idx)``), the list sorted by device and
first time. A late store-and-forward batch arrives as its own update, older than
what came before it: a consumer wanting context reads the device's stored track in
fix-time order with ``waste.telemetry.queries.track``. A consumer must be quick and
must not raise; an exception is logged and counted, and never undoes the commit.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from gateway.metrics import GatewayMetrics
from gateway.payloads import DeviceKey, Rejection, StatusMessage, TelemetryMessage, decode
from gateway.topics import parse_device_topic
from gateway.transport import InboundMessage, Transport
from waste.clock import utcnow
from waste.errors import Unavailable
from waste.telemetry.domain import DeadLetterIn, PresenceIn, Received, TrackUpdate
from waste.telemetry.service import SEQ_REUSED, StoreResult, store_batch
from waste.uow import UnitOfWork

__all__ = ["STORE_FAILED", "IngestConfig", "Ingestor", "TrackConsumer"]

log = logging.getLogger(__name__)

TrackConsumer = Callable[[Sequence[TrackUpdate]], None]
"""Called after each commit with the newly stored records (see the module docstring)."""

STORE_FAILED = "store_failed"
"""Dead-letter reason: a message the database refused for a reason other than an outage."""

_TRANSIENT = (Unavailable, OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass(frozen=True)
class IngestConfig:
    """Batch limits and backoff of the ingest loop."""

    batch_fixes: int = 1000
    batch_messages: int = 500
    batch_interval_s: float = 0.2
    backoff_base_s: float = 0.05
    backoff_max_s: float = 5.0
    lookup_retry_s: float = 0.5
    shutdown_grace_s: float = 5.0


@dataclass
class _Item:
    """One taken message and what it became."""

    msg: InboundMessage
    received: Received | None = None
    presence: PresenceIn | None = None
    dead: DeadLetterIn | None = None

    @property
    def fixes(self) -> int:
        """How many fixes the item carries."""
        m = self.received.message if self.received else None
        return len(m.fixes) if isinstance(m, TelemetryMessage) else 0


@dataclass
class _Held:
    """A message whose registry lookup failed, waiting to be decoded again."""

    msg: InboundMessage
    attempts: int
    due: float


@dataclass
class _Outcome:
    result: StoreResult = field(default_factory=StoreResult)
    items: list[_Item] = field(default_factory=list)


class Ingestor:
    """Decodes, batches, stores and acknowledges device messages from one transport."""

    def __init__(
        self,
        *,
        transport: Transport,
        session_factory: sessionmaker[Session],
        lookup_device: Callable[[str], DeviceKey | None],
        metrics: GatewayMetrics | None = None,
        config: IngestConfig | None = None,
        consumers: Sequence[TrackConsumer] = (),
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.metrics = metrics or GatewayMetrics()
        self.config = config or IngestConfig()
        self.consumers = list(consumers)
        self._factory = session_factory
        self._lookup = lookup_device
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._held: list[_Held] = []
        self.db_ok = True

    def health(self) -> tuple[bool, str]:
        """``(ok, why)`` for ``/healthz``: broker connected and the database answering."""
        if not self.transport.connected:
            return False, "broker disconnected"
        if not self.db_ok:
            return False, "database failing"
        return True, "ok"

    def run(self, stop: threading.Event) -> None:
        """Ingest until ``stop`` is set; then commit and acknowledge the batch in hand."""
        while not stop.is_set():
            self.step(stop)

    def step(self, stop: threading.Event | None = None) -> int:
        """Gather one batch (waiting up to the batch interval) and commit it; messages handled."""
        stop = stop or threading.Event()
        cfg = self.config
        items: list[_Item] = []
        fixes = 0
        deadline: float | None = None
        while len(items) < cfg.batch_messages and fixes < cfg.batch_fixes:
            now = self._monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = cfg.batch_interval_s if deadline is None else deadline - now
            if self._held:
                wait = max(0.0, min(wait, min(h.due for h in self._held) - now))
            msgs = self.transport.messages(wait, limit=cfg.batch_messages - len(items))
            taken = [self._take(m, 1) for m in msgs] + self._take_held()
            for item in taken:
                if item is not None:
                    items.append(item)
                    fixes += item.fixes
            if items and deadline is None:
                deadline = self._monotonic() + cfg.batch_interval_s
            if stop.is_set() or (not items and not msgs and not self._held):
                break
        self.metrics.connected.set(1 if self.transport.connected else 0)
        if items:
            self._commit(items, stop)
        return len(items)

    # --- taking messages --------------------------------------------------------

    def _take(self, msg: InboundMessage, attempt: int) -> _Item | None:
        if attempt == 1:
            parsed = parse_device_topic(msg.topic)
            self.metrics.received.labels(parsed.channel.value if parsed else "unknown").inc()
        decoded = decode(msg.topic, msg.payload, lookup_device=self._lookup, now=self._clock())
        if isinstance(decoded, Rejection):
            if decoded.retryable:
                delay = min(self.config.backoff_max_s, self.config.lookup_retry_s * attempt)
                self._held.append(_Held(msg, attempt, self._monotonic() + delay))
                self.metrics.lookup_retries.inc()
                self.metrics.pending_retries.set(len(self._held))
                log.warning("holding a message of %s: %s", decoded.device_id, decoded.detail)
                return None
            dead = DeadLetterIn(
                msg.topic,
                msg.payload,
                decoded.reason.value,
                decoded.detail,
                decoded.device_id,
                msg.received_at,
            )
            return _Item(msg, dead=dead)
        if isinstance(decoded, StatusMessage):
            return _Item(msg, presence=PresenceIn(decoded, msg.retain, msg.received_at))
        return _Item(msg, received=Received(decoded, msg.received_at, msg.topic, msg.payload))

    def _take_held(self) -> list[_Item | None]:
        now = self._monotonic()
        due = [h for h in self._held if h.due <= now]
        if not due:
            return []
        self._held = [h for h in self._held if h.due > now]
        taken = [self._take(h.msg, h.attempts + 1) for h in due]
        self.metrics.pending_retries.set(len(self._held))
        return taken

    # --- committing -------------------------------------------------------------

    def _commit(self, items: list[_Item], stop: threading.Event) -> bool:
        """Store ``items`` (retrying outages), then acknowledge; False if given up at shutdown."""
        attempt = 0
        give_up_at: float | None = None
        while True:
            started = time.perf_counter()
            try:
                outcome = self._store(items)
            except Exception as exc:
                if not _is_transient(exc):
                    self.db_ok = True
                    log.exception("a batch of %d could not be stored; splitting it", len(items))
                    return self._split(items, stop, exc)
                self.db_ok = False
                attempt += 1
                cause = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
                self.metrics.db_errors.labels(type(cause).__name__).inc()
                if stop.is_set():
                    give_up_at = give_up_at or self._monotonic() + self.config.shutdown_grace_s
                    if self._monotonic() >= give_up_at:
                        log.error("shutting down with %d messages not stored", len(items))
                        return False
                delay = self._backoff(attempt)
                log.warning("database error (%s); retry %d in %.2fs", cause, attempt, delay)
                if stop.is_set():
                    time.sleep(delay)  # at shutdown: retry until the grace period ends
                else:
                    stop.wait(delay)
                continue
            self.db_ok = True
            self.metrics.flush_seconds.observe(time.perf_counter() - started)
            self._acknowledge(outcome)
            return True

    def _backoff(self, attempt: int) -> float:
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * 2.0 ** min(attempt, 30))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def _store(self, items: list[_Item]) -> _Outcome:
        received = [i.received for i in items if i.received is not None]
        presence = [i.presence for i in items if i.presence is not None]
        dead = [i.dead for i in items if i.dead is not None]
        with UnitOfWork(self._factory) as uow:
            result = store_batch(
                uow=uow, received=received, presence=presence, dead_letters=dead, now=self._clock()
            )
        return _Outcome(result, items)

    def _split(self, items: list[_Item], stop: threading.Event, exc: Exception) -> bool:
        """Commit the halves separately; a single culprit becomes a ``store_failed`` letter."""
        if len(items) > 1:
            half = len(items) // 2
            first = self._commit(items[:half], stop)
            return self._commit(items[half:], stop) and first
        (item,) = items
        if item.dead is not None and item.dead.reason == STORE_FAILED:
            log.error("dropping a message even its dead letter failed for: %r", item.msg)
            self.metrics.rejected.labels("dropped").inc()
            self.transport.ack(item.msg)
            return True
        letter = DeadLetterIn(
            item.msg.topic,
            item.msg.payload,
            STORE_FAILED,
            f"{type(exc).__name__}: {exc}"[:500],
            item.received.message.device_id if item.received else None,
            item.msg.received_at,
        )
        return self._commit([_Item(item.msg, dead=letter)], stop)

    def _acknowledge(self, outcome: _Outcome) -> None:
        for item in outcome.items:
            if not self.transport.ack(item.msg):
                self.metrics.unacked.inc()
        self._count(outcome)
        for consumer in self.consumers:
            try:
                consumer(outcome.result.tracks)
            except Exception:  # a consumer's bug must not stop ingestion; it is logged
                self.metrics.consumer_errors.inc()
                log.exception("track consumer %r failed", consumer)

    def _count(self, outcome: _Outcome) -> None:
        m, result = self.metrics, outcome.result
        for r in result.stored:
            channel = "telemetry" if isinstance(r.message, TelemetryMessage) else "lock"
            m.accepted.labels(channel).inc()
        m.duplicates.inc(len(result.duplicates))
        for item in outcome.items:
            if item.dead is not None:
                m.rejected.labels(item.dead.reason).inc()
        if result.reused:
            m.rejected.labels(SEQ_REUSED).inc(len(result.reused))
        m.fixes.inc(result.fixes)
        m.locks.inc(result.locks)
        m.presence.inc(result.presence)
        m.batch_messages.observe(len(outcome.items))
        m.batch_fixes.observe(result.fixes)
        now = self._clock()
        for update in result.tracks:
            for fix in update.fixes:
                m.lag_seconds.observe(max(0.0, (now - fix.fix.t).total_seconds()))
        m.last_commit.set(now.timestamp())
