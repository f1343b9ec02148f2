"""What a labelled scenario is made of: manifests, custody steps, device transmissions,
and the alerts it must (and may) raise.

Times are simulated times. ``CustodyStep.at`` is the event's own time and
``post_at`` when it reaches the server (later for a handover signed offline).
``Transmission.arrive_at`` is when a device message reaches the broker: a fix's
``t`` plus the network's latency, or much later for a backlog. Party references in
custody data are county keys (``producer-3``); ``CustodyStep.data_for`` swaps them
for the ids the registry gave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.signing import encode_lock, encode_status, encode_telemetry
from devices.world import County
from gateway.payloads import Fix, LockEvent
from gateway.topics import lock_topic, status_topic, telemetry_topic

__all__ = [
    "ALERT_KINDS",
    "Corpus",
    "CustodyStep",
    "ExpectedAlert",
    "ManifestPlan",
    "Scenario",
    "Transmission",
]

ALERT_KINDS = (
    "route_deviation",
    "unscheduled_stop",
    "seal_opened_off_site",
    "seal_tamper",
    "signal_lost",
    "restricted_zone_entry",
    "quantity_discrepancy",
    "overdue_delivery",
    "unlicensed_receipt",
    "unmanifested_movement",
    "suspected_illegal_dumping",
)

PARTY_FIELDS = ("producer", "hauler", "destination", "from_hauler", "to_hauler", "redirect_site")


@dataclass(frozen=True)
class ManifestPlan:
    """A manifest of the scenario: who, what, which truck, along which declared route."""

    key: str
    producer: str
    hauler: str
    destination: str
    truck: str
    route: dict[str, Any] = field(hash=False)
    corridor_m: float = 50.0
    rest_areas: tuple[dict[str, Any], ...] = field(default=(), hash=False)


@dataclass(frozen=True)
class CustodyStep:
    """A custody event to sign and post: ``actor`` signs (and posts), ``cosigners`` too."""

    at: datetime
    post_at: datetime
    manifest: str
    type: str
    actor: str
    cosigners: tuple[str, ...]
    data: Mapping[str, Any] = field(hash=False)

    def data_for(self, ids: Mapping[str, str]) -> dict[str, Any]:
        """``data`` with county keys of parties replaced by their registered ids."""
        out = dict(self.data)
        for name in PARTY_FIELDS:
            if name in out:
                out[name] = ids[out[name]]
        return out


@dataclass(frozen=True)
class Transmission:
    """One device message as it reaches the broker; exactly one of fixes, lock, online."""

    arrive_at: datetime
    device_id: str
    seq: int
    fixes: tuple[Fix, ...] = ()
    lock: LockEvent | None = None
    online: bool | None = None
    will: bool = False
    """A status sent by the broker as the device's will (no time of its own)."""

    @property
    def topic(self) -> str:
        """The MQTT topic."""
        if self.online is not None:
            return status_topic(self.device_id)
        if self.lock is not None:
            return lock_topic(self.device_id)
        return telemetry_topic(self.device_id)

    @property
    def first_t(self) -> datetime:
        """The earliest record time it carries (arrival for a status)."""
        if self.fixes:
            return self.fixes[0].t
        return self.lock.t if self.lock is not None else self.arrive_at

    def payload(self, key: Ed25519PrivateKey) -> bytes:
        """The bytes the device publishes (signed unless a status)."""
        if self.online is not None:
            return encode_status(self.online, t=None if self.will else self.arrive_at)
        if self.lock is not None:
            return encode_lock(self.device_id, self.seq, self.lock, key)
        return encode_telemetry(self.device_id, self.seq, self.fixes, key)


@dataclass(frozen=True)
class ExpectedAlert:
    """Ground truth: an alert of ``kind`` about ``manifest`` (or ``device_id``) whose ``at``
    lies in ``[earliest, latest]``. ``required=False``: the detector may raise it (e.g. a
    provisional ``signal_lost`` withdrawn when a backlog arrives) without it counting as a
    false alert, nor against recall."""

    kind: str
    manifest: str | None
    device_id: str | None
    earliest: datetime
    latest: datetime
    required: bool = True
    note: str = ""

    def matches(
        self, kind: str, at: datetime, *, manifest: str | None = None, device_id: str | None = None
    ) -> bool:
        """Whether an alert (manifest given as scenario key) is this one."""
        if kind != self.kind or not self.earliest <= at <= self.latest:
            return False
        if self.manifest is not None:
            return manifest == self.manifest
        return device_id == self.device_id


@dataclass(frozen=True)
class Scenario:
    """One labelled trip (or movement) with everything needed to replay it."""

    key: str
    kind: str
    trucks: tuple[str, ...]
    manifests: tuple[ManifestPlan, ...]
    custody: tuple[CustodyStep, ...]
    transmissions: tuple[Transmission, ...]
    expected: tuple[ExpectedAlert, ...]
    start: datetime
    end: datetime
    offline: tuple[tuple[str, datetime, datetime], ...] = ()
    """``(device_id, from, to)``: the device could not reach the broker (its records wait)."""
    notes: str = ""

    @property
    def honest(self) -> bool:
        """Whether no alert is required."""
        return not any(e.required for e in self.expected)

    @property
    def required_kinds(self) -> frozenset[str]:
        """The alert kinds the scenario must raise."""
        return frozenset(e.kind for e in self.expected if e.required)

    def fixes(self, device_id: str | None = None) -> list[Fix]:
        """Every fix transmitted (by one device), in fix-time order."""
        out = [f for m in self.transmissions if device_id in (None, m.device_id) for f in m.fixes]
        return sorted(out, key=lambda f: f.t)

    def locks(self, device_id: str | None = None) -> list[LockEvent]:
        """Every e-lock event transmitted (by one device), in time order."""
        out = [
            m.lock
            for m in self.transmissions
            if m.lock is not None and device_id in (None, m.device_id)
        ]
        return sorted(out, key=lambda e: e.t)


def _merged(items: Iterable[Any], key: Callable[[Any], Any]) -> list[Any]:
    return sorted(items, key=key)


@dataclass(frozen=True)
class Corpus:
    """Many scenarios in one county, seqs assigned per device across all of them."""

    county: County
    scenarios: tuple[Scenario, ...]
    seed: int

    def custody_steps(self) -> list[tuple[Scenario, CustodyStep]]:
        """Every custody step with its scenario, in posting order."""
        pairs = [(s, c) for s in self.scenarios for c in s.custody]
        return _merged(pairs, key=lambda p: (p[1].post_at, p[1].at))

    def transmissions(self) -> list[Transmission]:
        """Every device message, in arrival order."""
        return _merged(
            (m for s in self.scenarios for m in s.transmissions),
            key=lambda m: (m.arrive_at, m.device_id, m.seq),
        )

    def expected(self) -> list[tuple[Scenario, ExpectedAlert]]:
        """Every labelled alert with its scenario."""
        return [(s, e) for s in self.scenarios for e in s.expected]

    def counts(self) -> dict[str, int]:
        """Scenarios by kind."""
        return dict(Counter(s.kind for s in self.scenarios))

    @property
    def start(self) -> datetime:
        """The earliest simulated time of any scenario."""
        return min(s.start for s in self.scenarios)

    @property
    def end(self) -> datetime:
        """The latest simulated time of any scenario."""
        return max(s.end for s in self.scenarios)
