"""The reference vehicle device: keys, ``seq``, signing, QoS 1 and store-and-forward.

A hardware vendor porting this needs five things, each a few lines here:

1. The device's Ed25519 key (a PEM or raw-seed file; ``waste devices provision``
   writes one) signs every telemetry and e-lock message over the RFC 8785 JCS of
   the message without its ``sig`` member (``devices.signing``).
2. ``seq`` comes from a counter that never repeats, even across crashes
   (``devices.store.SeqCounter``: reserved in blocks on disk).
3. Every fix and e-lock event is first written to disk (``devices.store.Outbox``),
   and leaves it only when the broker has acknowledged (PUBACK) the message that
   carried it. While the broker is unreachable, records pile up; when it returns,
   they go out in order, many fixes per telemetry message (up to 500 fixes, the
   gateway's limit, and 64 KiB), e-lock events one per message.
4. A signed message is stored before it is sent and re-sent byte for byte (same
   ``seq``) until acknowledged: the server stores a ``(device_id, seq)`` once.
5. The will is ``{"online": false}`` retained on ``waste/v1/devices/{id}/status``;
   on every connection the device publishes ``{"online": true, "t": …}`` there,
   retained, and ``{"online": false, "t": …}`` when it shuts down cleanly.

Usage::

    link = PahoLink(BrokerConfig.from_url("mqtt://dev-0001:secret@broker:1883"),
                    client_id="DEV-0001")
    device = DeviceClient.open("DEV-0001", key_path, state_dir, link)
    device.start_background()
    device.record_fix(Fix(t, lat, lon, speed_kmh, heading, hdop))
    ...
    device.close()

``pump`` does the work (link events, forming and handing messages); call it from
one thread, or let ``start_background`` run it. ``record_*`` may be called from
any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.link import Acked, Connected, Disconnected, Link, LinkEvent, Will
from devices.signing import encode_status, fix_to_wire, lock_to_wire, sign
from devices.store import Outbox, OutboxMessage, Record, RecordKind, SeqCounter
from gateway.payloads import MAX_FIXES, Fix, LockEvent
from gateway.topics import is_valid_device_id, lock_topic, status_topic, telemetry_topic
from waste.clock import utcnow
from waste.ledger.keys import load_private_key

__all__ = ["DeviceClient"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _epoch_ms(clock: Clock) -> Callable[[], int]:
    return lambda: int(clock().timestamp() * 1000)


class DeviceClient:
    """One vehicle device: records fixes and e-lock events, and delivers them at least once."""

    def __init__(
        self,
        device_id: str,
        key: Ed25519PrivateKey,
        state_dir: Path | str,
        link: Link,
        *,
        clock: Clock = utcnow,
        window: int = 10,
        max_fixes: int = MAX_FIXES,
        linger: timedelta = timedelta(0),
        durable: bool = True,
        seq_block: int = 100,
    ) -> None:
        if not is_valid_device_id(device_id):
            raise ValueError(f"not a valid device id: {device_id[:80]!r}")
        if not 1 <= max_fixes <= MAX_FIXES:
            raise ValueError(f"max_fixes must be 1-{MAX_FIXES}")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.device_id = device_id
        self.link = link
        self.clock = clock
        self.window = window
        self.max_fixes = max_fixes
        self.linger = linger
        self._key = key
        state = Path(state_dir)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.seq = SeqCounter(state / "seq", block=seq_block, initial=_epoch_ms(clock))
        self.outbox = Outbox(state / "outbox.sqlite", durable=durable)
        self._topics = {
            RecordKind.FIX: telemetry_topic(device_id),
            RecordKind.LOCK: lock_topic(device_id),
        }
        self._status_topic = status_topic(device_id)
        self._handed: dict[int, int] = {}  # link handle -> outbox ord, on this link
        self._last_ord = 0  # highest ord handed to this link
        self._status: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_messages = 0
        self.acked_messages = 0

    @classmethod
    def open(
        cls, device_id: str, key_path: Path | str, state_dir: Path | str, link: Link, **kw: object
    ) -> DeviceClient:
        """A client with its key read from ``key_path`` (PEM or raw 32-byte seed)."""
        return cls(device_id, load_private_key(key_path), state_dir, link, **kw)  # type: ignore[arg-type]

    # -- recording ----------------------------------------------------------------

    def record_fix(self, fix: Fix) -> None:
        """Store a fix durably; it goes out with the next message the link has room for."""
        self.outbox.add(RecordKind.FIX, fix_to_wire(fix), self.clock())

    def record_fixes(self, fixes: Sequence[Fix]) -> None:
        """Store several fixes, in order."""
        for fix in fixes:
            self.outbox.add(RecordKind.FIX, fix_to_wire(fix), self.clock())

    def record_lock(self, lock: LockEvent) -> None:
        """Store an e-lock event durably; it goes out in a message of its own."""
        self.outbox.add(RecordKind.LOCK, lock_to_wire(lock), self.clock())

    # -- running ------------------------------------------------------------------

    @property
    def backlog(self) -> tuple[int, int]:
        """``(records not yet in a message, messages not yet acknowledged)``."""
        return self.outbox.counts()

    def start(self) -> None:
        """Start the link, with the will ``{"online": false}`` retained."""
        self.link.start(Will(self._status_topic, encode_status(False), retain=True))

    def pump(self, timeout: float = 0.0) -> int:
        """Handle link events (waiting up to ``timeout`` for one), then send what fits.

        Returns the number of link events handled plus messages handed to the link.
        """
        events = self.link.poll(timeout)
        for event in events:
            self._handle(event)
        return len(events) + self._send()

    def _handle(self, event: LinkEvent) -> None:
        if isinstance(event, Connected):
            status = encode_status(True, t=self.clock())
            self._status.add(self.link.publish(self._status_topic, status, retain=True))
        elif isinstance(event, Acked):
            if (ord_ := self._handed.pop(event.handle, None)) is not None:
                self.outbox.acknowledge(ord_)
                self.acked_messages += 1
            self._status.discard(event.handle)
        elif isinstance(event, Disconnected):
            log.info("device %s lost its broker (%s)", self.device_id, event.reason)

    def _send(self) -> int:
        if not self.link.connected:
            return 0
        handed = 0
        room = self.window - len(self._handed)
        if room > 0:  # formed earlier (before a restart) and not yet handed to this link
            for formed in self.outbox.unacked(after=self._last_ord, limit=room):
                self._hand(formed)
                handed += 1
        while self.window - len(self._handed) > 0 and (message := self._form()) is not None:
            self._hand(message)
            handed += 1
        return handed

    def _hand(self, message: OutboxMessage) -> None:
        handle = self.link.publish(message.topic, message.payload)
        self._handed[handle] = message.ord
        self._last_ord = max(self._last_ord, message.ord)
        self.sent_messages += 1

    def _form(self) -> OutboxMessage | None:
        """The next message made of the oldest records, stored in the outbox; None if none."""
        if self.linger > timedelta(0):
            oldest = self.outbox.oldest_record_at()
            if oldest is None or self.clock() - oldest < self.linger:
                return None
        records = self.outbox.pending(self.max_fixes)
        if not records:
            return None
        kind = records[0].kind
        group = records[:1] if kind is RecordKind.LOCK else _leading_fixes(records)
        seq = self.seq.next()  # a seq never stored is a gap, which the protocol allows
        while True:
            try:
                payload = self._encode(kind, seq, group)
                break
            except ValueError as exc:  # over 64 KiB: send fewer fixes
                if len(group) == 1:  # a record no message can carry: never send it
                    log.error(
                        "device %s drops unsendable record %s: %s",
                        self.device_id,
                        group[0].wire,
                        exc,
                    )
                    self.outbox.discard([group[0].id])
                    return self._form()
                group = group[: len(group) // 2]
        return self.outbox.form(group, seq, self._topics[kind], payload, self.clock())

    def _encode(self, kind: RecordKind, seq: int, group: Sequence[Record]) -> bytes:
        obj: dict[str, object] = {"device_id": self.device_id, "seq": seq}
        if kind is RecordKind.LOCK:
            obj["lock"] = group[0].wire
        else:
            obj["fixes"] = [r.wire for r in group]
        return sign(obj, self._key)

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Pump until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.pump(interval)
            except Exception:  # e.g. a full disk: keep the device alive and try again
                log.exception("device %s: pump failed", self.device_id)
                stop.wait(min(5.0, interval * 20))

    def start_background(self) -> None:
        """Start the link and pump on a daemon thread until ``close``."""
        self.start()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name=f"device-{self.device_id}", daemon=True
        )
        self._thread.start()

    def drain(self, timeout: float) -> bool:
        """Pump (on this thread) until nothing is pending or unacknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.backlog != (0, 0):
            if time.monotonic() > deadline:
                return False
            self.pump(0.02)
        return True

    def wait_delivered(self, timeout: float) -> bool:
        """Wait (while another thread pumps) until everything is acknowledged."""
        deadline = time.monotonic() + timeout
        while self.backlog != (0, 0):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Publish ``{"online": false}`` (if connected), stop pumping, disconnect, close files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.link.connected:
            offline = encode_status(False, t=self.clock())
            self._status.add(handle := self.link.publish(self._status_topic, offline, retain=True))
            deadline = time.monotonic() + timeout
            while handle in self._status and time.monotonic() < deadline:
                for event in self.link.poll(0.05):
                    self._handle(event)
        self.link.stop()
        self.outbox.close()


def _leading_fixes(records: Sequence[Record]) -> list[Record]:
    group: list[Record] = []
    for record in records:
        if record.kind is not RecordKind.FIX:
            break
        group.append(record)
    return group
