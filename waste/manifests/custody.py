"""The derived state of a manifest: custody, legs, seals, masses, and leg look-ups.

A leg is the custody of one hauler and vehicle toward one destination, over
the half-open window [opened_at, closed_at): at a handover instant the new leg
holds. Fixes and lock events bind to the leg of their vehicle whose window
holds their own timestamp (``active_leg_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from waste.clock import ensure_utc
from waste.manifests.events import Cancellation, Disposal, EventData, Filing, Receipt, Rejection
from waste.manifests.vocabulary import EventType


class ManifestState(StrEnum):
    """Where a manifest stands."""

    FILED = "filed"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    DISPOSED = "disposed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset(
    {ManifestState.DISPOSED, ManifestState.REJECTED, ManifestState.CANCELLED}
)


@dataclass(frozen=True)
class Leg:
    """One hauler and vehicle carrying the load to one destination over [opened_at, closed_at)."""

    index: int
    hauler: str
    vehicle: str
    device_id: str
    seal_id: str
    opened_at: datetime
    closed_at: datetime | None
    opened_by: EventType
    closed_by: EventType | None
    route: dict[str, Any] | None  # GeoJSON LineString; None: redirected without a declared route
    destination: str
    mass_kg_at_open: float

    def holds(self, t: datetime) -> bool:
        """Whether ``t`` falls in this leg's window."""
        return self.opened_at <= t and (self.closed_at is None or t < self.closed_at)


@dataclass(frozen=True)
class SealRecord:
    """An e-lock seal applied to the load, or found on it at the gate."""

    at: datetime
    event_type: EventType
    leg_index: int
    seal_id: str
    action: Literal["applied", "found"]
    expected_seal_id: str | None = None
    intact: bool | None = None

    @property
    def matches(self) -> bool:
        """Whether a seal found at the gate is the one applied last (always true when applied)."""
        return self.expected_seal_id is None or self.seal_id == self.expected_seal_id


@dataclass(frozen=True)
class Masses:
    """Every mass the chain records, in kilograms."""

    declared_kg: float
    picked_up_kg: float | None = None
    handed_over_kg: tuple[float, ...] = ()
    rejected_kg: tuple[float, ...] = ()  # weighed at gates that rejected the load
    received_kg: float | None = None
    accepted_kg: float | None = None
    refused_kg: float | None = None
    disposed_kg: float | None = None


@dataclass(frozen=True)
class AppliedEvent:
    """An accepted event as the custody keeps it: parsed data and the parties that signed."""

    seq: int
    event_type: EventType
    actor: str
    at: datetime
    data: EventData
    signers: tuple[str, ...]
    state_after: ManifestState


@dataclass(frozen=True)
class Custody:
    """The derived state of one manifest after its events so far."""

    manifest_id: str
    state: ManifestState
    producer: str
    destination: str  # the current destination (changes on a redirect)
    haulers: tuple[str, ...]  # haulers that took custody, in order
    legs: tuple[Leg, ...]
    filing: Filing
    filed_at: datetime
    last_at: datetime
    last_seq: int
    masses: Masses
    seals: tuple[SealRecord, ...]
    history: tuple[AppliedEvent, ...]
    destinations: tuple[str, ...]  # the filed destination, then each redirect site
    receipt: Receipt | None = None
    received_by: str | None = None
    received_at: datetime | None = None
    disposal: Disposal | None = None
    disposed_at: datetime | None = None
    rejections: tuple[Rejection, ...] = ()
    cancellation: Cancellation | None = None

    @property
    def terminal(self) -> bool:
        """Whether no further event can be appended."""
        return self.state in TERMINAL_STATES

    @property
    def current_hauler(self) -> str | None:
        """The hauler of the open leg, if any."""
        leg = open_leg(self)
        return None if leg is None else leg.hauler

    @property
    def handovers(self) -> int:
        """How many handovers the manifest has had."""
        return sum(1 for leg in self.legs if leg.opened_by is EventType.HANDED_OVER)

    @property
    def received_codes(self) -> tuple[str, ...] | None:
        """Waste codes actually received (the manifest's unless the site said otherwise)."""
        if self.receipt is None:
            return None
        return self.receipt.waste_codes or self.filing.waste_codes


def open_leg(custody: Custody) -> Leg | None:
    """The leg still open (the load is on the road), or None."""
    if custody.legs and custody.legs[-1].closed_at is None:
        return custody.legs[-1]
    return None


def active_leg_at(
    custody: Custody,
    t: datetime,
    *,
    vehicle: str | None = None,
    device_id: str | None = None,
) -> Leg | None:
    """The leg (of ``vehicle`` / ``device_id`` if given) whose window holds time ``t``."""
    t = ensure_utc(t)
    for leg in reversed(custody.legs):
        if vehicle is not None and leg.vehicle != vehicle.upper():
            continue
        if device_id is not None and leg.device_id != device_id:
            continue
        if leg.holds(t):
            return leg
    return None
