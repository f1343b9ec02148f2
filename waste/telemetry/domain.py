"""Pure rules of device telemetry: what is stored, how it binds to trip legs, how legs are sealed.

Binding. A trip leg is a window ``[opened_at, closed_at)`` of one vehicle (its plate,
as custody events name it). A fix or e-lock event binds to the leg of its vehicle
whose window holds its own timestamp ``t``; when legs of several manifests hold it
(one vehicle carrying several loads), it binds to the most recently opened one
(ties: the greater manifest id, then leg index). Sealing does not depend on that
choice: a leg's sealed track is every fix and e-lock event of its vehicle in its
window.

Leaves. A leg's telemetry root is the RFC 6962 Merkle root (``waste.ledger.merkle``)
over its fixes and e-lock events in the order ``(t, device_id, seq, idx)`` (``idx``:
position in the message's ``fixes``; 0 for an e-lock event), where each leaf is
``SHA-256(0x00 || JCS(wire))`` and ``wire`` is the object exactly as PROTOCOL.md §4
carries it (``devices.signing.fix_to_wire`` / ``lock_to_wire``: optional members
left out when absent). Devices sign canonical JSON, so a leaf's ``JCS(wire)`` is the
very bytes of that fix inside the signed message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devices.signing import fix_to_wire, lock_to_wire
from gateway.payloads import Fix, LockEvent, LockMessage, StatusMessage, TelemetryMessage
from waste.clock import format_utc
from waste.ledger import merkle
from waste.ledger.canonical import canonical_bytes
from waste.manifests.custody import Custody

MAX_DEAD_LETTER_BYTES = 1024 * 1024
"""Dead letters keep at most this many bytes of a payload (its true size is recorded)."""
MAX_TOPIC_CHARS = 512
SEAL_FORMAT_VERSION = 1
LEG_TELEMETRY = "leg_telemetry"

Accepted = TelemetryMessage | LockMessage
SortKey = tuple[datetime, str, int, int]


@dataclass(frozen=True, slots=True)
class Received:
    """A verified device message, when the gateway received it, and what it arrived as."""

    message: Accepted
    received_at: datetime
    topic: str = ""
    payload: bytes = b""

    @property
    def key(self) -> tuple[str, int]:
        """The duplicate-suppressing key ``(device_id, seq)``."""
        return (self.message.device_id, self.message.seq)


@dataclass(frozen=True, slots=True)
class PresenceIn:
    """A status (or will) message to record in the device's presence history."""

    status: StatusMessage
    retained: bool
    received_at: datetime

    @property
    def source(self) -> str:
        """``retained`` (replayed by the broker), ``will`` (offline, no ``t``) or ``device``."""
        if self.retained:
            return "retained"
        if not self.status.online and self.status.t is None:
            return "will"
        return "device"


@dataclass(frozen=True, slots=True)
class DeadLetterIn:
    """A rejected message to keep for inspection."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    device_id: str | None
    received_at: datetime

    @property
    def digest(self) -> str:
        """Hex SHA-256 of topic, NUL, payload: the same bytes on the same topic are one letter."""
        topic = self.topic.encode("utf-8", "backslashreplace")
        return hashlib.sha256(topic + b"\x00" + self.payload).hexdigest()

    @property
    def shown_topic(self) -> str:
        """The topic as stored: non-printable characters escaped, at most 512 characters."""
        text = self.topic if self.topic.isprintable() else repr(self.topic)[1:-1]
        return text[:MAX_TOPIC_CHARS]

    @property
    def kept_payload(self) -> bytes:
        """The payload as stored: its first MAX_DEAD_LETTER_BYTES bytes."""
        return self.payload[:MAX_DEAD_LETTER_BYTES]


# --- stored records and what consumers receive -------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFix:
    """A stored fix with its message key, vehicle and leg binding."""

    device_id: str
    seq: int
    idx: int
    vehicle: str
    fix: Fix
    received_at: datetime
    manifest_id: str | None = None
    leg_index: int | None = None

    @property
    def key(self) -> SortKey:
        """Fix-time order, made total by the message key."""
        return (self.fix.t, self.device_id, self.seq, self.idx)


@dataclass(frozen=True, slots=True)
class StoredLock:
    """A stored e-lock event with its message key, vehicle and leg binding."""

    device_id: str
    seq: int
    vehicle: str
    lock: LockEvent
    received_at: datetime
    manifest_id: str | None = None
    leg_index: int | None = None

    @property
    def key(self) -> SortKey:
        """Event-time order, made total by the message key."""
        return (self.lock.t, self.device_id, self.seq, 0)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """Newly stored fixes and e-lock events of one device and one leg (or none), by time."""

    device_id: str
    vehicle: str
    manifest_id: str | None
    leg_index: int | None
    fixes: tuple[StoredFix, ...]
    locks: tuple[StoredLock, ...]

    @property
    def first_t(self) -> datetime:
        """The earliest timestamp in the update."""
        keys = [f.key for f in self.fixes] + [lk.key for lk in self.locks]
        return min(keys)[0]


def group_tracks(fixes: Iterable[StoredFix], locks: Iterable[StoredLock]) -> list[TrackUpdate]:
    """Group records by (device, leg); each group sorted by time; groups by device, then time."""
    groups: dict[tuple[str, str, str | None, int | None], tuple[list[StoredFix], list[StoredLock]]]
    groups = {}
    for fix in fixes:
        key = (fix.device_id, fix.vehicle, fix.manifest_id, fix.leg_index)
        groups.setdefault(key, ([], []))[0].append(fix)
    for lock in locks:
        key = (lock.device_id, lock.vehicle, lock.manifest_id, lock.leg_index)
        groups.setdefault(key, ([], []))[1].append(lock)
    updates = [
        TrackUpdate(
            *key,
            tuple(sorted(fs, key=lambda r: r.key)),
            tuple(sorted(ls, key=lambda r: r.key)),
        )
        for key, (fs, ls) in groups.items()
    ]
    updates.sort(key=lambda u: (u.device_id, u.first_t))
    return updates


# --- legs and binding -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegWindow:
    """A trip leg as telemetry sees it: one vehicle over ``[opened_at, closed_at)``."""

    manifest_id: str
    leg_index: int
    vehicle: str
    device_id: str
    seal_id: str
    opened_at: datetime
    closed_at: datetime | None
    destination: str
    route: dict[str, Any] | None
    corridor_m: float

    def holds(self, t: datetime) -> bool:
        """Whether ``t`` falls in this leg's window."""
        return self.opened_at <= t and (self.closed_at is None or t < self.closed_at)

    @property
    def rank(self) -> tuple[datetime, str, int]:
        """Among overlapping legs, the greatest rank wins a fix."""
        return (self.opened_at, self.manifest_id, self.leg_index)


def legs_of(custody: Custody) -> list[LegWindow]:
    """The legs of a manifest's custody as telemetry windows."""
    return [
        LegWindow(
            manifest_id=custody.manifest_id,
            leg_index=leg.index,
            vehicle=leg.vehicle.upper(),
            device_id=leg.device_id,
            seal_id=leg.seal_id,
            opened_at=leg.opened_at,
            closed_at=leg.closed_at,
            destination=leg.destination,
            route=leg.route,
            corridor_m=float(custody.filing.corridor_m),
        )
        for leg in custody.legs
    ]


def bind(legs: Iterable[LegWindow], t: datetime) -> LegWindow | None:
    """The leg (of the vehicle whose ``legs`` these are) a record at ``t`` binds to."""
    holding = [leg for leg in legs if leg.holds(t)]
    return max(holding, key=lambda leg: leg.rank) if holding else None


def leg_changes(
    stored: Mapping[int, LegWindow], wanted: Sequence[LegWindow]
) -> list[tuple[LegWindow | None, LegWindow]]:
    """``(stored or None, wanted)`` for every leg that is new or differs from its stored row."""
    return [(stored.get(leg.leg_index), leg) for leg in wanted if stored.get(leg.leg_index) != leg]


Span = tuple[datetime, datetime | None]  # [start, end); None: open-ended


def rebind_spans(changes: Iterable[tuple[LegWindow | None, LegWindow]]) -> dict[str, list[Span]]:
    """Per vehicle, the merged time spans whose records may bind differently after ``changes``.

    A leg that only got closed (or re-closed) changes binding between its old and new
    ends; any other change (a new leg, another vehicle or opening) spans both windows.
    """
    spans: dict[str, list[Span]] = {}
    for old, new in changes:
        if old is not None and (old.vehicle, old.opened_at) == (new.vehicle, new.opened_at):
            lo, hi = old.closed_at, new.closed_at
            if lo is None or (hi is not None and hi < lo):
                lo, hi = hi, lo  # None (open-ended) sorts last
            if lo is not None and lo != hi:
                spans.setdefault(new.vehicle, []).append((lo, hi))
            continue
        spans.setdefault(new.vehicle, []).append((new.opened_at, new.closed_at))
        if old is not None:
            spans.setdefault(old.vehicle, []).append((old.opened_at, old.closed_at))
    return {vehicle: _merge(found) for vehicle, found in spans.items()}


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans, key=lambda s: s[0]):
        if merged and (merged[-1][1] is None or start <= merged[-1][1]):
            last_start, last_end = merged[-1]
            joined = None if last_end is None or end is None else max(last_end, end)
            merged[-1] = (last_start, joined)
        else:
            merged.append((start, end))
    return merged


# --- sealing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegDigest:
    """The telemetry of one leg reduced to its count, time span and Merkle root (hex)."""

    count: int
    first_t: datetime | None
    last_t: datetime | None
    root: str


def leaf(record: Fix | LockEvent) -> bytes:
    """The leaf input of a fix or e-lock event: JCS of its wire form."""
    wire = fix_to_wire(record) if isinstance(record, Fix) else lock_to_wire(record)
    return canonical_bytes(wire)


def digest_track(records: Iterable[tuple[SortKey, Fix | LockEvent]]) -> LegDigest:
    """Sort records by ``(t, device_id, seq, idx)`` and compute their RFC 6962 root."""
    ordered = sorted(records, key=lambda r: r[0])
    root = merkle.root_of([merkle.leaf_hash(leaf(rec)) for _, rec in ordered])
    first = ordered[0][0][0] if ordered else None
    last = ordered[-1][0][0] if ordered else None
    return LegDigest(len(ordered), first, last, root.hex())


def seal_entry(
    *, leg: LegWindow, digest: LegDigest, version: int, accepted_at: datetime
) -> dict[str, Any]:
    """The transparency-log entry sealing one version of a leg's telemetry."""
    return {
        "kind": LEG_TELEMETRY,
        "accepted_at": format_utc(accepted_at),
        "payload": {
            "manifest_id": leg.manifest_id,
            "leg_index": leg.leg_index,
            "device_id": leg.device_id,
            "vehicle": leg.vehicle,
            "count": digest.count,
            "first_t": None if digest.first_t is None else format_utc(digest.first_t),
            "last_t": None if digest.last_t is None else format_utc(digest.last_t),
            "root": digest.root,
            "version": version,
        },
    }
