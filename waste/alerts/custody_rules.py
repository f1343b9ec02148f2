"""Alert rules over custody events: weighings, seals at the gate, licences, deadlines (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from waste.alerts.rules import (
    OVERDUE_DELIVERY,
    QUANTITY_DISCREPANCY,
    SEAL_TAMPER,
    UNLICENSED_RECEIPT,
    Candidate,
    ts,
)
from waste.alerts.thresholds import AlertThresholds
from waste.manifests.domain import Custody, Leg
from waste.manifests.events import Handover, Receipt, Rejection


@dataclass(frozen=True)
class PermitView:
    """What the licence rule needs of a permit."""

    number: str
    waste_codes: tuple[str, ...]
    annual_capacity_kg: float
    valid_from: date
    valid_until: date
    revoked: bool


@dataclass(frozen=True)
class Weighed:
    """A quantity discrepancy found at a weighing, and the leg it indicts."""

    candidate: Candidate
    leg_index: int
    weighing: dict[str, Any]


def closed_leg(custody: Custody, at: datetime) -> Leg | None:
    """The leg the latest event closed (at ``at``), if it closed one."""
    closed = [leg for leg in custody.legs if leg.closed_at == at and leg.closed_by is not None]
    return closed[-1] if closed else None


def quantity(custody: Custody, th: AlertThresholds) -> Weighed | None:
    """``quantity_discrepancy`` (high) if the latest weighing lost mass beyond the tolerance.

    A handover is weighed against the mass its leg started with; a receipt (or a
    rejection that weighed the load) both against its leg's start and against the
    picked-up mass, so losses spread over several handovers add up.
    """
    event = custody.history[-1]
    data = event.data
    weighed = data.mass_kg if isinstance(data, Handover | Receipt | Rejection) else None
    if weighed is None:
        return None
    leg = closed_leg(custody, event.at)
    if leg is None:
        return None
    tolerance = th.tolerance(tuple(str(w.form) for w in custody.filing.wastes))
    comparisons = [("leg_start", leg.mass_kg_at_open)]
    picked = custody.masses.picked_up_kg
    if not isinstance(data, Handover) and picked is not None and leg.index > 0:
        comparisons.append(("picked_up", picked))
    worst: tuple[str, float, float] | None = None
    for basis, expected in comparisons:
        fraction = (expected - weighed) / expected if expected > 0 else 0.0
        if fraction > tolerance and (worst is None or fraction > worst[2]):
            worst = (basis, expected, fraction)
    if worst is None:
        return None
    basis, expected, fraction = worst
    weighing = {
        "seq": event.seq,
        "stage": str(event.event_type),
        "at": ts(event.at),
        "basis": basis,
        "expected_kg": expected,
        "weighed_kg": weighed,
        "loss_kg": round(expected - weighed, 3),
        "loss_fraction": round(fraction, 4),
        "tolerance": tolerance,
    }
    location = data.location if isinstance(data, Handover) else None
    cand = Candidate(
        QUANTITY_DISCREPANCY,
        "high",
        f"{QUANTITY_DISCREPANCY}:{custody.manifest_id}/{event.seq}",
        event.at,
        location[0] if location else None,
        location[1] if location else None,
        {**weighing, "declared_kg": custody.masses.declared_kg, "picked_up_kg": picked},
        manifest_id=custody.manifest_id,
        leg_index=leg.index,
    )
    return Weighed(cand, leg.index, weighing)


def seal_mismatch(custody: Custody) -> Candidate | None:
    """``seal_tamper`` (critical): the seal found at the gate is not the one applied, or broken."""
    event = custody.history[-1]
    if not isinstance(event.data, Receipt) or not custody.seals:
        return None
    found = custody.seals[-1]
    if found.action != "found" or (found.matches and found.intact is not False):
        return None
    return Candidate(
        SEAL_TAMPER,
        "critical",
        f"{SEAL_TAMPER}:{custody.manifest_id}/{event.seq}",
        event.at,
        None,
        None,
        {
            "source": "receipt",
            "found_seal_id": found.seal_id,
            "expected_seal_id": found.expected_seal_id,
            "seal_intact": found.intact,
            "seq": event.seq,
        },
        manifest_id=custody.manifest_id,
        leg_index=found.leg_index,
    )


def unlicensed(
    custody: Custody,
    *,
    site_id: str,
    permits: Sequence[PermitView],
    used_kg: float,
) -> Candidate | None:
    """``unlicensed_receipt`` (high): received codes not licensed on the day, or over capacity.

    ``used_kg`` is what the site already received this year on other manifests.
    """
    event = custody.history[-1]
    data = event.data
    if not isinstance(data, Receipt):
        return None
    day = event.at.astimezone(UTC).date()
    valid = [p for p in permits if not p.revoked and p.valid_from <= day <= p.valid_until]
    licensed = {code for p in valid for code in p.waste_codes}
    codes = custody.received_codes or ()
    missing = [c for c in codes if c not in licensed]
    capacity = max((p.annual_capacity_kg for p in valid), default=0.0)
    total = used_kg + data.accepted_kg
    reasons = []
    if not valid:
        reasons.append("no_valid_permit")
    elif missing:
        reasons.append("waste_code_not_licensed")
    if valid and total > capacity:
        reasons.append("annual_capacity_exceeded")
    if not reasons:
        return None
    leg = closed_leg(custody, event.at)
    return Candidate(
        UNLICENSED_RECEIPT,
        "high",
        f"{UNLICENSED_RECEIPT}:{custody.manifest_id}/{event.seq}",
        event.at,
        None,
        None,
        {
            "site_id": site_id,
            "reasons": reasons,
            "received_codes": list(codes),
            "unlicensed_codes": missing,
            "permits": [p.number for p in valid],
            "annual_capacity_kg": capacity,
            "received_this_year_kg": round(total, 3),
        },
        manifest_id=custody.manifest_id,
        leg_index=None if leg is None else leg.index,
    )


def overdue_key(manifest_id: str, what: str = "delivery") -> str:
    """The natural key of a manifest's overdue alert (``delivery`` or ``confirmation``)."""
    return f"{OVERDUE_DELIVERY}:{manifest_id}/{what}"


def overdue(
    *,
    manifest_id: str,
    due: datetime,
    now: datetime,
    th: AlertThresholds,
    what: str = "delivery",
    done_at: datetime | None = None,
) -> Candidate | None:
    """``overdue_delivery`` (medium): not received (or not confirmed) by ``due`` + grace.

    ``done_at``: when it was done after all (the alert then records its end).
    """
    limit = due + timedelta(seconds=th.overdue_grace_s)
    moment = done_at or now
    if moment <= limit:
        return None
    return Candidate(
        OVERDUE_DELIVERY,
        "medium",
        overdue_key(manifest_id, what),
        limit,
        None,
        None,
        {
            "deadline": what,
            "due": ts(due),
            "grace_s": th.overdue_grace_s,
            "done_at": ts(done_at),
        },
        ended_at=done_at,
        manifest_id=manifest_id,
    )
