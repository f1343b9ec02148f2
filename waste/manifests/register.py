"""A party's waste ledger (台账) for a period: what it sent, carried or took in.

The direction follows the party's kind: a producer's ledger is ``outgoing``
(its loads picked up), a hauler's ``transported`` (each custody it took, by
pickup or handover), a disposal site's ``incoming`` (each load it received).
A row's ``date`` is the signed time of that event (its ``at``); the period is
[from, to). Masses are kilograms: ``declared_kg`` from the filing,
``weighed_kg`` at that event; a site's rows add accepted and refused mass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from waste.auth.service import visible_party
from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.errors import Invalid
from waste.ledger.models import CustodyEvent
from waste.manifests.custody import AppliedEvent, Custody, Leg
from waste.manifests.events import Handover, Pickup, Receipt
from waste.manifests.models import Manifest, ManifestParty
from waste.manifests.queries import party_names, replay_many
from waste.manifests.vocabulary import EventType
from waste.registry.domain import PartyKind
from waste.registry.models import Party
from waste.uow import UnitOfWork

DIRECTIONS: Mapping[str, tuple[str, tuple[EventType, ...]]] = {
    PartyKind.PRODUCER: ("outgoing", (EventType.PICKED_UP,)),
    PartyKind.HAULER: ("transported", (EventType.PICKED_UP, EventType.HANDED_OVER)),
    PartyKind.DISPOSAL_SITE: ("incoming", (EventType.RECEIVED,)),
}

_COMMON = ("date", "number", "manifest_id", "state", "waste_codes", "waste_names", "declared_kg")
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "outgoing": (
        *_COMMON,
        "weighed_kg",
        "hauler_id",
        "hauler_name",
        "vehicle",
        "destination_id",
        "destination_name",
        "accepted_kg",
        "disposal_operation",
    ),
    "transported": (
        *_COMMON,
        "weighed_kg",
        "from_id",
        "from_name",
        "vehicle",
        "seal_id",
        "destination_id",
        "destination_name",
        "handed_to_id",
        "handed_to_name",
        "leg_closed_at",
        "leg_closed_by",
    ),
    "incoming": (
        *_COMMON,
        "weighed_kg",
        "accepted_kg",
        "refused_kg",
        "seal_intact",
        "producer_id",
        "producer_name",
        "hauler_id",
        "hauler_name",
        "disposal_operation",
        "disposed_kg",
        "disposed_at",
    ),
}


def ledger(
    *, uow: UnitOfWork, principal: Principal, party_id: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """The party's ledger rows and totals for [start, end) (the party, its regulators, admins)."""
    party = visible_party(uow=uow, principal=principal, party_id=party_id)
    if party.kind not in DIRECTIONS:
        raise Invalid(f"a {party.kind} keeps no waste ledger", field="party_id")
    direction, types = DIRECTIONS[party.kind]
    events = list(
        uow.session.scalars(
            select(CustodyEvent)
            .where(
                CustodyEvent.type.in_([str(t) for t in types]),
                CustodyEvent.at >= start,
                CustodyEvent.at < end,
                CustodyEvent.manifest_id.in_(
                    select(ManifestParty.manifest_id).where(ManifestParty.party_id == party.id)
                ),
            )
            .order_by(CustodyEvent.at, CustodyEvent.manifest_id, CustodyEvent.seq)
        )
    )
    ids = sorted({e.manifest_id for e in events})
    custodies = replay_many(uow=uow, manifest_ids=ids)
    numbers = dict(
        uow.session.execute(select(Manifest.id, Manifest.number).where(Manifest.id.in_(ids))).all()
    )
    picked = [
        (custodies[e.manifest_id], custodies[e.manifest_id].history[e.seq])
        for e in events
        if _concerns(party.id, custodies[e.manifest_id], custodies[e.manifest_id].history[e.seq])
    ]
    names = party_names(uow=uow, ids={p for c, _ in picked for p in _parties(c)})
    rows = [_row(direction, c, ev, numbers[c.manifest_id], names) for c, ev in picked]
    return {
        "party": {"id": party.id, "name": party.name, "kind": party.kind},
        "direction": direction,
        "from": format_utc(start),
        "to": format_utc(end),
        "rows": rows,
        "totals": _totals(direction, picked, rows),
    }


def _concerns(party_id: str, c: Custody, ev: AppliedEvent) -> bool:
    d = ev.data
    if isinstance(d, Pickup):
        return party_id in (d.hauler, c.producer)
    if isinstance(d, Handover):
        return d.to_hauler == party_id
    return isinstance(d, Receipt) and c.received_by == party_id


def _leg_closed_at(c: Custody, ev: AppliedEvent) -> Leg | None:
    return next(
        (leg for leg in c.legs if leg.closed_at == ev.at and leg.closed_by == ev.event_type), None
    )


def _leg_opened_by(c: Custody, ev: AppliedEvent) -> Leg | None:
    return next(
        (leg for leg in c.legs if leg.opened_at == ev.at and leg.opened_by == ev.event_type), None
    )


def _parties(c: Custody) -> set[str]:
    return {c.producer, *c.haulers, *c.destinations}


def _name(party_id: str | None, names: Mapping[str, Party]) -> str | None:
    party = None if party_id is None else names.get(party_id)
    return None if party is None else party.name


def _row(
    direction: str, c: Custody, ev: AppliedEvent, number: str, names: Mapping[str, Party]
) -> dict[str, Any]:
    f = c.filing
    row: dict[str, Any] = {
        "date": format_utc(ev.at),
        "number": number,
        "manifest_id": c.manifest_id,
        "state": str(c.state),
        "waste_codes": list(f.waste_codes),
        "waste_names": [w.name for w in f.wastes],
        "declared_kg": f.declared_kg,
        "weighed_kg": getattr(ev.data, "mass_kg", None),
    }
    disposal = None if c.disposal is None else c.disposal.operation
    if direction == "outgoing":
        row.update(
            hauler_id=f.hauler,
            hauler_name=_name(f.hauler, names),
            vehicle=f.vehicle,
            destination_id=c.destination,
            destination_name=_name(c.destination, names),
            accepted_kg=c.masses.accepted_kg,
            disposal_operation=disposal,
        )
    elif direction == "transported":
        row.update(_transported(c, ev, names))
    else:
        receipt = ev.data
        assert isinstance(receipt, Receipt)
        leg = _leg_closed_at(c, ev)
        hauler = None if leg is None else leg.hauler
        row.update(
            waste_codes=list(c.received_codes or f.waste_codes),
            accepted_kg=receipt.accepted_kg,
            refused_kg=receipt.refused_kg,
            seal_intact=receipt.seal_intact,
            producer_id=c.producer,
            producer_name=_name(c.producer, names),
            hauler_id=hauler,
            hauler_name=_name(hauler, names),
            disposal_operation=disposal,
            disposed_kg=c.masses.disposed_kg,
            disposed_at=None if c.disposed_at is None else format_utc(c.disposed_at),
        )
    return row


def _transported(c: Custody, ev: AppliedEvent, names: Mapping[str, Party]) -> dict[str, Any]:
    d = ev.data
    assert isinstance(d, Pickup | Handover)
    source = c.producer if isinstance(d, Pickup) else d.from_hauler
    leg = _leg_opened_by(c, ev)
    handed_to = None
    if leg is not None and leg.closed_by is EventType.HANDED_OVER and leg.index + 1 < len(c.legs):
        handed_to = c.legs[leg.index + 1].hauler
    destination = c.destination if leg is None else leg.destination
    return {
        "from_id": source,
        "from_name": _name(source, names),
        "vehicle": d.vehicle,
        "seal_id": d.seal_id,
        "destination_id": destination,
        "destination_name": _name(destination, names),
        "handed_to_id": handed_to,
        "handed_to_name": _name(handed_to, names),
        "leg_closed_at": None
        if leg is None or leg.closed_at is None
        else format_utc(leg.closed_at),
        "leg_closed_by": None if leg is None or leg.closed_by is None else str(leg.closed_by),
    }


def _totals(
    direction: str, picked: list[tuple[Custody, AppliedEvent]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    by_code: dict[str, float] = {}
    for c, _ in picked:
        for w in c.filing.wastes:
            by_code[w.code] = round(by_code.get(w.code, 0.0) + w.mass_kg, 3)
    totals: dict[str, Any] = {
        "loads": len(rows),
        "declared_kg": round(sum(r["declared_kg"] for r in rows), 3),
        "weighed_kg": round(sum(r["weighed_kg"] or 0.0 for r in rows), 3),
        "declared_kg_by_waste_code": dict(sorted(by_code.items())),
    }
    if direction == "incoming":
        totals["accepted_kg"] = round(sum(r["accepted_kg"] for r in rows), 3)
        totals["refused_kg"] = round(sum(r["refused_kg"] for r in rows), 3)
    return totals
